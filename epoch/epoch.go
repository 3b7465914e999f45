package epoch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
)

// Store keys and channel. They are shared with every replica and with
// operators' tooling; do not rename them.
const (
	// UserKeyPrefix + user id holds a user's epoch (Unix ms).
	UserKeyPrefix = "epoch:user:"
	// GlobalKey holds the global epoch (Unix ms).
	GlobalKey = "epoch:global"
	// InvalidateChannel carries a user id, or GlobalSubject for the global
	// epoch, after each stamp.
	InvalidateChannel = "epoch:invalidate"
	// RevocationsKey lists recent stamps, newest first (JSON Revocation).
	RevocationsKey = "epoch:revocations"
	// GlobalSubject names the global epoch in invalidations.
	GlobalSubject = "*"
)

// Triggers: why an epoch was stamped. They are metric labels and audit
// reasons.
const (
	TriggerAdmin           = "admin"
	TriggerUserDisabled    = "user_disabled"
	TriggerUserDeleted     = "user_deleted"
	TriggerPasswordChanged = "password_changed"
	TriggerReconciler      = "reconciler"
	TriggerStoreWiped      = "store_wiped"
	TriggerStoreRestored   = "store_restored"
	// TriggerStoreCreated: the first start on a store that, as far as this
	// gateway can tell, never held anything (see OnNewStore).
	TriggerStoreCreated = "store_created"
	// TriggerSessionsEnded: an admin ended the user's sessions through
	// Superset (DELETE /api/v1/security/users/<pk>/sessions, Superset
	// master, unreleased).
	TriggerSessionsEnded = "sessions_ended"
)

// Sentinel errors.
var (
	// ErrUnavailable means the store could not answer or did not accept a
	// stamp. Every such error also matches store.ErrUnavailable, so callers
	// answer 503 with Retry-After and log nobody out.
	ErrUnavailable = errors.New("epoch: store unavailable")
	// ErrBadUser means a user id that no Superset user can have.
	ErrBadUser = errors.New("epoch: bad user id")
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("epoch: invalid options")
)

// Store is the part of the shared store epochs need; store.Store (Redis and
// bbolt) satisfies it.
type Store interface {
	MaxInt64(ctx context.Context, key string, v int64) (int64, error)
	GetInt64(ctx context.Context, key string) (int64, error)
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
	LPushTrim(ctx context.Context, key string, value []byte, max int) error
	LRange(ctx context.Context, key string, n int) ([][]byte, error)
}

// Observer receives metrics. It must be safe for concurrent use and must
// not block.
type Observer interface {
	// ObserveStamp counts an acknowledged stamp by trigger (Trigger*).
	ObserveStamp(trigger string)
}

// Auditor records audit events; *audit.Logger satisfies it. Errors are the
// auditor's to log: a stamp never fails because its audit line did.
type Auditor interface {
	Emit(ctx context.Context, ev audit.Event) error
}

type nopObserver struct{}

func (nopObserver) ObserveStamp(string) {}

type nopAuditor struct{}

func (nopAuditor) Emit(context.Context, audit.Event) error { return nil }

// Options configure New. Store is required.
type Options struct {
	Store Store
	// CacheTTL bounds how long a cached epoch (or its absence) is served:
	// the hard bound on cross-replica propagation when a pub/sub message is
	// lost. 0 means one second; negative disables the cache (every check
	// reads the store).
	CacheTTL time.Duration
	// CacheSize bounds the cached users; 0 means 100 000. A full cache
	// evicts at random, which costs a store read, never correctness.
	CacheSize int
	// RevocationsMax bounds the recent-revocations list; 0 means 1000.
	RevocationsMax int
	// Now is the clock for stamps and cache expiry; nil means time.Now.
	Now func() time.Time
	// Logger receives failures that do not fail the call (a lost publish);
	// nil means none.
	Logger *zap.Logger
	// Observer and Auditor may be nil.
	Observer Observer
	Auditor  Auditor
	// OnWipe, if set, runs after a wipe noticed while running has been
	// answered by a new global stamp (the gateway re-creates the store's generation
	// marker there, so the next start does not take the same wipe for a
	// new one and stamp again). It must not block for long.
	OnWipe func(ctx context.Context)
}

// Epochs stamps and checks invalidation epochs. Build it with New; it is
// safe for concurrent use.
type Epochs struct {
	st      Store
	ttl     time.Duration
	c       *cache
	revMax  int
	now     func() time.Time
	log     *zap.Logger
	obs     Observer
	aud     Auditor
	onWipe  func(context.Context)
	runOnce sync.Once
	// sawGlobal is set once this process has seen the global epoch in the
	// store (or stamped it): its absence afterwards means a wiped store.
	sawGlobal atomic.Bool
	// wipes counts wipes found while running (rewipe).
	wipes atomic.Uint64
}

// New checks opts and returns an Epochs. Call Start once per process.
func New(opts Options) (*Epochs, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrConfig)
	}
	e := &Epochs{st: opts.Store, ttl: opts.CacheTTL, revMax: opts.RevocationsMax,
		now: opts.Now, log: opts.Logger, obs: opts.Observer, aud: opts.Auditor, onWipe: opts.OnWipe}
	if e.ttl == 0 {
		e.ttl = time.Second
	}
	size := opts.CacheSize
	if size <= 0 {
		size = 100_000
	}
	if e.ttl > 0 {
		e.c = newCache(size)
	}
	if e.revMax <= 0 {
		e.revMax = 1000
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = zap.NewNop()
	}
	if e.obs == nil {
		e.obs = nopObserver{}
	}
	if e.aud == nil {
		e.aud = nopAuditor{}
	}
	return e, nil
}

// Reason says why and by whom a stamp is made; it goes to the metric, the
// audit event and the revocations list.
type Reason struct {
	// Trigger is one of the Trigger* constants (a metric label).
	Trigger string
	// Actor is who caused it: "user:1", "admin-token:ci", "gateway".
	Actor string
	// RequestID and IP tie the stamp to the request that caused it.
	RequestID, IP string
	// Note is an admin's free-text reason; audit and list only, never a
	// metric label. It is truncated to 500 bytes.
	Note string
}

// Revocation is one entry of the recent-revocations list.
type Revocation struct {
	TS      time.Time `json:"ts"`
	Subject string    `json:"subject"` // "user:<id>" or "global"
	Epoch   int64     `json:"epoch"`   // Unix ms now stored
	Trigger string    `json:"trigger"`
	Actor   string    `json:"actor"`
	Note    string    `json:"note,omitempty"`
}

// ValidUserID reports whether id is a Superset user id as it appears in a
// JWT "sub" or a Flask session "_user_id": FAB's integer primary key in
// canonical decimal (1 to 2^63-1, no sign, no leading zero). Anything else
// would be stamped as a user nobody is ("alice", or "007" beside "7"): a
// revocation reported done that revokes no one.
func ValidUserID(id string) bool {
	const maxID = "9223372036854775807"
	if id == "" || len(id) > len(maxID) || id[0] == '0' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return len(id) < len(maxID) || id <= maxID
}

// Stamp moves userID's epoch to now (never backwards) and returns the epoch
// now stored, which may be later than now if another replica stamped later.
// It returns only after the store accepted the write (an error wrapping
// ErrUnavailable otherwise, and nothing is promised), then publishes the
// invalidation, records the revocation and emits an "epoch.stamp" audit
// event; failures of those three are logged, not returned, since the stamp
// itself holds and the cache TTL bounds propagation.
func (e *Epochs) Stamp(ctx context.Context, userID string, why Reason) (int64, error) {
	if !ValidUserID(userID) {
		return 0, fmt.Errorf("%w: %q", ErrBadUser, truncate(userID, 80))
	}
	return e.stamp(ctx, userID, UserKeyPrefix+userID, "user:"+userID, why)
}

// StampGlobal moves the global epoch to now: every credential issued before
// is refused, for every user. Semantics as Stamp.
func (e *Epochs) StampGlobal(ctx context.Context, why Reason) (int64, error) {
	return e.stamp(ctx, GlobalSubject, GlobalKey, "global", why)
}

// OnFreshGeneration stamps the global epoch with TriggerStoreWiped. The gateway
// calls it, before serving, when store.EnsureGeneration reports a fresh
// (new or wiped) store, so that nothing revoked before the wipe comes back.
func (e *Epochs) OnFreshGeneration(ctx context.Context) (int64, error) {
	return e.StampGlobal(ctx, Reason{Trigger: TriggerStoreWiped, Actor: "gateway"})
}

// OnNewStore stamps the global epoch like OnFreshGeneration, under
// TriggerStoreCreated: the gateway calls it instead when nothing shows the
// fresh store ever held revocations (its data_dir never saw a generation),
// so that a first start is not reported as a wipe. The stamp itself is the
// same: a wipe the gateway cannot see must still refuse what came before.
func (e *Epochs) OnNewStore(ctx context.Context) (int64, error) {
	return e.StampGlobal(ctx, Reason{Trigger: TriggerStoreCreated, Actor: "gateway",
		Note: "first start on a new, empty store: nothing was lost"})
}

func (e *Epochs) stamp(ctx context.Context, cacheKey, key, subject string, why Reason) (int64, error) {
	now := e.now()
	why.Note = audit.CleanNote(why.Note)
	v, err := e.st.MaxInt64(ctx, key, now.UnixMilli())
	if err != nil {
		err = unavailable("stamp "+key, err)
		e.emit(ctx, audit.Event{Event: "epoch.stamp", Actor: why.Actor, Subject: subject, RequestID: why.RequestID,
			IP: why.IP, Outcome: audit.OutcomeFailure, Reason: why.Trigger, Note: why.Note})
		return 0, err
	}
	if key == GlobalKey {
		e.sawGlobal.Store(true)
	}
	if e.c != nil {
		e.c.raise(cacheKey, v, now.Add(e.ttl).UnixNano(), now.UnixNano())
	}
	if err := e.st.Publish(ctx, InvalidateChannel, []byte(cacheKey)); err != nil {
		e.log.Warn("epoch: invalidation not published; other replicas catch up within the cache TTL",
			zap.String("subject", subject), zap.Error(err))
	}
	rec, _ := json.Marshal(Revocation{TS: now.UTC(), Subject: subject, Epoch: v, Trigger: why.Trigger, Actor: why.Actor, Note: why.Note})
	if err := e.st.LPushTrim(ctx, RevocationsKey, rec, e.revMax); err != nil {
		e.log.Warn("epoch: revocation not listed", zap.String("subject", subject), zap.Error(err))
	}
	e.obs.ObserveStamp(why.Trigger)
	e.emit(ctx, audit.Event{Event: "epoch.stamp", Actor: why.Actor, Subject: subject, RequestID: why.RequestID,
		IP: why.IP, Outcome: audit.OutcomeSuccess, Reason: why.Trigger, Note: why.Note, Details: map[string]any{"epoch": v}})
	return v, nil
}

func (e *Epochs) emit(ctx context.Context, ev audit.Event) {
	if err := e.aud.Emit(ctx, ev); err != nil {
		e.log.Warn("epoch: audit event not recorded", zap.String("event", ev.Event), zap.Error(err))
	}
}

// IssuedAfter is the hot-path check: it allows a credential of userID issued
// at issued only if issued is after both the user's and the global epoch.
// granularity is the resolution of issued (time.Second for a JWT "iat",
// time.Millisecond or 0 for a session's login_at): issued is first
// truncated to it, so a credential issued in the epoch's own second is
// refused, since it may predate the stamp. Refusals carry policy.ReasonRevokedUser,
// policy.ReasonRevokedGlobal or policy.ReasonBadSubject. A store failure returns an error
// wrapping ErrUnavailable and store.ErrUnavailable (answer 503, keep the
// credential); a cached answer is served only within the cache TTL. Once
// this process has seen the global epoch, finding it gone (when reading it,
// or when a user read from the store has no epoch) means the store was
// wiped while running: the global epoch is stamped again
// (TriggerStoreWiped) before the answer, so nothing revoked comes back.
func (e *Epochs) IssuedAfter(ctx context.Context, userID string, issued time.Time, granularity time.Duration) (policy.Decision, error) {
	if !ValidUserID(userID) {
		return policy.Decision{Reason: policy.ReasonBadSubject}, nil
	}
	ms := issuedMS(issued, granularity)
	nowNS := e.now().UnixNano()
	wipes := e.wipes.Load()
	g, gok, err := e.lookup(ctx, GlobalSubject, nowNS)
	if err != nil {
		return policy.Decision{}, err
	}
	if gok && ms <= g {
		return policy.Decision{Reason: policy.ReasonRevokedGlobal}, nil
	}
	u, uok, err := e.lookup(ctx, userID, nowNS)
	if err != nil {
		return policy.Decision{}, err
	}
	if uok && ms <= u {
		return policy.Decision{Reason: policy.ReasonRevokedUser}, nil
	}
	if e.wipes.Load() != wipes {
		// The user's lookup found the store wiped and stamped the global
		// epoch again: g was read before that.
		if g, gok, err = e.lookup(ctx, GlobalSubject, nowNS); err != nil {
			return policy.Decision{}, err
		}
		if gok && ms <= g {
			return policy.Decision{Reason: policy.ReasonRevokedGlobal}, nil
		}
	}
	return policy.Decision{Allow: true}, nil
}

// issuedMS is issued in Unix ms, truncated to granularity (a JWT's iat is
// whole seconds: a token issued in the same second as a stamp is
// refused).
func issuedMS(issued time.Time, granularity time.Duration) int64 {
	ms := issued.UnixMilli()
	if g := granularity.Milliseconds(); g > 1 {
		ms -= ((ms % g) + g) % g
	}
	return ms
}

// Covers reports whether an epoch (Unix ms, 0 for none) revokes a
// credential issued at issued with granularity, exactly as IssuedAfter
// decides: for views (the admin page) that must agree with what the
// gateway enforces.
func Covers(epochMS int64, issued time.Time, granularity time.Duration) bool {
	return epochMS > 0 && issuedMS(issued, granularity) <= epochMS
}

// Epoch returns userID's epoch and the global one (0 when absent), read
// through the cache.
func (e *Epochs) Epoch(ctx context.Context, userID string) (user, global int64, err error) {
	if !ValidUserID(userID) {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadUser, truncate(userID, 80))
	}
	nowNS := e.now().UnixNano()
	if global, _, err = e.lookup(ctx, GlobalSubject, nowNS); err != nil {
		return 0, 0, err
	}
	user, _, err = e.lookup(ctx, userID, nowNS)
	return user, global, err
}

// lookup reads one epoch (cacheKey is a user id or GlobalSubject).
func (e *Epochs) lookup(ctx context.Context, cacheKey string, nowNS int64) (int64, bool, error) {
	var gen uint64
	if e.c != nil {
		ent, ok, g := e.c.get(cacheKey, nowNS)
		if ok {
			return ent.epoch, ent.has, nil
		}
		gen = g
	}
	key := GlobalKey
	if cacheKey != GlobalSubject {
		key = UserKeyPrefix + cacheKey
	}
	v, err := e.st.GetInt64(ctx, key)
	has := true
	switch {
	case errors.Is(err, store.ErrNotFound):
		v, has = 0, false
	case err != nil:
		return 0, false, unavailable("read "+key, err)
	}
	switch {
	case cacheKey == GlobalSubject && has:
		e.sawGlobal.Store(true)
	case cacheKey == GlobalSubject && e.sawGlobal.Load():
		// The global epoch was there and is gone: the store was wiped
		// (FLUSHALL, a failover to an empty node) under the running
		// process, and every user epoch with it. Stamp it again, as a
		// start on a wiped store does, before answering.
		if v, err = e.rewipe(ctx); err != nil {
			return 0, false, err
		}
		has = true
	case !has && e.sawGlobal.Load():
		// No epoch for this user, but the global entry the caller holds
		// may be cached from before a wipe that took the user's epoch:
		// ask the store whether the global epoch is still there. This
		// costs a read per user-cache miss of a user without an epoch.
		switch _, gerr := e.st.GetInt64(ctx, GlobalKey); {
		case errors.Is(gerr, store.ErrNotFound):
			if _, err := e.rewipe(ctx); err != nil {
				return 0, false, err
			}
		case gerr != nil:
			return 0, false, unavailable("read "+GlobalKey, gerr)
		}
	}
	if e.c != nil {
		// The entry expires ttl after the moment before the read, so the
		// value served is never older than ttl.
		e.c.putIf(cacheKey, gen, cacheEntry{epoch: v, has: has, expires: nowNS + int64(e.ttl)}, nowNS)
	}
	return v, has, nil
}

// rewipe stamps the global epoch again after finding the store wiped while
// running, runs OnWipe, and counts the wipe (IssuedAfter re-reads the
// global epoch when the count moved during its lookups).
func (e *Epochs) rewipe(ctx context.Context) (int64, error) {
	e.log.Warn("epoch: the global epoch vanished from the store while running (store wiped?); stamping it again")
	v, err := e.StampGlobal(ctx, Reason{Trigger: TriggerStoreWiped, Actor: "gateway", Note: "global epoch vanished while running"})
	if err != nil {
		return 0, err
	}
	e.wipes.Add(1)
	if e.onWipe != nil {
		e.onWipe(ctx)
	}
	return v, nil
}

// Start subscribes to invalidations (returning once the subscription is
// live, or its error) and keeps the subscription up until ctx is done,
// resubscribing after a loss and then dropping the whole cache, since
// messages may have been missed. Without it the cache TTL alone bounds
// staleness. Call it once per process; later calls return nil.
func (e *Epochs) Start(ctx context.Context) error {
	var err error
	started := false
	e.runOnce.Do(func() {
		started = true
		o := invalidate.Options{Store: e.st, Channel: InvalidateChannel, Logger: e.log, Evict: func([]byte) {}}
		if e.c != nil {
			o.Evict = func(p []byte) { e.c.del(string(p)) }
			o.Clear = e.c.clear
		}
		if err = invalidate.Start(ctx, o); err != nil {
			err = unavailable("subscribe", err)
		}
	})
	if !started {
		return nil
	}
	return err
}

// Revocations returns up to n recent stamps (all kept when n <= 0), newest
// first. Entries that do not decode are skipped.
func (e *Epochs) Revocations(ctx context.Context, n int) ([]Revocation, error) {
	if n <= 0 || n > e.revMax {
		n = e.revMax
	}
	raw, err := e.st.LRange(ctx, RevocationsKey, n)
	if err != nil {
		return nil, unavailable("list revocations", err)
	}
	out := make([]Revocation, 0, len(raw))
	for _, b := range raw {
		var r Revocation
		if json.Unmarshal(b, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// unavailable wraps a store failure so that it matches both ErrUnavailable
// and store.ErrUnavailable.
func unavailable(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w: %w", ErrUnavailable, op, store.ErrUnavailable, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
