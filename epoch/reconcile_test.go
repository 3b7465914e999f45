package epoch_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

func newReconciler(t *testing.T, st store.Store, ep epoch.Stamper, lister epoch.UserLister, holder string) *epoch.Reconciler {
	t.Helper()
	r, err := epoch.NewReconciler(epoch.ReconcilerOptions{Lister: lister, Epochs: ep, Store: st, Holder: holder, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fakeLister(t *testing.T, clk *clock) (*fakesuperset.Fake, epoch.UserLister) {
	t.Helper()
	fake := fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, epoch.ClientLister{
		Client: &client.Client{BaseURL: srv.URL},
		Bearer: mintedBearer([]byte(secretKey), "1", clk.Now), // admin
	}
}

// Bob disabled and alice deleted directly on Superset (as the CLI or LDAP
// sync would) are stamped by the reconciler; a restart on the same store
// stamps nobody again.
func TestReconcilerStampsUsersChangedBehindTheGateway(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		fake, lister := fakeLister(t, clk)
		obs := &stamps{}
		ep := newEpochs(t, st, clk, epoch.Options{Observer: obs})
		r := newReconciler(t, st, ep, lister, "replica-a")
		ran, stamped, err := r.RunOnce(bg)
		if err != nil || !ran || len(stamped) != 0 {
			t.Fatalf("first run: %v %v %v", ran, stamped, err)
		}
		issued := clk.Now().Add(-time.Minute)
		fake.SetActive(3, false)
		fake.DeleteUser(2)
		clk.Advance(time.Second)
		_, stamped, err = r.RunOnce(bg)
		slices.Sort(stamped)
		if err != nil || !slices.Equal(stamped, []string{"2", "3"}) {
			t.Fatalf("second run stamped %v, %v", stamped, err)
		}
		for _, id := range []string{"2", "3"} {
			if d, _ := ep.IssuedAfter(bg, id, issued, time.Second); d.Allow {
				t.Fatalf("user %s not cut off", id)
			}
		}
		if d, _ := ep.IssuedAfter(bg, "1", issued, time.Second); !d.Allow {
			t.Fatal("admin cut off")
		}
		if obs.get(epoch.TriggerReconciler) != 2 {
			t.Fatalf("reconciler stamps counted %d", obs.get(epoch.TriggerReconciler))
		}
		// A restarted replica reads the snapshot: nothing to do.
		r2 := newReconciler(t, st, ep, lister, "replica-a")
		if _, stamped, err := r2.RunOnce(bg); err != nil || len(stamped) != 0 {
			t.Fatalf("after restart stamped %v, %v", stamped, err)
		}
		// Bob re-enabled and disabled again while "down": caught.
		fake.SetActive(3, true)
		if _, stamped, _ := r2.RunOnce(bg); len(stamped) != 0 {
			t.Fatalf("re-enabling stamped %v", stamped)
		}
		fake.SetActive(3, false)
		r3 := newReconciler(t, st, ep, lister, "replica-a")
		if _, stamped, _ := r3.RunOnce(bg); !slices.Equal(stamped, []string{"3"}) {
			t.Fatalf("change during downtime: stamped %v", stamped)
		}
	})
}

// The first listing on a store without a snapshot stamps users that are
// inactive already, so re-enabling them cannot revive old credentials.
func TestReconcilerFirstRunStampsInactive(t *testing.T) {
	clk := newClock()
	st := openBolt(t, filepath.Join(t.TempDir(), "gw.db"), clk)
	fake, lister := fakeLister(t, clk)
	fake.SetActive(3, false)
	ep := newEpochs(t, st, clk, epoch.Options{})
	if _, stamped, err := newReconciler(t, st, ep, lister, "a").RunOnce(bg); err != nil || !slices.Equal(stamped, []string{"3"}) {
		t.Fatalf("first run stamped %v, %v", stamped, err)
	}
}

func TestReconcilerLeaseOneAtATime(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	clk := newClock()
	_, lister := fakeLister(t, clk)
	stA, stB := redisStore(t, srv), redisStore(t, srv)
	a := newReconciler(t, stA, newEpochs(t, stA, clk, epoch.Options{}), lister, "replica-a")
	b := newReconciler(t, stB, newEpochs(t, stB, clk, epoch.Options{}), lister, "replica-b")
	ranA, _, errA := a.RunOnce(bg)
	ranB, _, errB := b.RunOnce(bg)
	if errA != nil || errB != nil || !ranA || ranB {
		t.Fatalf("a ran %v (%v), b ran %v (%v); want only a", ranA, errA, ranB, errB)
	}
	// The holder keeps it on renewal; the other still waits.
	if ran, _, _ := a.RunOnce(bg); !ran {
		t.Fatal("holder lost its lease")
	}
	if ran, _, _ := b.RunOnce(bg); ran {
		t.Fatal("second replica ran while the lease was held")
	}
	// The holder dies: once the lease expires, the other takes over.
	if _, err := srv.Do("DEL", epoch.LeaseKey); err != nil {
		t.Fatal(err)
	}
	if ran, _, err := b.RunOnce(bg); !ran || err != nil {
		t.Fatalf("takeover: %v %v", ran, err)
	}
}

type listerFunc func(context.Context) ([]epoch.User, error)

func (f listerFunc) ListUsers(ctx context.Context) ([]epoch.User, error) { return f(ctx) }

// A failed or empty listing is never taken as "everyone vanished".
func TestReconcilerIgnoresBrokenListings(t *testing.T) {
	clk := newClock()
	st := openBolt(t, filepath.Join(t.TempDir(), "gw.db"), clk)
	ep := newEpochs(t, st, clk, epoch.Options{})
	users := []epoch.User{{ID: "1", Active: true}, {ID: "3", Active: true}}
	var fail error
	lister := listerFunc(func(context.Context) ([]epoch.User, error) { return users, fail })
	r := newReconciler(t, st, ep, lister, "a")
	if _, _, err := r.RunOnce(bg); err != nil {
		t.Fatal(err)
	}
	users = nil
	if _, stamped, err := r.RunOnce(bg); err == nil || len(stamped) != 0 {
		t.Fatalf("empty listing: %v %v", stamped, err)
	}
	fail = errors.New("superset down")
	if _, stamped, err := r.RunOnce(bg); err == nil || len(stamped) != 0 {
		t.Fatalf("failed listing: %v %v", stamped, err)
	}
	if u, _, _ := ep.Epoch(bg, "3"); u != 0 {
		t.Fatal("bob stamped by a broken listing")
	}
}

// A user created and disabled between two listings (they may have signed
// in meanwhile) is stamped when first seen inactive, once; a snapshot in
// the older bare-array form (no inactive ids) stamps no unknown user, and
// the next run records the inactive ids.
func TestReconcilerStampsUsersFirstSeenInactive(t *testing.T) {
	clk := newClock()
	st := openBolt(t, filepath.Join(t.TempDir(), "gw.db"), clk)
	ep := newEpochs(t, st, clk, epoch.Options{})
	users := []epoch.User{{ID: "1", Active: true}, {ID: "3", Active: true}}
	lister := listerFunc(func(context.Context) ([]epoch.User, error) { return users, nil })
	r := newReconciler(t, st, ep, lister, "a")
	if _, stamped, err := r.RunOnce(bg); err != nil || len(stamped) != 0 {
		t.Fatalf("first run: %v %v", stamped, err)
	}
	issued := clk.Now().Add(-time.Second)
	users = append(users, epoch.User{ID: "4", Active: false})
	clk.Advance(time.Second)
	if _, stamped, err := r.RunOnce(bg); err != nil || !slices.Equal(stamped, []string{"4"}) {
		t.Fatalf("user created and disabled between listings: stamped %v, %v; want [4]", stamped, err)
	}
	if d, _ := ep.IssuedAfter(bg, "4", issued, time.Second); d.Allow {
		t.Fatal("user 4 not cut off")
	}
	if _, stamped, err := r.RunOnce(bg); err != nil || len(stamped) != 0 {
		t.Fatalf("still inactive, already known: stamped %v, %v", stamped, err)
	}

	if err := st.Set(bg, epoch.SnapshotKey, []byte(`["1","3"]`), 0); err != nil {
		t.Fatal(err)
	}
	users = append(users, epoch.User{ID: "5", Active: false})
	if _, stamped, err := r.RunOnce(bg); err != nil || len(stamped) != 0 {
		t.Fatalf("bare-array snapshot: stamped %v, %v; want none", stamped, err)
	}
	users = append(users, epoch.User{ID: "6", Active: false})
	if _, stamped, err := r.RunOnce(bg); err != nil || !slices.Equal(stamped, []string{"6"}) {
		t.Fatalf("after the snapshot was rewritten: stamped %v, %v; want [6]", stamped, err)
	}
}

// mintedBearer mints a five-minute Superset access JWT for the service
// user, as the gateway's own service identity does.
func mintedBearer(jwtKey []byte, serviceUserID string, now func() time.Time) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		return apijwt.Mint(jwtKey, apijwt.MintOptions{Subject: serviceUserID, TTL: 5 * time.Minute, Now: now()})
	}
}

// countingLister fails its first fails listings, as the gateway's upstream
// pool does before Superset's first health check passes.
type countingLister struct {
	mu    sync.Mutex
	calls int
	fails int
}

func (l *countingLister) ListUsers(context.Context) ([]epoch.User, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls <= l.fails {
		return nil, errors.New("upstream: no healthy upstream")
	}
	return []epoch.User{{ID: "1", Active: true}}, nil
}

func (l *countingLister) count() int { l.mu.Lock(); defer l.mu.Unlock(); return l.calls }

// TestReconcilerIntervalZeroIsOff: reconcile_interval 0s is documented as
// off; the reconciler must not list anyone.
func TestReconcilerIntervalZeroIsOff(t *testing.T) {
	clk := newClock()
	st := openBolt(t, filepath.Join(t.TempDir(), "s.db"), clk)
	l := &countingLister{}
	r, err := epoch.NewReconciler(epoch.ReconcilerOptions{Lister: l, Epochs: newEpochs(t, st, clk, epoch.Options{}), Store: st, Interval: 0})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go func() { r.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run with Interval 0 is still running: 0 is not off")
	}
	if n := l.count(); n != 0 {
		t.Errorf("Interval 0 listed users %d times", n)
	}
	if _, err := epoch.NewReconciler(epoch.ReconcilerOptions{Lister: l, Epochs: newEpochs(t, st, clk, epoch.Options{}), Store: st, Interval: -time.Second}); !errors.Is(err, epoch.ErrConfig) {
		t.Errorf("negative interval: %v, want ErrConfig", err)
	}
}

// TestReconcilerRetriesUntilFirstSuccess: at start the first listings fail
// (no healthy upstream yet); the reconciler retries within seconds, not a
// whole interval later, and once it has succeeded it waits the interval.
func TestReconcilerRetriesUntilFirstSuccess(t *testing.T) {
	clk := newClock()
	st := openBolt(t, filepath.Join(t.TempDir(), "s.db"), clk)
	l := &countingLister{fails: 2}
	r, err := epoch.NewReconciler(epoch.ReconcilerOptions{Lister: l, Epochs: newEpochs(t, st, clk, epoch.Options{}), Store: st, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for l.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := l.count(); n < 3 {
		t.Fatalf("%d listings in 10s with an hourly interval after 2 failures: the first success waits a whole interval", n)
	}
	time.Sleep(2 * time.Second)
	if n := l.count(); n != 3 {
		t.Errorf("%d listings: after the first success the reconciler must wait the interval", n)
	}
}
