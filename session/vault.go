package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/ui"
)

// WhoAmIFunc asks Superset who the holder of jar is (GET /api/v1/me/ with
// the jar's cookies). It returns userID "" and a nil error for an anonymous
// jar (401), and an error when Superset could not say. See WhoAmIVia.
type WhoAmIFunc func(ctx context.Context, jar Jar) (userID, username string, err error)

// Observer receives session metrics. Implementations must be safe for
// concurrent use and must not block. Label values are fixed identifiers.
type Observer interface {
	// SessionCreated counts a new record: kind "anonymous" or "user".
	SessionCreated(kind string)
	// SessionRotated counts an id rotation on identity change.
	SessionRotated()
	// SessionDestroyed counts a deleted record by reason: "logout", "idle",
	// "absolute", "rotated", "ended" (by its user or an admin), "revoked"
	// (refused by an epoch), "unidentified" (Superset's session changed
	// and WhoAmI could not say whose it is), "upstream_logout" (Superset
	// answered the signed-in session as anonymous: it ended it itself).
	SessionDestroyed(reason string)
	// SessionLookup counts a cookie lookup by result: "hit", "miss",
	// "not_found", "bad_cookie", "error".
	SessionLookup(result string)
	// SessionRateLimited counts an anonymous session refused by the per-IP
	// creation limit.
	SessionRateLimited()
	// Login counts a sign-in seen by its outcome: method is the kind of
	// login ("form", "oauth", "remote_user", "other": never a provider
	// name, which comes from the path), outcome "success" or "failure".
	Login(method, outcome string)
}

// EpochChecker decides whether a credential issued at issued is still
// valid for userID (A2 invalidation epochs); *epoch.Epochs implements it.
type EpochChecker interface {
	IssuedAfter(ctx context.Context, userID string, issued time.Time, granularity time.Duration) (policy.Decision, error)
}

// Auditor receives audit events; *audit.Logger implements it. Emit must not
// block for long: it runs on the request path.
type Auditor interface {
	Emit(ctx context.Context, ev audit.Event) error
}

type nopObserver struct{}

func (nopObserver) SessionCreated(string)   {}
func (nopObserver) SessionRotated()         {}
func (nopObserver) SessionDestroyed(string) {}
func (nopObserver) SessionLookup(string)    {}
func (nopObserver) SessionRateLimited()     {}
func (nopObserver) Login(string, string)    {}

// Options configure a Vault. Store, Keys and SupersetSecretKey are required;
// every other zero value has the default its comment gives.
type Options struct {
	// Store holds records, the per-user index and the invalidation channel.
	Store Store
	// Keys sign and encrypt the gateway cookie, newest first: the first
	// signs, all verify.
	Keys []KeyPair
	// Secure selects the __Host-sg_session cookie with the Secure attribute
	// (an https public URL); false means sg_session without Secure.
	Secure bool
	// SameSite is the cookie's SameSite attribute; zero means Lax.
	// http.SameSiteNoneMode needs Secure (New refuses it otherwise).
	SameSite http.SameSite
	// SupersetSecretKey is Superset's SECRET_KEY: it verifies the Flask
	// session cookie whose _user_id tells who logged in. Never logged.
	SupersetSecretKey string
	// WhoAmI identifies the user of a jar whose session cookie is not a
	// Flask signed cookie (SESSION_SERVER_SIDE = True, where the sid
	// survives a login). It is called whenever an answer may have changed
	// who holds Superset's session, whatever the route: a new or changed
	// sid, a sign-in route (superset.LoginMethod), or an anonymous
	// session whose sid Superset set again; never for a signed-in session
	// whose cookie did not change. Also, best effort, to learn the
	// username of a fresh login. When it fails the answer becomes a 503
	// and the session is dropped: a session the gateway cannot book to a
	// user must not act as one. nil means only sign-in routes rotate
	// (identity unknown is treated as changed) and the record carries no
	// user id.
	WhoAmI WhoAmIFunc

	// IdleTimeout ends a signed-in session unused this long; 0 means 8h.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends any session this long after creation; 0 means 24h.
	AbsoluteTimeout time.Duration
	// AnonymousIdleTimeout is the idle timeout of anonymous sessions; 0
	// means 30m.
	AnonymousIdleTimeout time.Duration
	// CacheTTL bounds how long a replica serves a cached record without
	// reading the store: the hard bound on cross-replica propagation of a
	// logout or rotation when a pub/sub message is lost. 0 means 1s;
	// negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cached records; 0 means 100000.
	CacheSize int
	// StoreTimeout bounds each store call made for a request; 0 means 2s.
	StoreTimeout time.Duration

	// AnonymousRate and AnonymousBurst limit how fast one client IP (IPv6:
	// its /64) may create anonymous sessions. The limit is per replica and
	// in memory. 0 means 1 per second with a burst of 20.
	AnonymousRate  rate.Limit
	AnonymousBurst int
	// AnonymousLimiter, when set, replaces the per-replica limit above
	// (the rate limits' anonymous-session class, shared by replicas).
	AnonymousLimiter AnonymousLimiter
	// AnonymousIPs bounds the IPs tracked by the limiter; when full it
	// starts afresh. 0 means 65536.
	AnonymousIPs int

	// RetryAfter is sent with 503 when the store is down; 0 means 5s.
	RetryAfter time.Duration
	// ClientIP returns the client address of a request (proxy.ClientIP);
	// nil means the host part of RemoteAddr.
	ClientIP func(*http.Request) netip.Addr
	// RequestID returns the request id for audit events (proxy.RequestID);
	// nil means none.
	RequestID func(*http.Request) string
	// Epochs refuses a signed-in session whose login_at is not after the
	// user's (or the global) invalidation epoch: such a session is
	// destroyed and the request goes on anonymous. An error (store down)
	// answers 503 and keeps the cookie. nil means no epoch check.
	Epochs EpochChecker
	// LoginPath is where the /-/sessions page sends visitors who are not
	// signed in; "" means "/login/".
	LoginPath string

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of session ids and nonces; nil means crypto/rand.
	// It must be a cryptographically secure source outside tests.
	Rand io.Reader
	// Logger receives errors and warnings; nil means zap.NewNop().
	Logger *zap.Logger
	// Observer receives metrics; nil means none.
	Observer Observer
	// Audit receives login and session events; nil means none.
	Audit Auditor
}

// Vault owns the gateway sessions. Build it with New; it is safe for
// concurrent use.
type Vault struct {
	st           Store
	codec        *CookieCodec
	secret       string
	whoAmI       WhoAmIFunc
	idle         time.Duration
	absolute     time.Duration
	anonIdle     time.Duration
	seenEvery    time.Duration
	storeTimeout time.Duration
	retryAfter   string
	cache        *cache
	limiter      *ipLimiter
	anonLimiter  AnonymousLimiter
	clientIP     func(*http.Request) netip.Addr
	requestID    func(*http.Request) string
	epochs       EpochChecker
	loginPath    string
	now          func() time.Time
	rand         io.Reader
	log          *zap.Logger
	obs          Observer
	audit        Auditor
	page         *template.Template
	errs         *ui.Errors // the styled error page of /-/sessions (a store outage)
}

// New validates opts and builds a Vault. Call Start to receive other
// replicas' invalidations.
func New(opts Options) (*Vault, error) {
	if opts.Store == nil {
		return nil, errors.New("session: Options.Store is required")
	}
	if opts.SupersetSecretKey == "" {
		return nil, errors.New("session: Options.SupersetSecretKey is required")
	}
	v := &Vault{
		st:           opts.Store,
		secret:       opts.SupersetSecretKey,
		whoAmI:       opts.WhoAmI,
		idle:         orDur(opts.IdleTimeout, 8*time.Hour),
		absolute:     orDur(opts.AbsoluteTimeout, 24*time.Hour),
		anonIdle:     orDur(opts.AnonymousIdleTimeout, 30*time.Minute),
		storeTimeout: orDur(opts.StoreTimeout, 2*time.Second),
		clientIP:     opts.ClientIP,
		epochs:       opts.Epochs,
		requestID:    opts.RequestID,
		loginPath:    opts.LoginPath,
		now:          opts.Now,
		rand:         opts.Rand,
		log:          opts.Logger,
		obs:          opts.Observer,
		audit:        opts.Audit,
	}
	codec, err := NewCookieCodec(opts.Keys, opts.Secure, v.absolute, WithSameSite(opts.SameSite))
	if err != nil {
		return nil, err
	}
	v.codec = codec
	// last_seen is written at most once a minute, and often enough that
	// the store's TTL (computed from it) cannot run out under an active
	// session even with test-sized idle timeouts.
	v.seenEvery = min(time.Minute, min(v.idle, v.anonIdle)/4)
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = time.Second
	}
	size := opts.CacheSize
	if size <= 0 {
		size = 100000
	}
	v.cache = newCache(size, ttl)
	r, b := opts.AnonymousRate, opts.AnonymousBurst
	if r == 0 {
		r = 1
	}
	if b <= 0 {
		b = 20
	}
	v.limiter = newIPLimiter(r, b, opts.AnonymousIPs)
	v.anonLimiter = opts.AnonymousLimiter
	v.retryAfter = policy.RetryAfter(opts.RetryAfter)
	if v.clientIP == nil {
		v.clientIP = remoteIP
	}
	if v.loginPath == "" {
		v.loginPath = "/login/"
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.rand == nil {
		v.rand = rand.Reader
	}
	if v.log == nil {
		v.log = zap.NewNop()
	}
	if v.obs == nil {
		v.obs = nopObserver{}
	}
	if v.page, err = parsePage(); err != nil {
		return nil, err
	}
	if v.errs, err = ui.NewErrors(); err != nil {
		return nil, fmt.Errorf("session: error page: %w", err)
	}
	return v, nil
}

func orDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// CookieName is the gateway cookie's name.
func (v *Vault) CookieName() string { return v.codec.Name() }

// Start subscribes to InvalidateChannel and returns once the subscription
// is live, so that a deletion published afterwards by any replica evicts it
// from this replica's cache. The subscription is kept (resubscribing after
// store errors) until ctx is done. An error means the first attempt failed;
// the retries continue in the background regardless, and until one succeeds
// the cache TTL alone bounds staleness.
func (v *Vault) Start(ctx context.Context) error {
	err := invalidate.Start(ctx, invalidate.Options{Store: v.st, Channel: InvalidateChannel, Logger: v.log,
		Evict: func(p []byte) {
			if hid := string(p); validHandle(hid) {
				v.cache.del(hid)
			}
		},
		Clear: v.cache.clear})
	if err != nil {
		return fmt.Errorf("session: subscribe %s: %w", InvalidateChannel, err)
	}
	return nil
}

func validHandle(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (v *Vault) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), v.storeTimeout)
}

func (v *Vault) newID() ([]byte, error) {
	id := make([]byte, IDLen)
	if _, err := io.ReadFull(v.rand, id); err != nil {
		return nil, fmt.Errorf("session: random id: %w", err)
	}
	return id, nil
}

func (v *Vault) idleFor(s *Session) time.Duration {
	if s.Anonymous() {
		return v.anonIdle
	}
	return v.idle
}

// expiry returns why s (last seen at seenMS) is over at now, or "".
func (v *Vault) expiry(s *Session, seenMS int64, now time.Time) string {
	if now.UnixMilli()-seenMS >= v.idleFor(s).Milliseconds() {
		return "idle"
	}
	if now.Sub(s.Created) >= v.absolute {
		return "absolute"
	}
	return ""
}

// ttl is the store TTL of s written at now: until the earlier of its idle
// and absolute deadlines.
func (v *Vault) ttl(s *Session, now time.Time) time.Duration {
	d := min(s.LastSeen.Add(v.idleFor(s)).Sub(now), s.Created.Add(v.absolute).Sub(now))
	return max(d, time.Second)
}

// sessionFor returns the live session of a gateway cookie value: from the
// cache when this value was seen before, else decoded and loaded. Errors:
// ErrBadCookie, ErrNotFound, ErrExpired, or a store error (wrapping
// store.ErrUnavailable).
func (v *Vault) sessionFor(ctx context.Context, value string, now time.Time, touch bool) (*cacheEntry, error) {
	if e := v.cache.getByValue(value, now); e != nil {
		v.obs.SessionLookup("hit")
		return v.check(ctx, e, now, touch)
	}
	id, err := v.codec.Decode(value)
	if err != nil {
		v.obs.SessionLookup("bad_cookie")
		return nil, err
	}
	hid := hashID(id)
	e := v.cache.get(hid, now)
	if e != nil {
		v.obs.SessionLookup("hit")
	} else if e, err = v.load(ctx, id, hid, now); err != nil {
		return nil, err
	}
	if e, err = v.check(ctx, e, now, touch); err != nil {
		return nil, err
	}
	v.cache.putValue(value, e, now)
	return e, nil
}

// check enforces the timeouts on a loaded session and, if touch, writes
// last_seen when due; it returns the entry to use from now on.
func (v *Vault) check(ctx context.Context, e *cacheEntry, now time.Time, touch bool) (*cacheEntry, error) {
	hid := e.s.hid
	seen := e.seen.Load()
	if why := v.expiry(e.s, seen, now); why != "" {
		if err := v.destroy(ctx, hid, e.s.UserID, why); err != nil {
			v.log.Warn("deleting expired session failed", zap.String("session", short(hid)), zap.Error(err))
		}
		v.emit(ctx, nil, audit.Event{Event: "session.expired", Actor: "gateway", Subject: subject(e.s),
			Outcome: audit.OutcomeSuccess, Reason: why})
		return nil, fmt.Errorf("%w: %s", ErrExpired, why)
	}
	nowMS := now.UnixMilli()
	if touch && nowMS-seen >= v.seenEvery.Milliseconds() && e.seen.CompareAndSwap(seen, nowMS) {
		s := *e.s
		s.LastSeen = now
		switch err := v.write(ctx, &s, now, true); {
		case err == nil:
			e = v.cache.put(&s, now)
		case errors.Is(err, ErrNotFound):
			v.cache.del(hid)
			if v.rotatedRecently(ctx, hid, now) {
				return nil, ErrRotated
			}
			return nil, err
		default:
			// A missed last_seen write is not worth a 503: the read
			// itself succeeded. Let the next request try again.
			e.seen.CompareAndSwap(nowMS, seen)
			v.log.Warn("last_seen write failed", zap.String("session", short(hid)), zap.Error(err))
		}
	}
	return e, nil
}

func (v *Vault) load(ctx context.Context, id []byte, hid string, now time.Time) (*cacheEntry, error) {
	gen := v.cache.generation(hid)
	sctx, cancel := v.storeCtx(ctx)
	b, err := v.st.Get(sctx, recordKey(hid))
	cancel()
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			v.obs.SessionLookup("not_found")
			if v.rotatedRecently(ctx, hid, now) {
				return nil, ErrRotated
			}
			return nil, ErrNotFound
		}
		v.obs.SessionLookup("error")
		return nil, fmt.Errorf("session: load: %w", err)
	}
	s, err := parseRecord(hid, b)
	if err == nil {
		s.id = id
		s.Jar, err = openJar(id, hid, s.sealed)
	}
	if err != nil {
		// Not an outage: the record is unusable, so the caller starts
		// afresh, and the record goes.
		v.obs.SessionLookup("not_found")
		v.log.Warn("unreadable session record", zap.String("session", short(hid)), zap.Error(err))
		return nil, ErrNotFound
	}
	v.obs.SessionLookup("miss")
	return v.cache.putIf(gen, s, now), nil
}

// write stores s. An update (of a record that already existed) checks the
// dead marker afterwards and undoes itself if the session was destroyed
// meanwhile, so a destroyed session is never resurrected by a concurrent
// write; it then returns ErrNotFound.
func (v *Vault) write(ctx context.Context, s *Session, now time.Time, update bool) error {
	b, err := s.marshal()
	if err != nil {
		return fmt.Errorf("session: marshal: %w", err)
	}
	sctx, cancel := v.storeCtx(ctx)
	defer cancel()
	if err := v.st.Set(sctx, recordKey(s.hid), b, v.ttl(s, now)); err != nil {
		return fmt.Errorf("session: write: %w", err)
	}
	if !update {
		return nil
	}
	switch _, err := v.st.Get(sctx, deadKey(s.hid)); {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("session: write: %w", err)
	}
	if err := v.st.Delete(sctx, recordKey(s.hid)); err != nil {
		return fmt.Errorf("session: undo write of destroyed session: %w", err)
	}
	return ErrNotFound
}

// create writes a new session with a fresh id and returns it with its
// cookie value.
func (v *Vault) create(ctx context.Context, tmpl Session, jar Jar, now time.Time) (*Session, string, error) {
	id, err := v.newID()
	if err != nil {
		return nil, "", err
	}
	s := tmpl
	s.id, s.hid, s.Jar = id, hashID(id), jar
	s.Created, s.LastSeen = now, now
	if s.sealed, err = sealJar(id, s.hid, jar, v.rand); err != nil {
		return nil, "", err
	}
	val, err := v.codec.Encode(id)
	if err != nil {
		return nil, "", err
	}
	if err := v.write(ctx, &s, now, false); err != nil {
		return nil, "", err
	}
	if !s.Anonymous() {
		sctx, cancel := v.storeCtx(ctx)
		err := v.st.SAdd(sctx, UserIndexKey(s.UserID), s.hid)
		cancel()
		if err != nil {
			// Without the index entry the user could not see or end
			// this session: undo it.
			sctx, cancel := v.storeCtx(ctx)
			_ = v.st.Delete(sctx, recordKey(s.hid))
			cancel()
			return nil, "", fmt.Errorf("session: index: %w", err)
		}
	}
	kind := "user"
	if s.Anonymous() {
		kind = "anonymous"
	}
	v.obs.SessionCreated(kind)
	v.cache.put(&s, now)
	return &s, val, nil
}

// update rewrites s's record with a new jar under the same id.
func (v *Vault) update(ctx context.Context, old *Session, jar Jar, now time.Time) (*Session, error) {
	s := *old
	s.Jar, s.LastSeen = jar, now
	var err error
	if s.sealed, err = sealJar(s.id, s.hid, jar, v.rand); err != nil {
		return nil, err
	}
	if err := v.write(ctx, &s, now, true); err != nil {
		if errors.Is(err, ErrNotFound) {
			v.cache.del(s.hid)
		}
		return nil, err
	}
	v.cache.put(&s, now)
	return &s, nil
}

// RotatedGrace is how long after a login rotated an id away requests still
// carrying it leave the client's cookie alone. A browser signing in often
// has other requests in flight with the old id (Superset's login page posts
// its event log as the form submits); their answers arrive after the
// login's and, were they to clear the cookie or set a new anonymous one,
// they would overwrite the fresh session and send the user back to the
// login page. The old id grants nothing either way.
const RotatedGrace = 30 * time.Second

const reasonRotated = "rotated"

// rotatedRecently reports whether the dead marker of hid says it was
// rotated away less than RotatedGrace ago. A store error counts as no: the
// caller then clears the cookie, as for any other dead id.
func (v *Vault) rotatedRecently(ctx context.Context, hid string, now time.Time) bool {
	sctx, cancel := v.storeCtx(ctx)
	b, err := v.st.Get(sctx, deadKey(hid))
	cancel()
	if err != nil {
		return false
	}
	ms, ok := strings.CutPrefix(string(b), reasonRotated+" ")
	if !ok {
		return false
	}
	at, err := strconv.ParseInt(ms, 10, 64)
	return err == nil && now.Sub(time.UnixMilli(at)) < RotatedGrace
}

// destroy ends the session with handle hid: first the dead marker (see
// write; for a rotation it also records when, see rotatedRecently), then
// the record and its index entry, then the invalidation for every
// replica's cache. The local cache forgets it at once.
func (v *Vault) destroy(ctx context.Context, hid, userID, reason string) error {
	v.cache.del(hid)
	sctx, cancel := v.storeCtx(ctx)
	defer cancel()
	marker := reason
	if reason == reasonRotated {
		marker += " " + strconv.FormatInt(v.now().UnixMilli(), 10)
	}
	if err := v.st.Set(sctx, deadKey(hid), []byte(marker), v.absolute); err != nil {
		return fmt.Errorf("session: destroy: %w", err)
	}
	if err := v.st.Delete(sctx, recordKey(hid)); err != nil {
		return fmt.Errorf("session: destroy: %w", err)
	}
	if userID != "" {
		if err := v.st.SRem(sctx, UserIndexKey(userID), hid); err != nil {
			v.log.Warn("session index cleanup failed", zap.String("session", short(hid)), zap.Error(err))
		}
	}
	if err := v.st.Publish(sctx, InvalidateChannel, []byte(hid)); err != nil {
		// The record is gone; other replicas notice within the cache TTL.
		v.log.Warn("session invalidation publish failed", zap.String("session", short(hid)), zap.Error(err))
	}
	v.obs.SessionDestroyed(reason)
	return nil
}

func (v *Vault) emit(ctx context.Context, r *http.Request, ev audit.Event) {
	if v.audit == nil {
		return
	}
	if r != nil {
		if v.requestID != nil {
			ev.RequestID = v.requestID(r)
		}
		if ip := v.clientIP(r); ip.IsValid() {
			ev.IP = ip.String()
		}
	}
	if err := v.audit.Emit(context.WithoutCancel(ctx), ev); err != nil {
		v.log.Warn("audit event not recorded", zap.String("event", ev.Event), zap.Error(err))
	}
}

func subject(s *Session) string { return "session:" + short(s.hid) }

// short is the part of a handle that goes into logs and audit events:
// enough to correlate, not the whole handle.
func short(hid string) string {
	if len(hid) > 16 {
		return hid[:16]
	}
	return hid
}
