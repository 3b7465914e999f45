package guesttoken_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"

	"github.com/superset-gateway/superset-gateway/guesttoken"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// benchGuard is a Guard over bbolt with warm caches.
func benchGuard(b *testing.B, verifiedCache int) (*guesttoken.Guard, string) {
	g, _, tok := benchGuardRev(b, verifiedCache)
	return g, tok
}

func benchGuardRev(b *testing.B, verifiedCache int) (*guesttoken.Guard, *guesttoken.Revoker, string) {
	b.Helper()
	clock := newClock()
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: newBolt(b), Now: clock.Now, CacheTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	g, err := guesttoken.New(guesttoken.Options{Verifier: guestjwt.Verifier{Key: []byte(testSecret), Audience: testAudience},
		Revoker: rev, Now: clock.Now, VerifiedCacheSize: verifiedCache})
	if err != nil {
		b.Fatal(err)
	}
	tok := mint(b, testSecret, t0.Add(-time.Minute), "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b")
	if res, err := g.Check(context.Background(), tok); err != nil || !res.Allow {
		b.Fatalf("%+v %v", res, err)
	}
	return g, rev, tok
}

// BenchmarkCheckCacheHit is the hot path of a guest-token request: the
// token seen before, the stamps cached.
func BenchmarkCheckCacheHit(b *testing.B) {
	g, tok := benchGuard(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res, _ := g.Check(ctx, tok); !res.Allow {
				b.Fatal(res.Reason)
			}
		}
	})
}

// BenchmarkCheckNoVerifiedCache: the same with the signature checked on
// every request, for comparison.
func BenchmarkCheckNoVerifiedCache(b *testing.B) {
	g, tok := benchGuard(b, -1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res, _ := g.Check(ctx, tok); !res.Allow {
			b.Fatal(res.Reason)
		}
	}
}

// BenchmarkMiddlewareCacheHit adds extraction, the revocation stage and
// the principal: the gateway's request path with the guest stage.
func BenchmarkMiddlewareCacheHit(b *testing.B) {
	g, rev, tok := benchGuardRev(b, 0)
	pl := gatewaytest.Pipeline(b, gateway.Parts{Guests: g, GuestRevoked: rev})
	h := pl.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/api/v1/chart/data", nil)
	r.Header.Set("X-GuestToken", tok)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
