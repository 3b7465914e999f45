package epoch

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// Reconciler store keys.
const (
	// LeaseKey names the replica currently reconciling.
	LeaseKey = "lease:reconciler"
	// SnapshotKey holds the ids of the users that were active and
	// inactive at the last listing (JSON {"active": […], "inactive": […]};
	// a bare array of active ids is read too), so that a restart neither
	// re-stamps everyone nor misses what changed while it was down.
	SnapshotKey = "reconciler:active"
)

// snapshot is SnapshotKey's value. Inactive is nil when the stored value
// was a bare array (it did not record inactive users).
type snapshot struct {
	Active   []string `json:"active"`
	Inactive []string `json:"inactive"`
}

func parseSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '[' {
		err := json.Unmarshal(b, &s.Active)
		return s, err
	}
	err := json.Unmarshal(b, &s)
	if err == nil && s.Inactive == nil {
		s.Inactive = []string{}
	}
	return s, err
}

// User is one Superset user as the reconciler sees it.
type User struct {
	ID     string
	Active bool
}

// UserLister lists every Superset user. ClientLister implements it with
// Superset's users API.
type UserLister interface {
	ListUsers(ctx context.Context) ([]User, error)
}

// LeaseStore is the part of the store the reconciler needs; store.Store
// satisfies it.
type LeaseStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
}

// ReconcilerOptions configure NewReconciler. Lister, Epochs and Store are
// required.
type ReconcilerOptions struct {
	Lister UserLister
	Epochs Stamper
	Store  LeaseStore
	// Interval is reconcile_interval: how often Superset's users are
	// listed; 0 means off (Run returns at once), as the configuration
	// documents. With cache_ttl it bounds how long a user disabled
	// behind the gateway's back keeps access. Negative is an error.
	Interval time.Duration
	// RetryMin is the first wait after a failed run until the first run
	// succeeds (at start Superset is often not healthy yet); it doubles
	// up to RetryMax. 0 means DefaultRetryMin.
	RetryMin time.Duration
	// RetryMax caps that wait; 0 means DefaultRetryMax. It is never
	// longer than Interval.
	RetryMax time.Duration
	// Holder names this replica in the lease; "" means a random id.
	Holder string
	// Logger may be nil.
	Logger *zap.Logger
	// Observer is told the outcome of every run; nil means none.
	Observer ReconcileObserver
}

// ReconcileObserver receives the outcome of each reconciler run: "ok" (this
// replica held the lease and reconciled), "standby" (another replica holds
// the lease) or "error". It lets an alert see a reconciler that stopped.
type ReconcileObserver interface {
	ObserveReconcile(outcome string)
}

// Retry defaults of a reconciler that has not yet run successfully.
const (
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = 15 * time.Second
)

// Reconciler stamps users that became inactive or vanished in Superset
// without the gateway seeing it (CLI, LDAP sync, SQL). Build it with
// NewReconciler and Run it on every replica: the lease lets one at a time
// do the work.
type Reconciler struct {
	lister   UserLister
	ep       Stamper
	st       LeaseStore
	interval time.Duration
	retryMin time.Duration
	retryMax time.Duration
	holder   string
	log      *zap.Logger
	obs      ReconcileObserver
}

// NewReconciler checks opts and returns a Reconciler.
func NewReconciler(o ReconcilerOptions) (*Reconciler, error) {
	if o.Lister == nil || o.Epochs == nil || o.Store == nil {
		return nil, fmt.Errorf("%w: ReconcilerOptions.Lister, Epochs and Store are required", ErrConfig)
	}
	if o.Interval < 0 || o.RetryMin < 0 || o.RetryMax < 0 {
		return nil, fmt.Errorf("%w: ReconcilerOptions: negative Interval, RetryMin or RetryMax", ErrConfig)
	}
	r := &Reconciler{lister: o.Lister, ep: o.Epochs, st: o.Store, interval: o.Interval,
		retryMin: cmp.Or(o.RetryMin, DefaultRetryMin), retryMax: cmp.Or(o.RetryMax, DefaultRetryMax), holder: o.Holder, log: o.Logger}
	if r.interval > 0 {
		r.retryMax = min(r.retryMax, r.interval)
		r.retryMin = min(r.retryMin, r.retryMax)
	}
	if r.holder == "" {
		var b [12]byte
		_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
		r.holder = hex.EncodeToString(b[:])
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.obs = o.Observer
	return r, nil
}

// Off reports whether the reconciler is turned off (Interval 0).
func (r *Reconciler) Off() bool { return r.interval == 0 }

// Run reconciles until ctx is done, starting at once: until a run
// succeeds (at start Superset is often not healthy yet) a failed run is
// retried after RetryMin, doubling up to RetryMax; from then on every
// Interval, and a failure waits for the next one. With Interval 0 (off) it
// returns at once.
func (r *Reconciler) Run(ctx context.Context) {
	if r.Off() {
		return
	}
	succeeded := false
	backoff := r.retryMin
	for {
		rctx, cancel := context.WithTimeout(ctx, r.interval)
		ran, stamped, err := r.RunOnce(rctx)
		cancel()
		if r.obs != nil {
			switch {
			case err != nil:
				r.obs.ObserveReconcile("error")
			case ran:
				r.obs.ObserveReconcile("ok")
			default:
				r.obs.ObserveReconcile("standby")
			}
		}
		switch {
		case err != nil && !succeeded && backoff < r.retryMax:
			// At start Superset is often not healthy yet: not worth a
			// warning until the retries have backed off to their cap.
			r.log.Info("epoch: reconcile not possible yet, retrying", zap.Duration("in", backoff), zap.Error(err))
		case err != nil:
			r.log.Warn("epoch: reconcile failed", zap.Bool("leader", ran), zap.Error(err))
		case len(stamped) > 0:
			r.log.Info("epoch: reconciler stamped users", zap.Strings("users", stamped))
		}
		succeeded = succeeded || err == nil
		wait := nextWait(succeeded, r.interval, &backoff, r.retryMax)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nextWait is how long Run waits before its next run: interval once a run
// has succeeded, else *backoff, which it then doubles up to max.
func nextWait(succeeded bool, interval time.Duration, backoff *time.Duration, max time.Duration) time.Duration {
	if succeeded {
		return interval
	}
	w := *backoff
	*backoff = min(2*w, max)
	return w
}

// RunOnce takes or renews the lease and, if this replica holds it, lists
// Superset's users and stamps those active at the previous listing that are
// now inactive or gone, and those inactive now that the previous listing
// did not know at all (created, or re-created, and disabled between two
// listings: they may have signed in meanwhile). With no previous listing
// (first run, or a wiped store, which stamps the global epoch anyway) it
// stamps the users that are inactive now, so that re-enabling one later
// cannot revive credentials from before. The snapshot is saved only after every stamp succeeded; a
// failed run is repeated in full. An empty listing is taken as a broken
// listing (the service user itself would be in it), not as everyone gone.
// ran reports whether this replica held the lease.
func (r *Reconciler) RunOnce(ctx context.Context) (ran bool, stamped []string, err error) {
	if ran, err = r.lease(ctx); err != nil || !ran {
		return ran, nil, err
	}
	users, err := r.lister.ListUsers(ctx)
	if err != nil {
		return true, nil, fmt.Errorf("epoch: reconcile: list users: %w", err)
	}
	if len(users) == 0 {
		return true, nil, errors.New("epoch: reconcile: Superset listed no users; nothing done")
	}
	var prev snapshot
	initial := false
	switch b, err := r.st.Get(ctx, SnapshotKey); {
	case errors.Is(err, store.ErrNotFound):
		initial = true
	case err != nil:
		return true, nil, unavailable("read reconciler snapshot", err)
	default:
		if prev, err = parseSnapshot(b); err != nil {
			r.log.Warn("epoch: reconciler snapshot unreadable; starting over", zap.Error(err))
			initial = true
		}
	}
	active := make([]string, 0, len(users))
	inactive := map[string]bool{}
	inactiveList := []string{}
	for _, u := range users {
		if u.Active {
			active = append(active, u.ID)
		} else {
			inactive[u.ID] = true
			inactiveList = append(inactiveList, u.ID)
		}
	}
	slices.Sort(active)
	slices.Sort(inactiveList)
	var todo []struct{ id, note string }
	if initial {
		for _, u := range users {
			if !u.Active {
				todo = append(todo, struct{ id, note string }{u.ID, "inactive at first listing"})
			}
		}
	} else {
		known := map[string]bool{}
		for _, id := range prev.Active {
			known[id] = true
			if _, still := slices.BinarySearch(active, id); still {
				continue
			}
			note := "vanished"
			if inactive[id] {
				note = "became inactive"
			}
			todo = append(todo, struct{ id, note string }{id, note})
		}
		if prev.Inactive != nil { // a bare-array snapshot did not record them
			for _, id := range prev.Inactive {
				known[id] = true
			}
			for _, id := range inactiveList {
				if !known[id] {
					todo = append(todo, struct{ id, note string }{id, "inactive when first listed"})
				}
			}
		}
	}
	for _, t := range todo {
		if !ValidUserID(t.id) {
			continue
		}
		if _, err := r.ep.Stamp(ctx, t.id, Reason{Trigger: TriggerReconciler, Actor: "gateway", Note: t.note}); err != nil {
			return true, stamped, fmt.Errorf("epoch: reconcile: %w", err)
		}
		stamped = append(stamped, t.id)
	}
	b, _ := json.Marshal(snapshot{Active: active, Inactive: inactiveList})
	if err := r.st.Set(ctx, SnapshotKey, b, 0); err != nil {
		return true, stamped, unavailable("save reconciler snapshot", err)
	}
	return true, stamped, nil
}

// lease takes LeaseKey for this replica, or renews it if already ours. The
// check-then-renew is not atomic, so two replicas may rarely both run: that
// is harmless (stamps only move forwards and the snapshot written is the
// same); the lease saves work, it does not guard correctness.
func (r *Reconciler) lease(ctx context.Context) (bool, error) {
	ttl := r.interval + r.interval/2
	ok, err := r.st.SetNX(ctx, LeaseKey, []byte(r.holder), ttl)
	if err != nil {
		return false, unavailable("take lease", err)
	}
	if ok {
		return true, nil
	}
	v, err := r.st.Get(ctx, LeaseKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil // expired meanwhile: the next tick takes it
	case err != nil:
		return false, unavailable("read lease", err)
	case string(v) != r.holder:
		return false, nil
	}
	if err := r.st.Set(ctx, LeaseKey, []byte(r.holder), ttl); err != nil {
		return false, unavailable("renew lease", err)
	}
	return true, nil
}

// ClientLister lists users with Superset's users API
// (GET /api/v1/security/users/, page by page) as the service user.
type ClientLister struct {
	// Client talks to Superset directly (not through the gateway).
	Client *client.Client
	// Bearer returns an access JWT of the service user for each listing,
	// e.g. a token minted with Superset's JWT secret for the service user
	// (the gateway's service identity).
	Bearer func(ctx context.Context) (string, error)
}

var _ UserLister = ClientLister{}

// ListUsers implements UserLister.
func (l ClientLister) ListUsers(ctx context.Context) ([]User, error) {
	tok, err := l.Bearer(ctx)
	if err != nil {
		return nil, fmt.Errorf("epoch: service credential: %w", err)
	}
	us, err := l.Client.ListUsers(ctx, tok)
	if err != nil {
		return nil, err
	}
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = User{ID: strconv.Itoa(u.ID), Active: u.Active}
	}
	return out, nil
}
