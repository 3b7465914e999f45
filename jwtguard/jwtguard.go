// Package jwtguard authenticates Superset API JWTs (Authorization: Bearer
// <jwt>) at the gateway, before Superset sees them (DESIGN.md §2.2, issue
// A2): signature with Superset's JWT secret and HS256 only, exp/iat/sub
// required (superset/apijwt), the token type the route needs (a refresh
// token on POST /api/v1/security/refresh, an access token everywhere
// else), and optionally a per-token revocation by "jti" until its "exp".
//
// Authenticate returns a principal whose IssuedAt is the token's iat; the
// gateway checks it against the user's invalidation epoch and writes every
// refusal (401 {"msg": …} in flask-jwt-extended's words, 503 when the
// store cannot answer). Gateway access tokens ("Bearer sgw_…") are left to
// their own package.
package jwtguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/internal/invalidate"
	"github.com/superset-gateway/superset-gateway/internal/ttlcache"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
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

// JTIStore is the part of the store single-token revocation needs;
// store.Store satisfies it.
type JTIStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
}

// Observer receives metrics; it must be safe for concurrent use and must
// not block. kind is "access_jwt" or "refresh_jwt". Refusals are counted
// by the gateway's refusal writer, like every other refusal.
type Observer interface {
	ObserveJWTChecked(kind string)
}

type nopObserver struct{}

func (nopObserver) ObserveJWTChecked(string) {}

// Options configure New. Verifier.Key is required.
type Options struct {
	// Verifier holds Superset's JWT secret (and leeway, 0 as Superset).
	Verifier apijwt.Verifier
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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger and Observer may be nil.
	Logger   *zap.Logger
	Observer Observer
}

// Guard authenticates Superset API JWTs. Build it with New; it is safe
// for concurrent use.
type Guard struct {
	v         apijwt.Verifier
	rev       JTIStore
	jtiTTL    time.Duration
	jti       *ttlcache.Cache[string, bool]
	verified  *verifiedCache
	now       func() time.Time
	log       *zap.Logger
	obs       Observer
	startOnce sync.Once
}

// New checks opts and returns a Guard.
func New(o Options) (*Guard, error) {
	if len(o.Verifier.Key) == 0 {
		return nil, fmt.Errorf("%w: Verifier.Key is required", ErrConfig)
	}
	g := &Guard{v: o.Verifier, rev: o.Revocations, jtiTTL: o.JTICacheTTL,
		now: o.Now, log: o.Logger, obs: o.Observer}
	if g.jtiTTL == 0 {
		g.jtiTTL = time.Second
	}
	g.verified = newVerifiedCache(o.VerifiedCacheSize)
	if g.rev != nil && g.jtiTTL > 0 {
		size := o.JTICacheSize
		if size <= 0 {
			size = 100_000
		}
		g.jti = ttlcache.New[string, bool](size)
	}
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

// Verify checks token for a route that wants the given type (any type
// when want is empty) and its jti. It does not check the epochs: the
// gateway's revocation stage does, for every credential alike. A refusal is
// a Decision with a reason (apijwt's labels, wrong_type, revoked_jti); err
// is non-nil only when the store could not answer (it wraps ErrUnavailable
// and store.ErrUnavailable).
func (g *Guard) Verify(ctx context.Context, token string, want apijwt.Type) (*apijwt.Claims, policy.Decision, error) {
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
			return nil, policy.Decision{Reason: policy.Reason(apijwt.Reason(err))}, nil
		}
		g.verified.put(token, c)
	}
	if want != "" && c.Type != want {
		return nil, policy.Decision{Reason: policy.ReasonWrongType}, nil
	}
	if g.rev != nil && c.JTI != "" {
		revoked, err := g.jtiRevoked(ctx, c.JTI)
		if err != nil {
			return c, policy.Decision{}, err
		}
		if revoked {
			return c, policy.Decision{Reason: policy.ReasonRevokedJTI}, nil
		}
	}
	return c, policy.Decision{Allow: true}, nil
}

// timeReason repeats apijwt's time checks on cached claims.
func timeReason(c *apijwt.Claims, now time.Time, leeway time.Duration) policy.Reason {
	switch {
	case !now.Before(c.ExpiresAt.Add(leeway)):
		return policy.ReasonExpired
	case !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore):
		return policy.ReasonNotYetValid
	case now.Add(leeway).Before(c.IssuedAt):
		return policy.ReasonIATInFuture
	}
	return ""
}

// Authenticate reads the Superset bearer JWT of r the way
// flask-jwt-extended does (BearerToken) and verifies it for the route: a
// refresh token on POST /api/v1/security/refresh (or a revoked user could
// refresh their way back), an access token everywhere else. It returns the
// zero Principal when r carries no bearer JWT or carries a gateway access
// token (sgw_…, the access-token stage's). The principal's IssuedAt is
// the token's iat, in whole seconds. It never writes the response.
func (g *Guard) Authenticate(ctx context.Context, r *http.Request, _ *principal.Exchange) (principal.Principal, policy.Decision, error) {
	tok, ok, err := BearerToken(r.Header)
	want, kind := apijwt.Access, principal.APIJWT
	if IsRefreshRoute(r.Method, r.URL.Path) {
		want, kind = apijwt.Refresh, principal.RefreshJWT
	}
	if err != nil {
		g.obs.ObserveJWTChecked(kind.String())
		return principal.Principal{Kind: kind}, policy.Decision{Reason: policy.ReasonBadAuthorizationHeader}, nil
	}
	if !ok || strings.HasPrefix(tok, GatewayTokenPrefix) {
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	g.obs.ObserveJWTChecked(kind.String())
	c, d, err := g.Verify(ctx, tok, want)
	p := principal.Principal{Kind: kind}
	if c != nil {
		// Verified, perhaps then refused by jti: the subject is real.
		p.UserID, p.IssuedAt, p.Granularity, p.ID = c.Subject, c.IssuedAt, time.Second, c.JTI
	}
	return p, d, err
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
		now := g.now()
		g.jti.Put(jti, true, now.Add(g.jtiTTL), now)
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
		gen = g.jti.Generation()
		if v, ok := g.jti.Get(jti, now); ok {
			return v, nil
		}
	}
	_, err := g.rev.Get(ctx, JTIKeyPrefix+jtiHash(jti))
	revoked := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, unavailable("read jti", err)
	}
	if g.jti != nil {
		g.jti.PutIf(gen, jti, revoked, now.Add(g.jtiTTL), now)
	}
	return revoked, nil
}

// Start subscribes to jti invalidations (returning once the first attempt
// answered) and keeps the subscription until ctx is done; after a loss it
// resubscribes and drops the cache (internal/invalidate). A no-op without
// Options.Revocations or a cache; later calls return nil.
func (g *Guard) Start(ctx context.Context) error {
	if g.rev == nil || g.jti == nil {
		return nil
	}
	var err error
	g.startOnce.Do(func() {
		err = invalidate.Start(ctx, invalidate.Options{Store: g.rev, Channel: JTIChannel, Logger: g.log,
			Evict: func(p []byte) { g.jti.Delete(string(p)) }, Clear: g.jti.Clear})
		if err != nil {
			err = unavailable("subscribe", err)
		}
	})
	return err
}

func unavailable(op string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("%w: %s: %w: %w", ErrUnavailable, op, store.ErrUnavailable, err)
}
