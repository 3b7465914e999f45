package accesstoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/internal/ttlcache"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
)

// MinPepperLen is the shortest pepper New accepts.
const MinPepperLen = 32

// Policy bounds what users may create. Zero fields get the defaults.
type Policy struct {
	// MaxTTL is the longest expiry a token may have; 0 means 90 days.
	MaxTTL time.Duration
	// TTLChoices are the expiries the page offers; those above MaxTTL are
	// dropped. nil means 1, 7, 30 and 90 days.
	TTLChoices []time.Duration
	// MaxPerUser bounds a user's live (not expired, not revoked) tokens;
	// 0 means 20.
	MaxPerUser int
	// MaxCIDRs bounds the source networks of one token; 0 means 16.
	MaxCIDRs int
}

func (p Policy) withDefaults() Policy {
	if p.MaxTTL <= 0 {
		p.MaxTTL = 90 * 24 * time.Hour
	}
	if p.TTLChoices == nil {
		p.TTLChoices = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour}
	}
	var keep []time.Duration
	for _, d := range p.TTLChoices {
		if d > 0 && d <= p.MaxTTL {
			keep = append(keep, d)
		}
	}
	if len(keep) == 0 {
		keep = []time.Duration{p.MaxTTL}
	}
	p.TTLChoices = keep
	if p.MaxPerUser <= 0 {
		p.MaxPerUser = 20
	}
	if p.MaxCIDRs <= 0 {
		p.MaxCIDRs = 16
	}
	return p
}

// Owner is the Superset user a token acts as.
type Owner struct {
	ID       string // Superset user id, decimal
	Username string
}

// Attrs are what a token is: stored in its Record, shown in its Info.
type Attrs struct {
	ID        string    `json:"id"`
	OwnerID   string    `json:"owner_id"`
	OwnerName string    `json:"owner_name"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	CIDRs     []string  `json:"cidrs,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Record is a token as stored under RecordKey (JSON). It holds the HMAC of
// the secret, never the secret. Records are immutable once cached: never
// modify one returned by this package.
type Record struct {
	Attrs
	// MAC is HMAC-SHA256(pepper, "accesstoken:v1:" + id + ":" + secret).
	MAC []byte `json:"mac"`
}

// Status is "revoked", "expired" or "active" at now.
func (r *Record) Status(now time.Time) string {
	switch {
	case !r.Revoked.IsZero():
		return "revoked"
	case !now.Before(r.Expires):
		return "expired"
	}
	return "active"
}

// Info is what the page and the admin API show of a token: the record
// without its MAC, with its last use and status.
type Info struct {
	Attrs
	LastUsed   time.Time `json:"last_used,omitzero"`
	LastUsedIP string    `json:"last_used_ip,omitempty"`
	Status     string    `json:"status"`
}

// used is the value under UsedKey.
type used struct {
	At  time.Time `json:"at"`
	IP  string    `json:"ip,omitempty"`
	IPs []string  `json:"ips,omitempty"` // known addresses, oldest first, capped
}

const maxKnownIPs = 32

// ManagerOptions configure NewManager. Store and Pepper are required.
type ManagerOptions struct {
	Store Store
	// Pepper keys the HMAC of token secrets; at least MinPepperLen bytes,
	// the same on every replica and kept for as long as tokens live
	// (changing it kills every token). Keep it apart from the store: a
	// copy of the store alone then cannot be used to test guesses.
	Pepper []byte
	Policy Policy
	// Retention keeps a record this long after its expiry, so the page
	// still shows expired and revoked tokens; 0 means 7 days.
	Retention time.Duration
	// CacheTTL bounds how long a record read from the store is trusted,
	// and so how long a revocation takes to reach a replica that missed
	// its pub/sub message; 0 means 1s, negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cached records; 0 means 10000.
	CacheSize int
	// ResubscribeDelay is the wait before subscribing again after the
	// subscription failed; 0 means 1s.
	ResubscribeDelay time.Duration
	// Now is the clock; nil means time.Now. Rand is the token randomness;
	// nil means crypto/rand.
	Now  func() time.Time
	Rand io.Reader
	// Logger, Observer and Auditor may be nil.
	Logger   *zap.Logger
	Observer Observer
	Auditor  Auditor
}

// Manager creates, lists, looks up and revokes tokens. Build it with
// NewManager and call Start once; it is safe for concurrent use.
type Manager struct {
	st        Store
	pepper    []byte
	pol       Policy
	retention time.Duration
	ttl       time.Duration
	cache     *ttlcache.Cache[string, *entry]
	retry     time.Duration
	now       func() time.Time
	rnd       io.Reader
	log       *zap.Logger
	obs       Observer
	aud       Auditor

	// usage is this replica's memory of when it last wrote each token's
	// last use and which addresses it has seen, to bound store writes.
	usageMu sync.Mutex
	usage   map[string]*usage
}

// entry is a cached lookup: rec nil for an absent id.
type entry struct {
	rec   *Record
	cidrs []netip.Prefix
}

type usage struct {
	wrote time.Time
	ips   map[string]bool
}

// NewManager validates o and builds a Manager.
func NewManager(o ManagerOptions) (*Manager, error) {
	if o.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrConfig)
	}
	if len(o.Pepper) < MinPepperLen {
		return nil, fmt.Errorf("%w: Pepper must be at least %d bytes", ErrConfig, MinPepperLen)
	}
	m := &Manager{st: o.Store, pepper: slices.Clone(o.Pepper), pol: o.Policy.withDefaults(), retention: o.Retention,
		ttl: o.CacheTTL, retry: o.ResubscribeDelay, now: o.Now, rnd: o.Rand, log: o.Logger, obs: o.Observer, aud: o.Auditor,
		usage: map[string]*usage{}}
	if m.retention <= 0 {
		m.retention = 7 * 24 * time.Hour
	}
	if m.ttl == 0 {
		m.ttl = time.Second
	}
	if m.ttl > 0 {
		n := o.CacheSize
		if n <= 0 {
			n = 10000
		}
		m.cache = ttlcache.New[string, *entry](n)
	}
	if m.retry <= 0 {
		m.retry = time.Second
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.obs == nil {
		m.obs = nopObserver{}
	}
	if m.aud == nil {
		m.aud = nopAuditor{}
	}
	return m, nil
}

// Policy returns the effective policy (defaults applied).
func (m *Manager) Policy() Policy { return m.pol }

// Start subscribes to other replicas' revocations and keeps the
// subscription alive until ctx ends. An error means the first attempt
// failed; it keeps retrying in the background, and meanwhile CacheTTL
// alone bounds propagation.
func (m *Manager) Start(ctx context.Context) error {
	return invalidate.Start(ctx, invalidate.Options{Store: m.st, Channel: InvalidateChannel, Logger: m.log,
		MinBackoff: m.retry, Clear: m.clearCache,
		Evict: func(p []byte) {
			if m.cache != nil {
				m.cache.Delete(string(p))
			}
		}})
}

func (m *Manager) clearCache() {
	if m.cache != nil {
		m.cache.Clear()
	}
}

func unavailable(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("accesstoken: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("accesstoken: %s: %w: %w", op, ErrUnavailable, errors.Join(store.ErrUnavailable, err))
}

func (m *Manager) mac(id, secret string) []byte {
	h := hmac.New(sha256.New, m.pepper)
	h.Write([]byte("accesstoken:v1:"))
	h.Write([]byte(id))
	h.Write([]byte{':'})
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// Create makes a token for owner and returns it with its record. The
// token is the only copy of the secret: show it once, never store or log
// it. Errors: ErrInvalid (the message says what is wrong), ErrTooMany,
// ErrUnavailable.
func (m *Manager) Create(ctx context.Context, owner Owner, name string, scopes []string, ttl time.Duration, cidrs []string) (string, Record, error) {
	if owner.ID == "" {
		return "", Record{}, fmt.Errorf("%w: no owner", ErrInvalid)
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", Record{}, fmt.Errorf("%w: the name must be 1 to 64 printable characters", ErrInvalid)
	}
	var sc []string
	for _, s := range scopes {
		if !policy.ValidScope(s) {
			return "", Record{}, fmt.Errorf("%w: unknown scope", ErrInvalid)
		}
		if !slices.Contains(sc, s) {
			sc = append(sc, s)
		}
	}
	if len(sc) == 0 {
		return "", Record{}, fmt.Errorf("%w: choose at least one scope", ErrInvalid)
	}
	if ttl <= 0 || ttl > m.pol.MaxTTL {
		return "", Record{}, fmt.Errorf("%w: the expiry must be at most %s", ErrInvalid, humanDuration(m.pol.MaxTTL))
	}
	var nets []string
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		p, err := policy.ParseCIDR(c)
		if err != nil {
			return "", Record{}, fmt.Errorf("%w: %q is not an IP address or network", ErrInvalid, truncate(c, 64))
		}
		if !slices.Contains(nets, p.String()) {
			nets = append(nets, p.String())
		}
	}
	if len(nets) > m.pol.MaxCIDRs {
		return "", Record{}, fmt.Errorf("%w: at most %d networks", ErrInvalid, m.pol.MaxCIDRs)
	}
	list, err := m.List(ctx, owner.ID)
	if err != nil {
		return "", Record{}, err
	}
	now := m.now()
	live := 0
	for _, in := range list {
		if in.Status == "active" {
			live++
		}
	}
	if live >= m.pol.MaxPerUser {
		return "", Record{}, fmt.Errorf("%w: at most %d active tokens; revoke one first", ErrTooMany, m.pol.MaxPerUser)
	}
	token, id, secret, err := Generate(m.rnd)
	if err != nil {
		return "", Record{}, err
	}
	rec := Record{Attrs: Attrs{ID: id, OwnerID: owner.ID, OwnerName: owner.Username, Name: name, Scopes: sc, CIDRs: nets,
		Created: now.UTC().Truncate(time.Millisecond), Expires: now.Add(ttl).UTC().Truncate(time.Millisecond)}, MAC: m.mac(id, secret)}
	b, err := json.Marshal(&rec)
	if err != nil {
		return "", Record{}, fmt.Errorf("accesstoken: encode: %w", err)
	}
	// Index first: an index entry without a record is pruned on listing;
	// a record without an index entry would be invisible to its owner.
	if err := m.st.SAdd(ctx, UserIndexKey(owner.ID), id); err != nil {
		return "", Record{}, unavailable("create", err)
	}
	if err := m.st.SAdd(ctx, IndexKey, id); err != nil {
		return "", Record{}, unavailable("create", err)
	}
	if err := m.st.Set(ctx, RecordKey(id), b, ttl+m.retention); err != nil {
		return "", Record{}, unavailable("create", err)
	}
	m.obs.ObserveAccessTokenManaged("created")
	m.emit(ctx, audit.Event{Event: "access_token.created", Actor: "user:" + owner.ID, Subject: "access_token:" + id,
		Outcome: audit.OutcomeSuccess, Details: map[string]any{"name": name, "scopes": sc, "expires": rec.Expires, "cidrs": nets}})
	return token, rec, nil
}

// humanDuration labels an expiry for people (the page's choices, the
// policy's error message): the largest of day, hour, minute and second
// that divides d exactly, so "1 day", "90 days", "36 hours", "90 minutes",
// "3 seconds"; d.String() for what none divides (fractions of a second)
// and for d <= 0.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d%u.size == 0 {
			if n := d / u.size; n != 1 {
				return fmt.Sprintf("%d %ss", n, u.name)
			}
			return "1 " + u.name
		}
	}
	return d.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (m *Manager) emit(ctx context.Context, ev audit.Event) {
	if err := m.aud.Emit(ctx, ev); err != nil {
		m.log.Warn("audit event not fully recorded", zap.String("event", ev.Event), zap.Error(err))
	}
}

// Get reads a token's record from the store (not the cache). Errors:
// ErrNotFound, ErrUnavailable.
func (m *Manager) Get(ctx context.Context, id string) (*Record, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	b, err := m.st.Get(ctx, RecordKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable("get", err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil || rec.ID != id {
		m.log.Warn("access-token record unreadable", zap.String("token_id", id))
		return nil, ErrNotFound
	}
	return &rec, nil
}

// lookup is Get through the cache (absent ids cached too).
func (m *Manager) lookup(ctx context.Context, id string) (*entry, error) {
	now := m.now()
	var gen uint64
	if m.cache != nil {
		g := m.cache.Generation()
		e, ok := m.cache.Get(id, now)
		if ok {
			return e, nil
		}
		gen = g
	}
	rec, err := m.Get(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	e := &entry{rec: rec}
	if rec != nil {
		for _, c := range rec.CIDRs {
			if p, err := policy.ParseCIDR(c); err == nil {
				e.cidrs = append(e.cidrs, p)
			} else {
				// An unreadable network must not widen the token.
				e.cidrs = append(e.cidrs, netip.Prefix{})
			}
		}
	}
	if m.cache != nil {
		m.cache.PutIf(gen, id, e, now.Add(m.ttl), now)
	}
	return e, nil
}

// List returns owner's tokens, newest first; ids whose record is gone are
// pruned from the index.
func (m *Manager) List(ctx context.Context, ownerID string) ([]Info, error) {
	if ownerID == "" {
		return nil, nil
	}
	return m.list(ctx, UserIndexKey(ownerID), ownerID)
}

// ListAll returns every user's tokens, newest first (the admin's view).
func (m *Manager) ListAll(ctx context.Context) ([]Info, error) {
	return m.list(ctx, IndexKey, "")
}

func (m *Manager) list(ctx context.Context, index, ownerID string) ([]Info, error) {
	ids, err := m.st.SMembers(ctx, index)
	if err != nil {
		return nil, unavailable("list", err)
	}
	now := m.now()
	var out []Info
	var stale []string
	for _, id := range ids {
		rec, err := m.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			stale = append(stale, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if ownerID != "" && rec.OwnerID != ownerID {
			continue
		}
		in := Info{Attrs: rec.Attrs, Status: rec.Status(now)}
		if u, err := m.readUsed(ctx, id); err == nil {
			in.LastUsed, in.LastUsedIP = u.At, u.IP
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, unavailable("list", err)
		}
		out = append(out, in)
	}
	if len(stale) > 0 {
		if err := m.st.SRem(ctx, index, stale...); err != nil {
			m.log.Warn("access-token index prune failed", zap.Error(err))
		}
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (m *Manager) readUsed(ctx context.Context, id string) (used, error) {
	var u used
	b, err := m.st.Get(ctx, UsedKey(id))
	if err != nil {
		return u, err
	}
	_ = json.Unmarshal(b, &u)
	return u, nil
}

// Revoke marks token id revoked by by (an audit actor: "user:42",
// "admin-token:ci"), forgets its upstream credentials and tells every
// replica to drop it from its cache. Revoking a revoked token is a no-op.
// Errors: ErrNotFound, ErrUnavailable.
func (m *Manager) Revoke(ctx context.Context, id, by string) error {
	return m.revoke(ctx, id, by, "")
}

// RevokeOwned is Revoke for the owner's own page: a token that is not
// ownerID's is ErrNotFound, exactly like a missing one.
func (m *Manager) RevokeOwned(ctx context.Context, ownerID, id string) error {
	if ownerID == "" {
		return ErrNotFound
	}
	return m.revoke(ctx, id, "user:"+ownerID, ownerID)
}

func (m *Manager) revoke(ctx context.Context, id, by, ownerID string) error {
	rec, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if ownerID != "" && rec.OwnerID != ownerID {
		return ErrNotFound
	}
	if !rec.Revoked.IsZero() {
		return nil
	}
	now := m.now()
	rec.Revoked, rec.RevokedBy = now.UTC().Truncate(time.Millisecond), by
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("accesstoken: encode: %w", err)
	}
	keep := rec.Expires.Sub(now) + m.retention
	if keep < m.retention {
		keep = m.retention
	}
	if err := m.st.Set(ctx, RecordKey(id), b, keep); err != nil {
		return unavailable("revoke", err)
	}
	if m.cache != nil {
		m.cache.Delete(id)
	}
	if err := m.st.Delete(ctx, UpstreamKey(id)); err != nil {
		m.log.Warn("revoked token's upstream credentials not deleted", zap.String("token_id", id), zap.Error(err))
	}
	if err := m.st.Publish(ctx, InvalidateChannel, []byte(id)); err != nil {
		m.log.Warn("access-token invalidation not published; other replicas drop it within the cache TTL", zap.Error(err))
	}
	m.obs.ObserveAccessTokenManaged("revoked")
	m.emit(ctx, audit.Event{Event: "access_token.revoked", Actor: by, Subject: "access_token:" + id,
		Outcome: audit.OutcomeSuccess, Details: map[string]any{"owner": "user:" + rec.OwnerID, "name": rec.Name}})
	return nil
}

// touch records a use of id from ip: at once when this replica has not
// seen ip for the token (and, if the store has not either, with an
// access_token.new_ip audit event), else at most once a minute. Failures
// are logged, never the request's.
func (m *Manager) touch(ctx context.Context, rec *Record, ip, requestID string) {
	now := m.now()
	m.usageMu.Lock()
	u := m.usage[rec.ID]
	if u == nil {
		if len(m.usage) >= 100000 {
			clear(m.usage)
		}
		u = &usage{ips: map[string]bool{}}
		m.usage[rec.ID] = u
	}
	newIP := ip != "" && !u.ips[ip]
	due := now.Sub(u.wrote) >= time.Minute
	if !newIP && !due {
		m.usageMu.Unlock()
		return
	}
	u.wrote = now
	if ip != "" && len(u.ips) < maxKnownIPs {
		u.ips[ip] = true
	}
	m.usageMu.Unlock()

	prev, err := m.readUsed(ctx, rec.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("access-token last use not read", zap.Error(err))
		return
	}
	next := used{At: now.UTC().Truncate(time.Second), IP: ip, IPs: prev.IPs}
	first := ip != "" && !slices.Contains(prev.IPs, ip)
	if first {
		next.IPs = append(next.IPs, ip)
		if len(next.IPs) > maxKnownIPs {
			next.IPs = next.IPs[len(next.IPs)-maxKnownIPs:]
		}
	}
	b, _ := json.Marshal(next)
	keep := rec.Expires.Sub(now) + m.retention
	if err := m.st.Set(ctx, UsedKey(rec.ID), b, max(keep, time.Minute)); err != nil {
		m.log.Warn("access-token last use not written", zap.Error(err))
	}
	if first {
		m.emit(ctx, audit.Event{Event: "access_token.new_ip", Actor: "user:" + rec.OwnerID, Subject: "access_token:" + rec.ID,
			RequestID: requestID, IP: ip, Outcome: audit.OutcomeSuccess, Details: map[string]any{"name": rec.Name}})
	}
}
