package jwtguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// BenchmarkMiddleware is one Bearer-JWT request through the guard with the
// epoch and jti answers cached: HS256 verification plus two cache hits.
func BenchmarkMiddleware(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ep, err := epoch.New(epoch.Options{Store: st, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)}, Revocations: st, JTICacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: "3", Now: time.Now()})
	h := chain(b, g, ep, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if _, d, err := g.Verify(context.Background(), tok, apijwt.Access); err != nil || !d.Allow {
		b.Fatal("warm-up refused")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/api/v1/chart/1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}
