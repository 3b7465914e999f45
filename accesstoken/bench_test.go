package accesstoken_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store/bolt"
)

// BenchmarkMiddlewareHit is the hot path of a token request: checksum,
// cached record, HMAC, epoch (cached), scope, cached minted JWT, through
// the gateway's request path.
func BenchmarkMiddlewareHit(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	ep, _ := epoch.New(epoch.Options{Store: st, CacheTTL: time.Minute})
	m, err := accesstoken.NewManager(accesstoken.ManagerOptions{Store: st, Pepper: pepper, CacheTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	g, err := accesstoken.NewGuard(accesstoken.GuardOptions{Manager: m, JWTSecret: []byte(secretKey)})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := m.Create(context.Background(), alice, "bench", []string{policy.ScopeAPIRead}, time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	pl := gatewaytest.Pipeline(b, gateway.Parts{Tokens: g, Epochs: ep})
	h := pl.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/api/v1/dashboard/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
