package guesttoken_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/policy"
)

// TestWipeKeepsGuestRevocations: dashboard stamps vanish with a wiped
// store (FLUSHALL, a Redis restarted without persistence). A guest token
// refused before the wipe must stay refused after it, which only a global
// stamp written when the wipe is noticed can do.
func TestWipeKeepsGuestRevocations(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	st := connectRedis(t, srv)
	clock := newClock()
	var wipes atomic.Int32
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: st, Now: clock.Now, CacheTTL: time.Second,
		OnWipe: func(context.Context) { wipes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.EnsureGlobal(ctxT(t), false); err != nil {
		t.Fatal(err)
	}
	if l, err := rev.List(ctxT(t)); err != nil || len(l) != 0 {
		t.Fatalf("List on a store that is not new = %v, %v; want nothing (the presence mark is no revocation)", l, err)
	}
	res := []string{guesttoken.DashboardKey("12")}
	issued := clock.Now().Add(-time.Minute)
	check := func(iat time.Time) policy.Decision {
		t.Helper()
		d, err := rev.Check(ctxT(t), iat, res)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := check(issued); !d.Allow {
		t.Fatalf("token before any revocation: %+v", d)
	}
	if _, err := rev.RevokeDashboard(ctxT(t), []string{"12"}, clock.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := check(issued); d.Allow {
		t.Fatal("token of a revoked dashboard allowed before the wipe")
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second) // past the cache TTL: the store is read again
	if d := check(issued); d.Allow || d.Reason != policy.ReasonGuestRevoked {
		t.Fatalf("token of a revoked dashboard after the wipe: %+v; want refused as revoked", d)
	}
	if n := wipes.Load(); n != 1 {
		t.Fatalf("OnWipe ran %d times, want 1", n)
	}
	if v, err := srv.Do("GET", guesttoken.GlobalKey); err != nil || v == "" {
		t.Fatalf("global stamp after the wipe: %q, %v", v, err)
	}
	clock.Advance(time.Second)
	if d := check(clock.Now()); !d.Allow {
		t.Fatalf("a token issued after the wipe was answered: %+v", d)
	}
}

// TestEnsureGlobalOnFreshStore: a fresh generation (new, wiped while the
// gateway was down, restored from a backup) refuses every guest token
// issued before the start.
func TestEnsureGlobalOnFreshStore(t *testing.T) {
	st := newBolt(t)
	clock := newClock()
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: st, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.EnsureGlobal(ctxT(t), true); err != nil {
		t.Fatal(err)
	}
	d, err := rev.Check(ctxT(t), clock.Now().Add(-time.Second), []string{guesttoken.DashboardKey("7")})
	if err != nil || d.Allow {
		t.Fatalf("token issued before a fresh store's start = %+v, %v; want refused", d, err)
	}
	l, err := rev.List(ctxT(t))
	if err != nil || len(l) != 1 || l[0].Scope != "global" {
		t.Fatalf("List = %+v, %v; want the global stamp", l, err)
	}
}
