package session

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// storeSizes are the numbers of other session records in the store while
// a signed-in request is measured (issue 5: cost flat from 10³ to 10⁶).
var storeSizes = []struct {
	name string
	n    int
}{{"1e3", 1_000}, {"1e6", 1_000_000}}

// dummyTTL is the TTL of the filler records: far beyond any benchmark.
const dummyTTL = 24 * time.Hour

// BenchmarkLookupStoreSize measures one signed-in request on the cache-miss
// path (CacheTTL < 0: every request reads and decrypts the record) with
// 10³ and 10⁶ other session records in a real bbolt file and a real
// redis-server. The filler records are written outside the timer, once per
// size, straight under the vault's key scheme.
func BenchmarkLookupStoreSize(b *testing.B) {
	b.Run("bolt", func(b *testing.B) {
		dir := b.TempDir()
		for _, sz := range storeSizes {
			var h http.Handler
			var cookie string
			b.Run(sz.name, func(sb *testing.B) {
				if h == nil {
					path := filepath.Join(dir, sz.name+".db")
					start := time.Now()
					depth := fillBolt(sb, path, sz.n)
					sb.Logf("populated %d records in %v (kv B+tree depth %d)", sz.n, time.Since(start).Round(time.Millisecond), depth)
					st, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
					if err != nil {
						sb.Fatal(err)
					}
					b.Cleanup(func() { _ = st.Close() }) // the parent's: kept for every run of sb
					checkFiller(sb, st, sz.n)
					h, cookie = benchSignedIn(sb, st)
				}
				benchLookup(sb, h, cookie)
			})
		}
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b, redistest.Options{})
		st, err := redis.New(context.Background(), redis.Options{URL: srv.URL(), DialTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		have := 0 // filler records already in st: each size tops it up
		for _, sz := range storeSizes {
			var h http.Handler
			var cookie string
			b.Run(sz.name, func(sb *testing.B) {
				if h == nil {
					start := time.Now()
					fillRedis(sb, st, have, sz.n)
					sb.Logf("populated %d records (%d new) in %v", sz.n, max(sz.n-have, 0), time.Since(start).Round(time.Millisecond))
					have = max(have, sz.n)
					checkFiller(sb, st, sz.n)
					h, cookie = benchSignedIn(sb, st)
				}
				if err := st.Client().ConfigResetStat(context.Background()).Err(); err != nil {
					sb.Fatal(err)
				}
				benchLookup(sb, h, cookie)
				reportRedisGet(sb, st)
			})
		}
	})
}

// reportRedisGet reports Redis's own time per GET (INFO commandstats, since
// the last CONFIG RESETSTAT): the only part of a request that could depend
// on the number of keys, apart from the loopback round trip around it.
func reportRedisGet(b *testing.B, st *redis.Store) {
	info, err := st.Client().Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
				us, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(us*1000, "redis-ns/get")
				return
			}
		}
	}
	b.Fatal("no cmdstat_get in INFO commandstats")
}

// benchSignedIn returns a cache-less Middleware over st around a no-op
// handler, and the Cookie header of a fresh signed-in session (created
// after the filler, so its last_seen write is not due during the run).
func benchSignedIn(b *testing.B, st Store) (http.Handler, string) {
	b.Helper()
	v, err := New(Options{Store: st, Keys: testKeys(1), SupersetSecretKey: "bench-secret", CacheTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	jar := Jar{"session": {Value: strings.Repeat("v", 300)}}
	_, val, err := v.create(context.Background(), Session{UserID: "1", Username: "admin"}, jar, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return vaultStage(v), v.CookieName() + "=" + val
}

func benchLookup(b *testing.B, h http.Handler, cookie string) {
	req := httptest.NewRequest("GET", "/api/v1/dashboard/1", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		req.Header["Cookie"] = []string{cookie} // Middleware replaces it
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// fillerKey is the store key of filler record i: a record key as the vault
// writes it, under a handle no real session has.
func fillerKey(i int) string {
	var in [16]byte
	copy(in[:8], "filler\x00\x00")
	binary.BigEndian.PutUint64(in[8:], uint64(i))
	sum := sha256.Sum256(in[:])
	return recordKey(hex.EncodeToString(sum[:]))
}

// fillerValue is a stored record of typical size (a signed-in session with
// a 300-byte Superset cookie sealed in its jar); every filler shares it.
func fillerValue(b *testing.B) []byte {
	b.Helper()
	id := make([]byte, IDLen)
	now := time.Now()
	s := Session{id: id, hid: hashID(id), UserID: "42", Username: "someone", AuthMethod: "form",
		LoginAt: now, Created: now, LastSeen: now, ClientIP: "203.0.113.7",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"}
	var err error
	if s.sealed, err = sealJar(id, s.hid, Jar{"session": {Value: strings.Repeat("v", 300)}}, strings.NewReader(strings.Repeat("n", 64))); err != nil {
		b.Fatal(err)
	}
	v, err := s.marshal()
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// fillBolt creates the bbolt file at path holding n filler records. The
// store's API commits and fsyncs one transaction per Set (10⁶ of them would
// take most of an hour), so the file is laid out by bolt.Open, then filled
// with raw bbolt in a few unsynced transactions in the store's own format
// (bucket kv: [8-byte big-endian expiry ns][value]; bucket exp:
// [expiry][key]). checkFiller then reads a filler back through the store,
// so a change of that format fails the benchmark instead of skewing it.
// It returns the depth of the kv bucket's B+tree.
func fillBolt(b *testing.B, path string, n int) int {
	b.Helper()
	st, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fillerKey(i)
	}
	// Sorted keys append at the right edge of the tree, so each transaction
	// touches only the pages it adds.
	slices.Sort(keys)
	value := fillerValue(b)
	exp := time.Now().Add(dummyTTL).UnixNano()
	rec := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(rec, uint64(exp))
	copy(rec[8:], value)
	const batch = 100_000
	for lo := 0; lo < n; lo += batch {
		err := db.Update(func(tx *bbolt.Tx) error {
			kv, ex := tx.Bucket([]byte("kv")), tx.Bucket([]byte("exp"))
			if kv == nil || ex == nil {
				return errors.New("bolt store layout changed: no kv or exp bucket")
			}
			for _, k := range keys[lo:min(lo+batch, n)] {
				if err := kv.Put([]byte(k), rec); err != nil {
					return err
				}
				ek := make([]byte, 8+len(k))
				binary.BigEndian.PutUint64(ek, uint64(exp))
				copy(ek[8:], k)
				if err := ex.Put(ek, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		b.Fatal(err)
	}
	var depth int
	_ = db.View(func(tx *bbolt.Tx) error {
		depth = tx.Bucket([]byte("kv")).Stats().Depth
		return nil
	})
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return depth
}

// fillRedis writes filler records from..n-1 through the client's pipeline.
func fillRedis(b *testing.B, st *redis.Store, from, n int) {
	b.Helper()
	ctx := context.Background()
	value := fillerValue(b)
	const batch = 10_000
	for lo := from; lo < n; lo += batch {
		p := st.Client().Pipeline()
		for i := lo; i < min(lo+batch, n); i++ {
			p.Set(ctx, fillerKey(i), value, dummyTTL)
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// checkFiller reads the first and last filler back through the store API.
func checkFiller(b *testing.B, st Store, n int) {
	b.Helper()
	for _, i := range []int{0, n - 1} {
		if _, err := st.Get(context.Background(), fillerKey(i)); err != nil {
			b.Fatalf("filler record %d: %v", i, err)
		}
	}
}
