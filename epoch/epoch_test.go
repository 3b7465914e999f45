package epoch_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
)

var bg = context.Background()

func TestIssuedAfter(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		e := newEpochs(t, st, clk, epoch.Options{})
		// clk is at x.100 s.
		stampAt := clk.Now()
		v, err := e.Stamp(bg, "7", epoch.Reason{Trigger: epoch.TriggerAdmin, Actor: "admin-token:ci", Note: "test"})
		if err != nil || v != stampAt.UnixMilli() {
			t.Fatalf("Stamp = %d, %v; want %d", v, err, stampAt.UnixMilli())
		}
		sec := stampAt.Truncate(time.Second)
		for _, c := range []struct {
			name   string
			user   string
			issued time.Time
			gran   time.Duration
			allow  bool
			reason policy.Reason
		}{
			{"jwt of an earlier second", "7", sec.Add(-time.Second), time.Second, false, policy.ReasonRevokedUser},
			{"jwt of the epoch's own second", "7", sec, time.Second, false, policy.ReasonRevokedUser},
			{"jwt of the epoch's second, unrounded", "7", stampAt.Add(500 * time.Millisecond), time.Second, false, policy.ReasonRevokedUser},
			{"jwt of the next second", "7", sec.Add(time.Second), time.Second, true, ""},
			{"session at the epoch", "7", stampAt, time.Millisecond, false, policy.ReasonRevokedUser},
			{"session 1ms after", "7", stampAt.Add(time.Millisecond), 0, true, ""},
			{"another user", "8", sec.Add(-time.Hour), time.Second, true, ""},
			{"bad subject", "7:x", sec.Add(time.Hour), time.Second, false, policy.ReasonBadSubject},
			{"empty subject", "", sec.Add(time.Hour), time.Second, false, policy.ReasonBadSubject},
		} {
			d, err := e.IssuedAfter(bg, c.user, c.issued, c.gran)
			if err != nil || d.Allow != c.allow || d.Reason != c.reason {
				t.Errorf("%s: %+v, %v; want allow=%v reason=%q", c.name, d, err, c.allow, c.reason)
			}
		}
		// The global epoch refuses everyone issued before it.
		clk.Advance(3 * time.Second)
		if _, err := e.StampGlobal(bg, epoch.Reason{Trigger: epoch.TriggerStoreWiped, Actor: "gateway"}); err != nil {
			t.Fatal(err)
		}
		d, err := e.IssuedAfter(bg, "8", clk.Now().Add(-time.Second), time.Second)
		if err != nil || d.Allow || d.Reason != policy.ReasonRevokedGlobal {
			t.Fatalf("after global stamp: %+v %v", d, err)
		}
		rs, err := e.Revocations(bg, 0)
		if err != nil || len(rs) != 2 || rs[0].Subject != "global" || rs[1].Subject != "user:7" || rs[1].Note != "test" || rs[1].Actor != "admin-token:ci" {
			t.Fatalf("revocations = %+v, %v", rs, err)
		}
	})
}

func TestStampNeverMovesBackwards(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		e := newEpochs(t, st, clk, epoch.Options{})
		first, err := e.Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(-time.Hour) // a replica with a slow clock
		v, err := e.Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin})
		if err != nil || v != first {
			t.Fatalf("second stamp = %d, %v; want %d", v, err, first)
		}
		if _, err := e.Stamp(bg, "bad id", epoch.Reason{}); !errors.Is(err, epoch.ErrBadUser) {
			t.Fatalf("bad id: %v", err)
		}
	})
}

// A stamp on one replica reaches another at once through pub/sub, and
// within the cache TTL when the message is lost (no subscription).
func TestCrossReplicaPropagation(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := newClock()
	a := newEpochs(t, redisStore(t, srv), clk, epoch.Options{CacheTTL: time.Minute})
	b := newEpochs(t, redisStore(t, srv), clk, epoch.Options{CacheTTL: time.Minute})
	deaf := newEpochs(t, redisStore(t, srv), clk, epoch.Options{CacheTTL: 2 * time.Second})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	issued := clk.Now().Add(-time.Minute)
	for _, e := range []*epoch.Epochs{a, deaf} { // cache "no epoch" for bob
		if d, _ := e.IssuedAfter(bg, "3", issued, time.Second); !d.Allow {
			t.Fatal("refused before any stamp")
		}
	}
	if _, err := b.Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := a.IssuedAfter(bg, "3", issued, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the invalidation never reached the subscribed replica")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Without a subscription the cached negative answer lasts at most TTL.
	if d, _ := deaf.IssuedAfter(bg, "3", issued, time.Second); !d.Allow {
		t.Fatal("unsubscribed replica refreshed before the TTL (test assumption broken)")
	}
	clk.Advance(2 * time.Second)
	if d, _ := deaf.IssuedAfter(bg, "3", issued, time.Second); d.Allow {
		t.Fatal("unsubscribed replica still allows after the TTL")
	}
}

func TestStoreUnavailableIsAnError(t *testing.T) {
	clk := newClock()
	st := &flakyStore{Store: openBolt(t, filepath.Join(t.TempDir(), "gw.db"), clk)}
	e := newEpochs(t, st, clk, epoch.Options{CacheTTL: -1})
	st.failGet.Store(true)
	_, err := e.IssuedAfter(bg, "3", clk.Now(), time.Second)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, epoch.ErrUnavailable) {
		t.Fatalf("check with the store down: %v", err)
	}
	st.failMax.Store(true)
	if _, err := e.Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("stamp with the store down: %v", err)
	}

	// A real Redis going away.
	srv := redistest.Start(t, redistest.Options{})
	r := newEpochs(t, redisStore(t, srv), clk, epoch.Options{})
	srv.Kill()
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	if _, err := r.IssuedAfter(ctx, "3", clk.Now(), time.Second); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("check with Redis killed: %v", err)
	}
}

func TestEpochSurvivesBoltReopen(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "gw.db")
	st := openBolt(t, path, clk)
	v, err := newEpochs(t, st, clk, epoch.Options{}).Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e := newEpochs(t, openBolt(t, path, clk), clk, epoch.Options{})
	if u, _, err := e.Epoch(bg, "3"); err != nil || u != v {
		t.Fatalf("after reopen: %d, %v; want %d", u, err, v)
	}
}

func TestEpochSurvivesRedisKill9(t *testing.T) {
	clk := newClock()
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	v, err := newEpochs(t, redisStore(t, srv), clk, epoch.Options{}).Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill() // SIGKILL: only what appendfsync always wrote survives
	srv.Restart(t)
	e := newEpochs(t, redisStore(t, srv), clk, epoch.Options{})
	if u, _, err := e.Epoch(bg, "3"); err != nil || u != v {
		t.Fatalf("after kill -9 and restart: %d, %v; want %d", u, err, v)
	}
}

// FLUSHALL loses every epoch; the generation marker goes with it, and
// OnFreshGeneration stamps the global epoch so nothing revoked comes back.
func TestWipedStoreStampsGlobal(t *testing.T) {
	clk := newClock()
	srv := redistest.Start(t, redistest.Options{})
	st := redisStore(t, srv)
	if _, _, err := store.EnsureGeneration(bg, st, clk.Now()); err != nil {
		t.Fatal(err)
	}
	issued := clk.Now().Add(-time.Minute)
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := store.EnsureGeneration(bg, st, clk.Now())
	if err != nil || !fresh {
		t.Fatalf("wipe not detected: %v %v", fresh, err)
	}
	obs := &stamps{}
	e := newEpochs(t, st, clk, epoch.Options{Observer: obs})
	if _, err := e.OnFreshGeneration(bg); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.IssuedAfter(bg, "3", issued, time.Second); d.Allow || d.Reason != policy.ReasonRevokedGlobal {
		t.Fatalf("credential from before the wipe: %+v", d)
	}
	if obs.get(epoch.TriggerStoreWiped) != 1 {
		t.Fatal("store_wiped not counted")
	}
}

// A store wiped while the gateway runs (FLUSHALL, a failover to an empty
// node) loses the generation marker only a start would notice: once the
// global epoch has been seen, its absence stamps it again, so a revoked
// user's credentials do not come back. A store that never held a global
// epoch is left alone.
func TestWipeWhileRunningStampsGlobal(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		obs := &stamps{}
		var wipes atomic.Int32
		e := newEpochs(t, st, clk, epoch.Options{Observer: obs, OnWipe: func(context.Context) { wipes.Add(1) }})
		if d, err := e.IssuedAfter(bg, "3", clk.Now().Add(-time.Hour), time.Second); err != nil || !d.Allow {
			t.Fatalf("no epochs at all: %+v %v", d, err)
		}
		if _, err := st.GetInt64(bg, epoch.GlobalKey); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a store without a global epoch got one: %v", err)
		}
		if _, err := e.OnFreshGeneration(bg); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		issued := clk.Now()
		clk.Advance(time.Second)
		if _, err := e.Stamp(bg, "3", epoch.Reason{Trigger: epoch.TriggerAdmin}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second) // past the cache TTL
		if d, _ := e.IssuedAfter(bg, "3", issued, time.Second); d.Allow {
			t.Fatal("revoked credential allowed before the wipe")
		}
		if err := st.Delete(bg, epoch.GlobalKey, epoch.UserKeyPrefix+"3"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second)
		d, err := e.IssuedAfter(bg, "3", issued, time.Second)
		if err != nil || d.Allow || d.Reason != policy.ReasonRevokedGlobal {
			t.Fatalf("revoked credential after the wipe: %+v %v, want refused by the global epoch", d, err)
		}
		if obs.get(epoch.TriggerStoreWiped) != 2 {
			t.Fatalf("store_wiped stamps %d, want 2 (start and wipe)", obs.get(epoch.TriggerStoreWiped))
		}
		if wipes.Load() != 1 {
			t.Fatalf("OnWipe ran %d times, want 1 (the runtime wipe, not the start)", wipes.Load())
		}
		// A credential issued after the re-stamp works.
		clk.Advance(2 * time.Second)
		if d, _ := e.IssuedAfter(bg, "3", clk.Now(), time.Second); !d.Allow {
			t.Fatalf("credential issued after the re-stamp: %+v", d)
		}
	})
}

// After a wipe, a replica may still hold the global epoch in its cache
// while a user's entry has expired: the user's store read finds nothing,
// and the stale global alone would let a credential revoked before the
// wipe through. A user read that finds no epoch therefore checks the
// global in the store too.
func TestWipeSeenThroughAUserLookup(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		obs := &stamps{}
		e := newEpochs(t, st, clk, epoch.Options{Observer: obs, CacheTTL: time.Second})
		if _, err := e.OnFreshGeneration(bg); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		issued := clk.Now()
		clk.Advance(time.Second)
		if _, err := e.Stamp(bg, "7", epoch.Reason{Trigger: epoch.TriggerAdmin}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second)
		// t: user 7's entry and the global are cached (expire t+1s).
		if d, _ := e.IssuedAfter(bg, "7", issued, time.Second); d.Allow {
			t.Fatal("revoked credential allowed before the wipe")
		}
		// t+1.1s: another user's check refreshes the global only.
		clk.Advance(1100 * time.Millisecond)
		if d, err := e.IssuedAfter(bg, "8", clk.Now(), time.Second); err != nil || !d.Allow {
			t.Fatalf("user 8: %+v %v", d, err)
		}
		if err := st.Delete(bg, epoch.GlobalKey, epoch.UserKeyPrefix+"7"); err != nil {
			t.Fatal(err)
		}
		// t+1.3s: the global is still cached (pre-wipe), user 7's is not.
		clk.Advance(200 * time.Millisecond)
		d, err := e.IssuedAfter(bg, "7", issued, time.Second)
		if err != nil || d.Allow || d.Reason != policy.ReasonRevokedGlobal {
			t.Fatalf("revoked credential right after the wipe: %+v %v, want refused by the re-stamped global epoch", d, err)
		}
		if obs.get(epoch.TriggerStoreWiped) != 2 {
			t.Fatalf("store_wiped stamps %d, want 2 (start and wipe)", obs.get(epoch.TriggerStoreWiped))
		}
	})
}

// TestValidUserID: FAB user ids are integers. "alice" or "007" typed by an
// admin was accepted and stamped as a user nobody is.
func TestValidUserID(t *testing.T) {
	for id, want := range map[string]bool{
		"1": true, "42": true, "9223372036854775807": true,
		"": false, "0": false, "007": false, "alice": false, "a.b@c-d": false, "*": false,
		"-1": false, "+1": false, " 1": false, "1 ": false, "9223372036854775808": false, "99999999999999999999": false,
	} {
		if got := epoch.ValidUserID(id); got != want {
			t.Errorf("ValidUserID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestCoversAgreesWithIssuedAfter: the view's rule is the enforcement's.
func TestCoversAgreesWithIssuedAfter(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_500)
	for _, c := range []struct {
		epoch int64
		g     time.Duration
		want  bool
	}{
		{0, time.Millisecond, false},
		{at.UnixMilli(), time.Millisecond, true},
		{at.UnixMilli() - 1, time.Millisecond, false},
		{at.UnixMilli() - 400, time.Second, true}, // iat in whole seconds
	} {
		if got := epoch.Covers(c.epoch, at, c.g); got != c.want {
			t.Errorf("Covers(%d, %v, %v) = %v", c.epoch, at, c.g, got)
		}
	}
}
