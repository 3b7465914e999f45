// Package jwtguard checks Superset API JWTs (Authorization: Bearer <jwt>)
// at the gateway, before Superset sees them (DESIGN.md §2.2, issue A2):
// signature with Superset's JWT secret and HS256 only, exp/iat/sub required
// (superset/apijwt), the token type the route needs (a refresh token on
// POST /api/v1/security/refresh, an access token everywhere else), the
// user's invalidation epoch on "iat", and optionally a per-token revocation
// by "jti" until its "exp".
//
// A refused token never reaches Superset: the client gets 401 with a JSON
// {"msg": …} body in flask-jwt-extended's style, the refusal is counted by
// reason and audited. When the store cannot answer the client gets 503
// with Retry-After and nothing else happens (fail closed, log nobody out).
// Gateway access tokens ("Bearer sgw_…") are left to their own layer.
package jwtguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// Credential kinds (metric labels).
const (
	KindAccess  = "access_jwt"
	KindRefresh = "refresh_jwt"
)

// Refusal reasons besides apijwt.Reason's labels and the epoch package's
// revoked_user / revoked_global / bad_subject.
const (
	ReasonBadHeader        = "bad_authorization_header"
	ReasonRevokedJTI       = "revoked_jti"
	ReasonStoreUnavailable = "store_unavailable"
)

// Store keys and channel for single-token revocation.
const (
	// JTIKeyPrefix + hex(sha256(jti)) marks a revoked token until its exp.
	JTIKeyPrefix = "jwt:revoked:"
	// JTIChannel carries the revoked jti (an id, not a secret).
	JTIChannel = "jwt:revoked"
)

// GatewayTokenPrefix marks the gateway's own access tokens, which this
// guard leaves to the access-token layer.
const GatewayTokenPrefix = "sgw_"

// Sentinel errors.
var (
	// ErrUnavailable means the store could not answer; it also matches
	// store.ErrUnavailable.
	ErrUnavailable = errors.New("jwtguard: store unavailable")
	// ErrNoJTIStore means RevokeJTI was called without Options.Revocations.
	ErrNoJTIStore = errors.New("jwtguard: single-token revocation is not configured")
	// ErrBadJTI means an empty or oversized jti.
	ErrBadJTI = errors.New("jwtguard: bad jti")
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("jwtguard: invalid options")
	// ErrBadHeader means an Authorization header the guard cannot read
	// unambiguously.
	ErrBadHeader = errors.New("jwtguard: bad Authorization header")
)

// EpochChecker is the epoch check; *epoch.Epochs implements it.
type EpochChecker interface {
	IssuedAfter(ctx context.Context, userID string, issued time.Time, granularity time.Duration) (policy.Decision, error)
}

// JTIStore is the part of the store single-token revocation needs;
// store.Store satisfies it.
type JTIStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
}

// Observer receives metrics; it must be safe for concurrent use and must
// not block. kind is KindAccess or KindRefresh.
type Observer interface {
	ObserveJWTChecked(kind string)
	ObserveJWTRefused(kind, reason string)
}

// Auditor records audit events; *audit.Logger satisfies it.
type Auditor interface {
	Emit(ctx context.Context, ev audit.Event) error
}

type nopObserver struct{}

func (nopObserver) ObserveJWTChecked(string)         {}
func (nopObserver) ObserveJWTRefused(string, string) {}

// Options configure New. Verifier.Key and Epochs are required.
type Options struct {
	// Verifier holds Superset's JWT secret (and leeway, 0 as Superset).
	Verifier apijwt.Verifier
	// Epochs checks "iat" against the user's and the global epoch.
	Epochs EpochChecker
	// Revocations enables RevokeJTI and the jti check; nil disables both.
	Revocations JTIStore
	// JTICacheTTL bounds how long a jti's revocation state is cached (the
	// propagation bound if a message is lost); 0 means 1s, negative none.
	JTICacheTTL time.Duration
	// JTICacheSize bounds the cached jtis; 0 means 100 000.
	JTICacheSize int
	// VerifiedCacheSize bounds the cache of tokens whose signature and
	// claims verified (keyed by the whole token, so no collision can
	// admit another token), which spares the HMAC and JSON work when a
	// client sends the same token again; time, type, epoch and jti are
	// checked on every request anyway. 0 means 10 000; negative disables.
	VerifiedCacheSize int
	// RequestInfo returns the request id and client IP for audit events
	// (cmd passes proxy.RequestID and proxy.ClientIP); nil leaves them empty.
	RequestInfo func(*http.Request) (requestID, ip string)
	// RetryAfter is sent with 503; 0 means 5s.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger, Observer and Auditor may be nil.
	Logger   *zap.Logger
	Observer Observer
	Auditor  Auditor
}

// Guard is the middleware. Build it with New; it is safe for concurrent
// use.
type Guard struct {
	v          apijwt.Verifier
	ep         EpochChecker
	rev        JTIStore
	jtiTTL     time.Duration
	jti        *jtiCache
	verified   *verifiedCache
	info       func(*http.Request) (string, string)
	retryAfter string
	now        func() time.Time
	log        *zap.Logger
	obs        Observer
	aud        Auditor
	startOnce  sync.Once
}

// New checks opts and returns a Guard.
func New(o Options) (*Guard, error) {
	if len(o.Verifier.Key) == 0 || o.Epochs == nil {
		return nil, fmt.Errorf("%w: Verifier.Key and Epochs are required", ErrConfig)
	}
	g := &Guard{v: o.Verifier, ep: o.Epochs, rev: o.Revocations, jtiTTL: o.JTICacheTTL, info: o.RequestInfo,
		now: o.Now, log: o.Logger, obs: o.Observer, aud: o.Auditor}
	if g.jtiTTL == 0 {
		g.jtiTTL = time.Second
	}
	g.verified = newVerifiedCache(o.VerifiedCacheSize)
	if g.rev != nil && g.jtiTTL > 0 {
		size := o.JTICacheSize
		if size <= 0 {
			size = 100_000
		}
		g.jti = newJTICache(size)
	}
	ra := o.RetryAfter
	if ra <= 0 {
		ra = 5 * time.Second
	}
	g.retryAfter = strconv.Itoa(int((ra + time.Second - 1) / time.Second))
	if g.now == nil {
		g.now = time.Now
	}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	return g, nil
}

type claimsKey struct{}

// ClaimsFrom returns the claims of the Superset JWT the guard accepted for
// this request, if any. They are shared with other requests carrying the
// same token: read them, never modify them. The epoch hook and the wiring use Subject as the
// caller's identity when the request carries no signed-in session.
func ClaimsFrom(ctx context.Context) (*apijwt.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*apijwt.Claims)
	return c, ok
}

// BearerToken extracts the bearer token the way flask-jwt-extended 4.7.1
// does (the comma-separated element of Authorization whose first word is
// "Bearer"), but stricter: the scheme matches case-insensitively, and more
// than one Authorization field or bearer element, or a bearer element not
// of exactly two words, is ErrBadHeader rather than a guess. ok is false
// when there is no bearer element at all.
func BearerToken(h http.Header) (token string, ok bool, err error) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	// Fast path, no allocation: one field holding exactly "Bearer <token>".
	if v := vals[0]; len(vals) == 1 && len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") && plainToken(v[7:]) {
		return v[7:], true, nil
	}
	found := 0
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			// Superset's own split, or a shape it honours would pass
			// unchecked (superset.PyFields).
			f := superset.PyFields(part)
			if len(f) == 0 || !strings.EqualFold(f[0], "Bearer") {
				continue
			}
			found++
			if len(f) != 2 {
				return "", false, ErrBadHeader
			}
			token = f[1]
		}
	}
	switch {
	case found == 0:
		return "", false, nil
	case found > 1 || len(vals) > 1:
		return "", false, ErrBadHeader
	}
	return token, true, nil
}

// plainToken reports whether s holds only printable ASCII other than space
// and comma; anything else (including bytes Python counts as whitespace)
// takes the slow path.
func plainToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b == ',' || b >= 0x7f {
			return false
		}
	}
	return true
}

// IsRefreshRoute reports whether the request is Superset's token refresh,
// which takes a refresh token: POST /api/v1/security/refresh (a trailing
// slash or dot segments do not change that).
func IsRefreshRoute(method, p string) bool {
	if method != http.MethodPost {
		return false
	}
	c := path.Clean("/" + p)
	return c == "/api/v1/security/refresh"
}

// Check verifies token for a route that wants the given type and checks
// its epoch and jti. A refusal is a Decision with a reason (apijwt.Reason's
// labels, the epoch reasons, ReasonRevokedJTI); err is non-nil only when the
// store could not answer (it wraps ErrUnavailable and store.ErrUnavailable).
// The admin wiring uses it to authenticate Bearer callers of /-/ routes.
func (g *Guard) Check(ctx context.Context, token string, want apijwt.Type) (*apijwt.Claims, policy.Decision, error) {
	now := g.now()
	c, ok := g.verified.get(token)
	if ok {
		// Signature and claims were checked when cached; what depends
		// on the time is checked again, as apijwt would.
		if r := timeReason(c, now, g.v.Leeway); r != "" {
			return nil, policy.Decision{Reason: r}, nil
		}
	} else {
		var err error
		if c, err = g.v.Verify(token, "", now); err != nil {
			return nil, policy.Decision{Reason: apijwt.Reason(err)}, nil
		}
		g.verified.put(token, c)
	}
	if want != "" && c.Type != want {
		return nil, policy.Decision{Reason: "wrong_type"}, nil
	}
	d, err := g.ep.IssuedAfter(ctx, c.Subject, c.IssuedAt, time.Second)
	if err != nil {
		return c, policy.Decision{}, unavailable("epoch", err)
	}
	if !d.Allow {
		return c, d, nil
	}
	if g.rev != nil && c.JTI != "" {
		revoked, err := g.jtiRevoked(ctx, c.JTI)
		if err != nil {
			return c, policy.Decision{}, err
		}
		if revoked {
			return c, policy.Decision{Reason: ReasonRevokedJTI}, nil
		}
	}
	return c, policy.Decision{Allow: true}, nil
}

// timeReason repeats apijwt's time checks on cached claims.
func timeReason(c *apijwt.Claims, now time.Time, leeway time.Duration) string {
	switch {
	case !now.Before(c.ExpiresAt.Add(leeway)):
		return "expired"
	case !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore):
		return "not_yet_valid"
	case now.Add(leeway).Before(c.IssuedAt):
		return "iat_in_future"
	}
	return ""
}

// Middleware checks every upstream-bound request that carries a Superset
// bearer JWT; requests without one, or with a gateway access token, pass
// untouched. Accepted requests continue with the claims in their context
// (ClaimsFrom).
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok, err := BearerToken(r.Header)
		want, kind := apijwt.Access, KindAccess
		if IsRefreshRoute(r.Method, r.URL.Path) {
			want, kind = apijwt.Refresh, KindRefresh
		}
		if err != nil {
			g.obs.ObserveJWTChecked(kind)
			g.refuse(w, r, kind, ReasonBadHeader, nil, want)
			return
		}
		if !ok || strings.HasPrefix(tok, GatewayTokenPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		g.obs.ObserveJWTChecked(kind)
		c, d, err := g.Check(r.Context(), tok, want)
		if err != nil {
			g.log.Warn("jwtguard: store unavailable; answering 503", zap.Error(err))
			g.obs.ObserveJWTRefused(kind, ReasonStoreUnavailable)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Retry-After", g.retryAfter)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"msg": "Service temporarily unavailable"}` + "\n"))
			return
		}
		if !d.Allow {
			g.refuse(w, r, kind, d.Reason, c, want)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// message is the client-facing text for a refusal, in flask-jwt-extended's
// words where it has them. It never echoes the token.
func message(reason string, want apijwt.Type) string {
	switch reason {
	case "expired":
		return "Token has expired"
	case "bad_signature":
		return "Signature verification failed"
	case "wrong_type":
		if want == apijwt.Refresh {
			return "Only refresh tokens are allowed"
		}
		return "Only non-refresh tokens are allowed"
	case "not_yet_valid":
		return "The token is not yet valid (nbf)"
	case "iat_in_future":
		return "The token is not yet valid (iat)"
	case "revoked_user", "revoked_global", ReasonRevokedJTI:
		return "Token has been revoked"
	case ReasonBadHeader:
		return "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"
	case "alg_not_allowed":
		return "The specified alg value is not allowed"
	}
	return "Invalid token"
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, kind, reason string, c *apijwt.Claims, want apijwt.Type) {
	g.obs.ObserveJWTRefused(kind, reason)
	if g.aud != nil {
		ev := audit.Event{Event: "jwt.refuse", Actor: "anonymous", Outcome: audit.OutcomeDenied, Reason: reason,
			Details: map[string]any{"kind": kind}}
		if c != nil {
			// Verified, then refused by epoch or jti: the subject is real.
			ev.Subject = "user:" + c.Subject
		}
		if g.info != nil {
			ev.RequestID, ev.IP = g.info(r)
		}
		if err := g.aud.Emit(r.Context(), ev); err != nil {
			g.log.Warn("jwtguard: refusal not audited", zap.Error(err))
		}
	}
	b := []byte(`{"msg": "` + message(reason, want) + `"}` + "\n")
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(b)
}

func jtiHash(jti string) string {
	s := sha256.Sum256([]byte(jti))
	return hex.EncodeToString(s[:])
}

// RevokeJTI refuses the token with this jti until exp (its "exp" claim),
// on every replica: at once on this one, after the invalidation message or
// at most JTICacheTTL on the others. It returns after the store accepted
// the write. A token already expired needs nothing and returns nil.
func (g *Guard) RevokeJTI(ctx context.Context, jti string, exp time.Time) error {
	if g.rev == nil {
		return ErrNoJTIStore
	}
	if jti == "" || len(jti) > 256 {
		return ErrBadJTI
	}
	// One extra minute covers replicas whose clocks run behind.
	ttl := exp.Sub(g.now()) + time.Minute
	if ttl <= time.Minute {
		return nil
	}
	if err := g.rev.Set(ctx, JTIKeyPrefix+jtiHash(jti), []byte("1"), ttl); err != nil {
		return unavailable("revoke jti", err)
	}
	if g.jti != nil {
		g.jti.put(jti, true, g.now().Add(g.jtiTTL))
	}
	if err := g.rev.Publish(ctx, JTIChannel, []byte(jti)); err != nil {
		g.log.Warn("jwtguard: jti invalidation not published; other replicas catch up within the cache TTL", zap.Error(err))
	}
	return nil
}

// jtiRevoked checks one jti; the cache is keyed by the jti itself so that
// a hit hashes nothing.
func (g *Guard) jtiRevoked(ctx context.Context, jti string) (bool, error) {
	if len(jti) > 256 {
		return false, nil // RevokeJTI cannot have revoked it
	}
	now := g.now()
	var gen uint64
	if g.jti != nil {
		v, ok, gn := g.jti.get(jti, now)
		if ok {
			return v, nil
		}
		gen = gn
	}
	_, err := g.rev.Get(ctx, JTIKeyPrefix+jtiHash(jti))
	revoked := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, unavailable("read jti", err)
	}
	if g.jti != nil {
		g.jti.putIf(gen, jti, revoked, now.Add(g.jtiTTL))
	}
	return revoked, nil
}

// Start subscribes to jti invalidations (returning once live) and keeps
// the subscription until ctx is done; after a loss it resubscribes and
// drops the cache. A no-op without Options.Revocations or a cache; later
// calls return nil.
func (g *Guard) Start(ctx context.Context) error {
	if g.rev == nil || g.jti == nil {
		return nil
	}
	var err error
	g.startOnce.Do(func() {
		var ch <-chan store.Message
		if ch, err = g.rev.Subscribe(ctx, JTIChannel); err != nil {
			err = unavailable("subscribe", err)
			return
		}
		go g.run(ctx, ch)
	})
	return err
}

func (g *Guard) run(ctx context.Context, ch <-chan store.Message) {
	backoff := 100 * time.Millisecond
	for {
		for m := range ch {
			g.jti.del(string(m.Payload))
		}
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if ch, err = g.rev.Subscribe(ctx, JTIChannel); err == nil {
				backoff = 100 * time.Millisecond
				break
			}
			g.log.Warn("jwtguard: resubscribe failed", zap.Error(err))
			backoff = min(2*backoff, 10*time.Second)
		}
		g.jti.clear()
	}
}

func unavailable(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w: %w", ErrUnavailable, op, store.ErrUnavailable, err)
}
