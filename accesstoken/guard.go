package accesstoken

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset"
)

// GuardOptions configure NewGuard. Manager, Epochs and JWTSecret are
// required.
type GuardOptions struct {
	Manager *Manager
	// JWTSecret is Superset's JWT_SECRET_KEY (SECRET_KEY unless set),
	// used to mint the owner's short-lived access JWTs.
	JWTSecret []byte
	// MintTTL is the lifetime of a minted JWT; 0 means 5 minutes. A JWT is
	// reused for every request of its token until shortly before its exp.
	MintTTL time.Duration
	// Upstream sends the gateway's own request for a CSRF token to
	// Superset (the upstream pool, which fills in scheme and host). nil
	// makes CSRF-protected writes fail with 502.
	Upstream http.RoundTripper
	// SealKeys are 32-byte AES-256-GCM keys for the CSRF credentials at
	// rest, newest first. Required with Upstream.
	SealKeys [][]byte
	// CSRFTTL bounds how long CSRF credentials are kept; 0 means 12 hours
	// (Superset's WTF_CSRF_TIME_LIMIT is 7 days).
	CSRFTTL time.Duration
	// ClientIP is the client address the proxy decided on (the gateway passes
	// proxy.ClientIP). nil, or a zero address, fails every CIDR check.
	ClientIP func(*http.Request) netip.Addr
	// RequestID names the request in audit events (proxy.RequestID); nil
	// leaves it empty.
	RequestID func(*http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger and Observer may be nil. Refusals are written, counted and
	// audited by the gateway's refusal writer.
	Logger   *zap.Logger
	Observer Observer
}

// Guard checks access tokens on the way to Superset. Build it with
// NewGuard; it is safe for concurrent use.
type Guard struct {
	m           *Manager
	scopes      *policy.ScopeRules
	jwtKey      []byte
	mintTTL     time.Duration
	renewBefore time.Duration
	jwts        *jwtCache
	rt          http.RoundTripper
	sealer      *Sealer
	csrfTTL     time.Duration
	clientIP    func(*http.Request) netip.Addr
	requestID   func(*http.Request) string
	now         func() time.Time
	log         *zap.Logger
	obs         Observer
}

// NewGuard validates o and builds a Guard.
func NewGuard(o GuardOptions) (*Guard, error) {
	if o.Manager == nil || len(o.JWTSecret) == 0 {
		return nil, fmt.Errorf("%w: Manager and JWTSecret are required", ErrConfig)
	}
	g := &Guard{m: o.Manager, jwtKey: o.JWTSecret, mintTTL: o.MintTTL, rt: o.Upstream, csrfTTL: o.CSRFTTL,
		clientIP: o.ClientIP, requestID: o.RequestID, now: o.Now, log: o.Logger, obs: o.Observer,
		jwts: &jwtCache{m: map[string]minted{}, max: 100000}, scopes: policy.NewScopeRules()}
	if o.Upstream != nil || len(o.SealKeys) > 0 {
		s, err := NewSealer(o.SealKeys)
		if err != nil {
			return nil, err
		}
		g.sealer = s
	}
	if g.mintTTL <= 0 {
		g.mintTTL = 5 * time.Minute
	}
	if g.mintTTL < time.Minute {
		return nil, fmt.Errorf("%w: MintTTL must be at least a minute", ErrConfig)
	}
	g.renewBefore = min(time.Minute, g.mintTTL/4)
	if g.csrfTTL <= 0 {
		g.csrfTTL = 12 * time.Hour
	}
	if g.clientIP == nil {
		g.clientIP = func(*http.Request) netip.Addr { return netip.Addr{} }
	}
	if g.requestID == nil {
		g.requestID = func(*http.Request) string { return "" }
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

// tokenFrom finds a gateway access token in Authorization. ok is false
// when the request carries none (it is not this guard's); bad is true for
// a header that mentions one in any form but exactly "Bearer <token>".
func tokenFrom(h http.Header) (token string, ok, bad bool) {
	vals := h["Authorization"]
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) == 1 {
		v := vals[0]
		if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") && strings.HasPrefix(v[7:], Prefix) {
			t := v[7:]
			if strings.ContainsAny(t, " \t,") {
				return "", true, true
			}
			return t, true, false
		}
	}
	// Any other shape that still carries a gateway token (a second
	// credential, extra spaces, several headers) is refused rather than
	// guessed at; a Superset JWT that merely contains "sgw_" is not ours.
	for _, v := range vals {
		if wordPrefixed(v, Prefix) {
			return "", true, true
		}
	}
	return "", false, false
}

// wordPrefixed reports whether a word of v, split as Superset splits
// Authorization (commas, then superset.PyFields), starts with prefix. Had
// "Bearer\x85sgw_…" passed here as one word, Superset would have received
// the token.
func wordPrefixed(v, prefix string) bool {
	for part := range strings.SplitSeq(v, ",") {
		for _, f := range superset.PyFields(part) {
			if strings.HasPrefix(f, prefix) {
				return true
			}
		}
	}
	return false
}

// Claims reports whether h's Authorization carries a gateway access token
// in any shape the guard would claim (well-formed or not), for wiring that
// must refuse such requests when no Guard is installed.
func Claims(h http.Header) bool {
	_, ok, _ := tokenFrom(h)
	return ok
}

// tokenState is the guard's request state in principal.Exchange.TokenState:
// the record Authenticate found and the CSRF cookie Inject chose.
type tokenState struct {
	rec    *Record
	cookie string
}

// Authenticate reads a gateway access token (Authorization: Bearer sgw_…,
// split the way Superset splits the header) and checks it: format and
// checksum, a known id, the secret's HMAC, not revoked, not expired, used
// from one of its allowed source ranges. It
// returns the zero Principal when the request claims no access token.
// The principal acts as the owner and was issued at the token's creation,
// which the gateway checks against the owner's epoch. The record goes into
// x for Authorize and Inject. It never writes the response.
func (g *Guard) Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, policy.Decision, error) {
	tok, ok, bad := tokenFrom(r.Header)
	if !ok {
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	p := principal.Principal{Kind: principal.AccessToken}
	refuse := func(reason policy.Reason) (principal.Principal, policy.Decision, error) {
		g.obs.ObserveAccessTokenRequest(ScopeNone, string(reason))
		return p, policy.Decision{Reason: reason}, nil
	}
	if bad {
		return refuse(policy.ReasonBadAuthorizationHeader)
	}
	id, secret, err := Parse(tok)
	if err != nil {
		if errors.Is(err, ErrChecksum) {
			return refuse(policy.ReasonBadChecksum)
		}
		return refuse(policy.ReasonMalformed)
	}
	p.ID = id
	e, err := g.m.lookup(ctx, id)
	if err != nil {
		g.obs.ObserveAccessTokenRequest(ScopeNone, string(policy.ReasonStoreUnavailable))
		return p, policy.Decision{}, err
	}
	rec := e.rec
	if rec == nil {
		return refuse(policy.ReasonUnknownToken)
	}
	p.UserID, p.Username, p.IssuedAt, p.Granularity = rec.OwnerID, rec.OwnerName, rec.Created, time.Millisecond
	if !hmac.Equal(rec.MAC, g.m.mac(id, secret)) {
		// The id is real but the secret is not: the owner did not act.
		p.UserID, p.Username = "", ""
		return refuse(policy.ReasonBadSecret)
	}
	switch rec.Status(g.now()) {
	case "revoked":
		return refuse(policy.ReasonTokenRevoked)
	case "expired":
		return refuse(policy.ReasonExpired)
	}
	// A token fenced to source ranges is no credential at all from
	// elsewhere: refused before its owner's epoch is even looked at.
	if len(e.cidrs) > 0 && !inAny(e.cidrs, g.clientIP(r)) {
		return refuse(policy.ReasonCIDR)
	}
	x.TokenState = &tokenState{rec: rec}
	return p, policy.Decision{Allow: true}, nil
}

// Authorize checks the token's scopes for r (the normalised path): the
// narrowest scope that grants the route, or the reason naming the missing
// one.
func (g *Guard) Authorize(_ context.Context, r *http.Request, x *principal.Exchange) policy.Decision {
	st, _ := x.TokenState.(*tokenState)
	if st == nil {
		return policy.Decision{Reason: policy.ReasonUnknownToken}
	}
	d := g.scopes.Allow(st.rec.Scopes, r.Method, r.URL.Path)
	if !d.Allow {
		scope := policy.MissingScope(d.Reason)
		if scope == "" {
			scope = ScopeNone
		}
		g.obs.ObserveAccessTokenRequest(scope, string(d.Reason))
	}
	return d
}

// Inject turns the request into the owner's: Authorization becomes a
// short-lived Superset access JWT of the owner, and for CSRF-protected
// writes X-CSRFToken and the Cookie of the Superset session that token
// belongs to (kept encrypted in the store); otherwise no cookie at all,
// and never the client's CSRF headers. A refusal (Superset's CSRF token
// cannot be had) is a Decision; err is a store failure.
func (g *Guard) Inject(ctx context.Context, r *http.Request, x *principal.Exchange) (policy.Decision, error) {
	st, _ := x.TokenState.(*tokenState)
	if st == nil {
		return policy.Decision{Reason: policy.ReasonUnknownToken}, nil
	}
	rec, now := st.rec, g.now()
	scope := string(g.scopes.Allow(rec.Scopes, r.Method, r.URL.Path).Reason)
	jwt, err := g.bearer(rec, now)
	if err != nil {
		g.log.Error("cannot mint a Superset JWT", zap.Error(err))
		g.obs.ObserveAccessTokenRequest(scope, string(policy.ReasonUpstreamCredits))
		return policy.Decision{Reason: policy.ReasonUpstreamCredits}, nil
	}
	r.Header.Del("X-CSRF-Token") // Flask-WTF's other header: never the client's to send
	if NeedsCSRF(r.Method, r.URL.Path) {
		c, err := g.csrfCreds(ctx, rec, jwt, now)
		if err != nil {
			if errors.Is(err, ErrUnavailable) {
				g.obs.ObserveAccessTokenRequest(scope, string(policy.ReasonStoreUnavailable))
				return policy.Decision{}, err
			}
			g.log.Warn("upstream CSRF credentials unavailable", zap.String("token_id", rec.ID), zap.Error(err))
			g.obs.ObserveAccessTokenRequest(scope, string(policy.ReasonUpstreamCredits))
			return policy.Decision{Reason: policy.ReasonUpstreamCredits}, nil
		}
		r.Header.Set("X-CSRFToken", c.CSRF)
		st.cookie = c.Cookie
		r.Header["Cookie"] = []string{c.Cookie}
	} else {
		r.Header.Del("X-CSRFToken")
		delete(r.Header, "Cookie")
	}
	r.Header.Set("Authorization", "Bearer "+jwt)
	ipStr := ""
	if ip := g.clientIP(r); ip.IsValid() {
		ipStr = ip.Unmap().String()
	}
	g.m.touch(ctx, rec, ipStr, g.requestID(r))
	g.obs.ObserveAccessTokenRequest(scope, OutcomeAllowed)
	return policy.Decision{Allow: true}, nil
}

func inAny(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.IsValid() && p.Contains(a) {
			return true
		}
	}
	return false
}
