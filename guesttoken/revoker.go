package guesttoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/internal/ttlcache"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
)

// Store keys and channel. Values are milliseconds since the epoch, written
// with MaxInt64 so that a stamp never moves backwards.
const (
	// KeyPrefix starts every revoked_before key.
	KeyPrefix = "guest:revoked_before:"
	// GlobalKey is the stamp that applies to every guest token.
	GlobalKey = KeyPrefix + "global"
	// Channel carries the key whose stamp changed, for cache invalidation
	// on every replica.
	Channel = "guest:revoked_before"
	// IndexKey is the set of dashboard aliases that have a stamp, so that
	// revocations can be listed without scanning the store.
	IndexKey = "guest:revoked_dashboards"
)

// ResourceKey is the store key of the stamp for one token resource, e.g.
// "guest:revoked_before:dashboard:12". The id is canonicalised first (see
// CanonicalAlias), on stamping and on checking alike.
func ResourceKey(typ, id string) string { return KeyPrefix + typ + ":" + CanonicalAlias(id) }

// CanonicalAlias folds the spellings Superset's own lookups treat as one
// dashboard onto one key: a uuid in any case, with or without hyphens
// (Python's uuid.UUID accepts both), becomes lower-case hyphenated; a
// numeric id loses its leading zeros (Superset tests isdigit() and calls
// int()). Slugs are kept as they are. Folding can only make a revocation
// cover more spellings, never fewer.
func CanonicalAlias(s string) string {
	if u, ok := canonicalUUID(s); ok {
		return u
	}
	if isDigits(s) {
		if t := strings.TrimLeft(s, "0"); t != "" {
			return t
		}
		return "0"
	}
	return s
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func canonicalUUID(s string) (string, bool) {
	var hex []byte
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return "", false
		}
		hex = []byte(strings.ReplaceAll(s, "-", ""))
	case 32:
		hex = []byte(s)
	default:
		return "", false
	}
	if len(hex) != 32 {
		return "", false
	}
	for i, c := range hex {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			hex[i] = c + ('a' - 'A')
		default:
			return "", false
		}
	}
	h := string(hex)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], true
}

// DashboardKey is ResourceKey("dashboard", alias).
func DashboardKey(alias string) string { return ResourceKey("dashboard", alias) }

// Store is what this package needs from the shared store; store.Store
// satisfies it. Errors wrap store.ErrNotFound and store.ErrUnavailable.
type Store interface {
	// MaxInt64 sets key to max(current, v) and returns the stored value.
	MaxInt64(ctx context.Context, key string, v int64) (int64, error)
	// GetInt64 reads a value written by MaxInt64, or store.ErrNotFound.
	GetInt64(ctx context.Context, key string) (int64, error)
	// SAdd and SMembers keep the index of stamped aliases.
	SAdd(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error)
	// Publish and Subscribe carry cache invalidations between replicas.
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
}

var _ Store = store.Store(nil)

// Resolver turns a dashboard reference (numeric id, slug or embed uuid)
// into every alias a guest token may name it by: the numeric id, the slug
// if any, and the embed uuid if embedding is enabled. The wiring
// implements it with Superset's API as the service user. An error means
// nothing may be stamped; a dashboard that does not exist is an error too.
type Resolver interface {
	Aliases(ctx context.Context, idOrSlugOrUUID string) ([]string, error)
}

// Revocation describes a stamp: Scope is "dashboard" or "global", Aliases
// the dashboard aliases it covers (nil for global), RevokedBefore the
// stamp now stored (later than the requested one if a later one existed).
type Revocation struct {
	Scope         string    `json:"scope"`
	Aliases       []string  `json:"aliases,omitempty"`
	RevokedBefore time.Time `json:"revoked_before"`
}

// RevokerOptions configure a Revoker. Store is required.
type RevokerOptions struct {
	Store Store
	// Resolver resolves references for RevokeDashboardRef; nil makes it
	// fail with ErrNoResolver.
	Resolver Resolver
	// CacheTTL bounds how long a stamp read from the store is trusted, and
	// so how long a revocation takes to reach a replica that missed the
	// pub/sub message; 0 means 1s.
	CacheTTL time.Duration
	// CacheMaxEntries bounds the cache; 0 means 10000.
	CacheMaxEntries int
	// Now is the clock of the cache; nil means time.Now.
	Now func() time.Time
	// Logger receives subscription and publish problems; nil means none.
	Logger *zap.Logger
	// Observer counts revocations; nil means none.
	Observer Observer
	// ResubscribeDelay is the wait before Run subscribes again after the
	// subscription failed or ended; 0 means 1s.
	ResubscribeDelay time.Duration
	// OnWipe, if set, runs after a wipe noticed while running (the global
	// key vanished after EnsureGlobal wrote it) has been answered with a
	// new global stamp.
	OnWipe func(ctx context.Context)
	// Auditor and Caller record the stamps ModifyResponse makes after
	// Superset's own revoke (event "guest_token.revoke"); nil means none.
	Auditor Auditor
	Caller  CallerFunc
}

// Revoker writes and reads revoked_before stamps. It is safe for
// concurrent use; one Revoker serves a whole process.
type Revoker struct {
	st    Store
	res   Resolver
	ttl   time.Duration
	now   func() time.Time
	log   *zap.Logger
	obs   Observer
	retry time.Duration
	cache *ttlcache.Cache[string, stamp]
	// sawGlobal is set once the global key is known to exist (EnsureGlobal
	// wrote it): from then on its absence means the store was wiped.
	sawGlobal atomic.Bool
	onWipe    func(ctx context.Context)
	aud       Auditor
	caller    CallerFunc
	// onSubscribed, if set, is called each time Run's subscription is
	// live (tests synchronise on it).
	onSubscribed func()
}

// stamp is a cached store value; ok is false for an absent key (cached
// too, so that unknown dashboards do not reach the store every time).
type stamp struct {
	ms int64
	ok bool
}

// NewRevoker validates o and builds a Revoker. Call Run to receive other
// replicas' invalidations.
func NewRevoker(o RevokerOptions) (*Revoker, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("%w: RevokerOptions.Store is required", ErrConfig)
	}
	r := &Revoker{st: o.Store, res: o.Resolver, ttl: o.CacheTTL, now: o.Now, log: o.Logger, obs: o.Observer,
		retry: o.ResubscribeDelay, onWipe: o.OnWipe, aud: o.Auditor, caller: o.Caller}
	if r.ttl <= 0 {
		r.ttl = time.Second
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.obs == nil {
		r.obs = nopObserver{}
	}
	if r.retry <= 0 {
		r.retry = time.Second
	}
	n := o.CacheMaxEntries
	if n <= 0 {
		n = 10000
	}
	r.cache = ttlcache.New[string, stamp](n)
	return r, nil
}

// RevokedBefore returns the largest stamp among keys (ok false when none
// is stamped), from the cache when fresh. A store failure is ErrUnavailable.
func (r *Revoker) RevokedBefore(ctx context.Context, keys ...string) (ms int64, ok bool, err error) {
	for _, k := range keys {
		s, err := r.lookup(ctx, k)
		if err != nil {
			return 0, false, err
		}
		if s.ok && (!ok || s.ms > ms) {
			ms, ok = s.ms, true
		}
	}
	return ms, ok, nil
}

func (r *Revoker) lookup(ctx context.Context, key string) (stamp, error) {
	now := r.now()
	if s, ok := r.cache.Get(key, now); ok {
		return s, nil
	}
	gen := r.cache.Generation()
	v, err := r.st.GetInt64(ctx, key)
	var s stamp
	switch {
	case err == nil:
		s = stamp{ms: v, ok: true}
	case errors.Is(err, store.ErrNotFound):
		if key == GlobalKey && r.sawGlobal.Load() {
			return r.rewipe(ctx)
		}
	default:
		return stamp{}, fmt.Errorf("%w: read %s: %w", ErrUnavailable, key, err)
	}
	r.cache.PutIf(gen, key, s, now.Add(r.ttl), now)
	return s, nil
}

// presentMark is the global stamp EnsureGlobal writes on a store that was
// not new: a millisecond after 1970, which refuses no real token but makes
// the key exist, so that its disappearance is seen as a wipe.
const presentMark = 1

// EnsureGlobal makes the global stamp exist before anything is served.
// On a fresh store (new, wiped or restored from a backup: see
// store.EnsureGeneration) it stamps now, since dashboard stamps written
// before the wipe are gone and only a global one still refuses the tokens
// they covered. Otherwise it writes presentMark, which moves nothing (stamps
// only go forward). From then on, a global key that vanishes while running
// is a wipe: lookup stamps again (see rewipe).
func (r *Revoker) EnsureGlobal(ctx context.Context, fresh bool) error {
	at := int64(presentMark)
	if fresh {
		at = r.now().UnixMilli()
	}
	v, err := r.st.MaxInt64(ctx, GlobalKey, at)
	if err != nil {
		return fmt.Errorf("%w: stamp %s: %w", ErrUnavailable, GlobalKey, err)
	}
	r.setLocal(GlobalKey, v)
	r.sawGlobal.Store(true)
	if fresh {
		r.publish(ctx, GlobalKey)
		r.obs.ObserveGuestTokenRevocation("global")
	}
	return nil
}

// rewipe answers a global key that vanished while running: every dashboard
// stamp vanished with it, so only a global stamp at now keeps the guest
// tokens they refused out.
func (r *Revoker) rewipe(ctx context.Context) (stamp, error) {
	r.log.Warn("guest-token revocations vanished from the store while running (store wiped?); stamping the global revocation again")
	rev, err := r.RevokeAll(ctx, r.now())
	if err != nil {
		return stamp{}, err
	}
	if r.onWipe != nil {
		r.onWipe(ctx)
	}
	return stamp{ms: rev.RevokedBefore.UnixMilli(), ok: true}, nil
}

// RevokeDashboard stamps every alias with at, so that guest tokens naming
// any of them and issued at or before at are refused. It returns only after
// the store accepted every write; on error some aliases may be stamped and
// others not, and repeating the call is safe (stamps only move forward).
// The change is then published to the other replicas; a failed publish is
// logged, not returned: the writes are durable and the cache TTL bounds
// how long other replicas may miss them.
func (r *Revoker) RevokeDashboard(ctx context.Context, aliases []string, at time.Time) (Revocation, error) {
	aliases = dedupe(aliases)
	if len(aliases) == 0 {
		return Revocation{}, fmt.Errorf("%w: no aliases", ErrBadAlias)
	}
	for _, a := range aliases {
		if !ValidAlias(a) {
			return Revocation{}, fmt.Errorf("%w: %q", ErrBadAlias, a)
		}
	}
	// The index first: a listed alias without a stamp is harmless, a
	// stamp missing from the list would be invisible to admins.
	if err := r.st.SAdd(ctx, IndexKey, aliases...); err != nil {
		return Revocation{}, fmt.Errorf("%w: index: %w", ErrUnavailable, err)
	}
	var stored int64
	keys := make([]string, len(aliases))
	for i, a := range aliases {
		keys[i] = DashboardKey(a)
		v, err := r.st.MaxInt64(ctx, keys[i], at.UnixMilli())
		if err != nil {
			return Revocation{}, fmt.Errorf("%w: stamp %s: %w", ErrUnavailable, keys[i], err)
		}
		stored = max(stored, v)
		r.setLocal(keys[i], v)
	}
	r.publish(ctx, keys...)
	r.obs.ObserveGuestTokenRevocation("dashboard")
	return Revocation{Scope: "dashboard", Aliases: aliases, RevokedBefore: time.UnixMilli(stored).UTC()}, nil
}

// RevokeDashboardRef resolves ref (id, slug or embed uuid) with the
// Resolver and stamps every alias. When resolution fails nothing is
// stamped and the error wraps ErrResolve.
func (r *Revoker) RevokeDashboardRef(ctx context.Context, ref string, at time.Time) (Revocation, error) {
	if r.res == nil {
		return Revocation{}, ErrNoResolver
	}
	if !ValidAlias(ref) {
		return Revocation{}, fmt.Errorf("%w: %q", ErrBadAlias, ref)
	}
	aliases, err := r.res.Aliases(ctx, ref)
	if err != nil {
		return Revocation{}, fmt.Errorf("%w %q: %w", ErrResolve, ref, err)
	}
	// A dashboard without a slug or embedding resolves to empty aliases.
	aliases = slices.DeleteFunc(aliases, func(a string) bool { return a == "" })
	// The reference itself always counts: it is how the admin named it.
	return r.RevokeDashboard(ctx, append([]string{ref}, aliases...), at)
}

// RevokeAll stamps the global key with at: every guest token issued at or
// before at is refused.
func (r *Revoker) RevokeAll(ctx context.Context, at time.Time) (Revocation, error) {
	v, err := r.st.MaxInt64(ctx, GlobalKey, at.UnixMilli())
	if err != nil {
		return Revocation{}, fmt.Errorf("%w: stamp %s: %w", ErrUnavailable, GlobalKey, err)
	}
	r.setLocal(GlobalKey, v)
	r.publish(ctx, GlobalKey)
	r.obs.ObserveGuestTokenRevocation("global")
	return Revocation{Scope: "global", RevokedBefore: time.UnixMilli(v).UTC()}, nil
}

// List returns the global stamp (if any) and one Revocation per stamped
// alias, read from the store (not the cache), sorted by alias.
func (r *Revoker) List(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	if v, err := r.st.GetInt64(ctx, GlobalKey); err == nil {
		if v > presentMark {
			out = append(out, Revocation{Scope: "global", RevokedBefore: time.UnixMilli(v).UTC()})
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	aliases, err := r.st.SMembers(ctx, IndexKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	slices.Sort(aliases)
	for _, a := range aliases {
		v, err := r.st.GetInt64(ctx, DashboardKey(a))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		out = append(out, Revocation{Scope: "dashboard", Aliases: []string{a}, RevokedBefore: time.UnixMilli(v).UTC()})
	}
	return out, nil
}

// setLocal makes this replica see a stamp at once, before the pub/sub
// round trip.
func (r *Revoker) setLocal(key string, v int64) {
	now := r.now()
	r.cache.Put(key, stamp{ms: v, ok: true}, now.Add(r.ttl), now)
}

func (r *Revoker) publish(ctx context.Context, keys ...string) {
	if err := r.st.Publish(ctx, Channel, []byte(strings.Join(keys, "\n"))); err != nil {
		r.log.Warn("guest-token revocation not published; other replicas see it within the cache TTL",
			zap.Duration("cache_ttl", r.ttl), zap.Error(err))
	}
}

// Start subscribes to every replica's invalidations, returning once the
// first attempt answered, and keeps the subscription until ctx is done;
// each resubscription clears the cache, because messages sent while
// unsubscribed are lost (internal/invalidate). Without it the cache TTL
// alone bounds staleness.
func (r *Revoker) Start(ctx context.Context) error {
	return invalidate.Start(ctx, invalidate.Options{Store: r.st, Channel: Channel, Logger: r.log,
		MinBackoff: r.retry, Clear: r.cache.Clear, OnSubscribed: r.onSubscribed,
		Evict: func(p []byte) {
			for k := range strings.SplitSeq(string(p), "\n") {
				r.cache.Delete(k)
			}
		}})
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Check decides whether a guest token issued at iat for the resources
// (ResourceKey of each) was revoked: by the global stamp or by any of its
// dashboards' (every alias was stamped when the dashboard was revoked).
// err is a store failure (fail closed: 503).
func (r *Revoker) Check(ctx context.Context, iat time.Time, resources []string) (policy.Decision, error) {
	keys := make([]string, 0, len(resources)+1)
	keys = append(keys, GlobalKey)
	keys = append(keys, resources...)
	ms, stamped, err := r.RevokedBefore(ctx, keys...)
	if err != nil {
		return policy.Decision{}, err
	}
	if d := CheckRevocation(iat, ms, stamped); !d.Allow {
		return policy.Decision{Reason: policy.ReasonGuestRevoked}, nil
	}
	return policy.Decision{Allow: true}, nil
}
