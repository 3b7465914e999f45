package epoch_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/store"
)

// memStore is an in-memory epoch.Store for benchmarks of the cache-hit
// path, where the backend is never reached.
type memStore struct {
	mu sync.Mutex
	m  map[string]int64
}

func (s *memStore) MaxInt64(_ context.Context, k string, v int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok && old > v {
		return old, nil
	}
	s.m[k] = v
	return v, nil
}

func (s *memStore) GetInt64(_ context.Context, k string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return 0, store.ErrNotFound
	}
	return v, nil
}
func (s *memStore) Publish(context.Context, string, []byte) error { return nil }
func (s *memStore) Subscribe(context.Context, ...string) (<-chan store.Message, error) {
	return make(chan store.Message), nil
}
func (s *memStore) LPushTrim(context.Context, string, []byte, int) error  { return nil }
func (s *memStore) LRange(context.Context, string, int) ([][]byte, error) { return nil, nil }

// BenchmarkIssuedAfterCacheHit is the per-request epoch check of a user
// whose epoch is cached, with 10³ to 10⁶ users holding epochs. Its cost
// should stay flat across the sizes (a hash, a read lock, a map read).
func BenchmarkIssuedAfterCacheHit(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			clk := newClock()
			st := &memStore{m: make(map[string]int64, n+1)}
			ids := make([]string, n)
			for i := range ids {
				ids[i] = strconv.Itoa(i + 1)
				st.m[epoch.UserKeyPrefix+ids[i]] = clk.Now().Add(-time.Hour).UnixMilli()
			}
			e := newEpochs(b, st, clk, epoch.Options{CacheTTL: time.Hour, CacheSize: 2 * n})
			issued := clk.Now().Add(-time.Minute)
			for _, id := range ids { // warm the cache
				if _, err := e.IssuedAfter(bg, id, issued, time.Second); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					// Consecutive ids land in unrelated map buckets, as
					// requests from many users would; the ids themselves
					// are read in order, as a request's freshly parsed
					// token would be in cache.
					if i++; i == n {
						i = 0
					}
					d, err := e.IssuedAfter(bg, ids[i], issued, time.Second)
					if err != nil || !d.Allow {
						b.Fatal("refused")
					}
				}
			})
		})
	}
}
