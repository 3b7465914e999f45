package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

func client(t *testing.T, s *redistest.Server) goredis.UniversalClient { return clientTB(t, s) }

func clientTB(t testing.TB, s *redistest.Server) goredis.UniversalClient {
	t.Helper()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{s.Addr()},
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Two replicas, two clients, one Redis: the second sees what the first
// spent, so an attacker cannot double the limit by alternating replicas.
func TestRedisTwoLimitersShareCounts(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	a, b := NewRedis(client(t, s)), NewRedis(client(t, s))
	l := Limit{Rate: 4, Period: time.Minute, Burst: 4}
	ctx := context.Background()
	allowed := 0
	for i := range 10 {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		r, err := lim.AllowN(ctx, "login:u:x", l, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		} else if r.RetryAfter <= 0 {
			t.Fatalf("refused with RetryAfter %v", r.RetryAfter)
		}
	}
	if allowed != 4 {
		t.Fatalf("allowed %d of 10 across two limiters, want 4 (the burst)", allowed)
	}
	// A read spends nothing and reports the empty bucket.
	r, err := b.AllowN(ctx, "login:u:x", l, 0)
	if err != nil || r.Remaining != 0 {
		t.Fatalf("read: %+v %v", r, err)
	}
	// Keys expire: the bucket's key carries a TTL no longer than a period.
	ttl, err := s.Do("PTTL", "rate:sgw:login:u:x")
	if err != nil {
		t.Fatal(err)
	}
	var ms int
	if _, err := fmt.Sscan(ttl, &ms); err != nil || ms <= 0 || ms > int(time.Minute/time.Millisecond) {
		t.Fatalf("PTTL = %q, want 0 < ttl ≤ 60000", ttl)
	}
}

// Redis killed: answers come from the per-process bucket, are marked and
// counted, and still refuse past the limit; Redis back: shared again.
func TestFallbackWhenRedisKilled(t *testing.T) {
	s := redistest.Start(t, redistest.Options{})
	fell := 0
	f := &Fallback{Primary: NewRedis(client(t, s)), Local: NewMemory(0, nil), OnFallback: func() { fell++ }}
	l := Limit{Rate: 3, Period: time.Minute, Burst: 3}
	ctx := context.Background()
	if r, _ := f.AllowN(ctx, "k", l, 1); !r.Allowed || r.Fallback || f.Degraded() {
		t.Fatalf("redis up: %+v degraded=%v", r, f.Degraded())
	}
	s.Kill()
	var got []bool
	for range 5 {
		r, err := f.AllowN(ctx, "k", l, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fallback {
			t.Fatal("answer with Redis down not marked as fallback")
		}
		got = append(got, r.Allowed)
	}
	if fmt.Sprint(got) != "[true true true false false]" {
		t.Fatalf("fallback answers %v: must neither open nor refuse everything", got)
	}
	if fell != 5 || !f.Degraded() {
		t.Fatalf("fallbacks counted %d, degraded %v", fell, f.Degraded())
	}
	s.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for f.Degraded() && time.Now().Before(deadline) {
		_, _ = f.AllowN(ctx, "k2", l, 1)
		time.Sleep(50 * time.Millisecond)
	}
	if f.Degraded() {
		t.Fatal("still degraded after Redis came back")
	}
}

func TestMemoryGCRAAndCap(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory(3, func() time.Time { return now })
	l := Limit{Rate: 2, Period: time.Second, Burst: 2}
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		if r, _ := m.AllowN(ctx, "a", l, 1); r.Allowed != want {
			t.Fatalf("event %d: %+v", i, r)
		} else if !want && (r.RetryAfter <= 0 || r.RetryAfter > 500*time.Millisecond) {
			t.Fatalf("RetryAfter %v", r.RetryAfter)
		}
	}
	now = now.Add(500 * time.Millisecond)
	if r, _ := m.AllowN(ctx, "a", l, 1); !r.Allowed {
		t.Fatal("one event must be back after one interval")
	}
	// The cap: distinct keys beyond it are refused, the map stays bounded.
	for i := range 100 {
		_, _ = m.AllowN(ctx, fmt.Sprint("k", i), l, 1)
	}
	if m.Len() > 3 {
		t.Fatalf("memory holds %d keys, cap 3", m.Len())
	}
	// Full buckets are swept, making room again.
	now = now.Add(2 * time.Second)
	if r, _ := m.AllowN(ctx, "new", l, 1); !r.Allowed {
		t.Fatal("expired keys not swept")
	}
}

// A rate finer than a nanosecond per event must not divide by zero (found
// by BenchmarkStageMemory with 1<<30 per second).
func TestMemoryHugeRate(t *testing.T) {
	m := NewMemory(0, nil)
	if r, _ := m.AllowN(context.Background(), "k", Limit{Rate: 1 << 40, Period: time.Second, Burst: 1 << 20}, 1); !r.Allowed {
		t.Fatalf("%+v", r)
	}
}
