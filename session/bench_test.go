package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/store/bolt"
)

// benchVault returns a Middleware around a no-op handler and the Cookie
// header of a signed-in session with a typical jar.
func benchVault(b *testing.B, cacheTTL time.Duration) (http.Handler, string) {
	b.Helper()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	v, err := New(Options{Store: st, Keys: testKeys(1), SupersetSecretKey: "bench-secret", CacheTTL: cacheTTL})
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

func benchMiddleware(b *testing.B, cacheTTL time.Duration) {
	h, cookie := benchVault(b, cacheTTL)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/api/v1/dashboard/1", nil)
		w := httptest.NewRecorder()
		for pb.Next() {
			req.Header["Cookie"] = []string{cookie} // Middleware replaces it
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkMiddlewareCacheHit is the signed-in hot path: cookie decode, a
// cache hit, the timeout checks and the Cookie header rewrite.
func BenchmarkMiddlewareCacheHit(b *testing.B) { benchMiddleware(b, time.Hour) }

// BenchmarkMiddlewareCacheMiss reads and decrypts the record every time.
func BenchmarkMiddlewareCacheMiss(b *testing.B) { benchMiddleware(b, -1) }

func BenchmarkCookieDecode(b *testing.B) {
	c, err := NewCookieCodec(testKeys(1), true, 0)
	if err != nil {
		b.Fatal(err)
	}
	v, _ := c.Encode(make([]byte, IDLen))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(v); err != nil {
			b.Fatal(err)
		}
	}
}

// vaultStage is the vault's part of the gateway's request path for a
// browser request: authenticate the cookie, inject the jar. (The gateway
// package, which orders the stages, imports this one; its own benchmark
// measures the whole path.)
func vaultStage(v *Vault) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &principal.Exchange{Start: time.Now()}
		if _, err := v.Authenticate(r.Context(), r, x); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		delete(r.Header, "Cookie")
		v.Inject(r, x)
	})
}
