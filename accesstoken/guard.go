package accesstoken

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/superset"
)

// EpochChecker is the owner's invalidation-epoch check; *epoch.Epochs
// implements it (the same method as session.EpochChecker).
type EpochChecker interface {
	IssuedAfter(ctx context.Context, userID string, issued time.Time, granularity time.Duration) (policy.Decision, error)
}

// GuardOptions configure NewGuard. Manager, Epochs and JWTSecret are
// required.
type GuardOptions struct {
	Manager *Manager
	// Epochs refuses tokens created at or before their owner's (or the
	// global) epoch: a disabled, deleted or revoked owner kills them.
	Epochs EpochChecker
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
	// ClientIP is the client address the proxy decided on (cmd passes
	// proxy.ClientIP). nil, or a zero address, fails every CIDR check.
	ClientIP func(*http.Request) netip.Addr
	// RequestID names the request in audit events (proxy.RequestID); nil
	// leaves it empty.
	RequestID func(*http.Request) string
	// RetryAfter is sent with 503; 0 means 5s.
	RetryAfter time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger, Observer and Auditor may be nil. Refusal audit events are
	// throttled to one a second per reason and token id.
	Logger   *zap.Logger
	Observer Observer
	Auditor  Auditor
}

// Guard checks access tokens on the way to Superset. Build it with
// NewGuard; it is safe for concurrent use.
type Guard struct {
	m           *Manager
	scopes      *policy.ScopeRules
	ep          EpochChecker
	jwtKey      []byte
	mintTTL     time.Duration
	renewBefore time.Duration
	jwts        *jwtCache
	rt          http.RoundTripper
	sealer      *Sealer
	csrfTTL     time.Duration
	clientIP    func(*http.Request) netip.Addr
	requestID   func(*http.Request) string
	retryAfter  string
	now         func() time.Time
	log         *zap.Logger
	obs         Observer
	aud         Auditor

	auditMu   sync.Mutex
	lastAudit map[string]time.Time
}

// NewGuard validates o and builds a Guard.
func NewGuard(o GuardOptions) (*Guard, error) {
	if o.Manager == nil || o.Epochs == nil || len(o.JWTSecret) == 0 {
		return nil, fmt.Errorf("%w: Manager, Epochs and JWTSecret are required", ErrConfig)
	}
	g := &Guard{m: o.Manager, ep: o.Epochs, jwtKey: o.JWTSecret, mintTTL: o.MintTTL, rt: o.Upstream, csrfTTL: o.CSRFTTL,
		clientIP: o.ClientIP, requestID: o.RequestID, now: o.Now, log: o.Logger, obs: o.Observer, aud: o.Auditor,
		jwts: &jwtCache{m: map[string]minted{}, max: 100000}, lastAudit: map[string]time.Time{}, scopes: policy.NewScopeRules()}
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
	ra := o.RetryAfter
	if ra <= 0 {
		ra = 5 * time.Second
	}
	g.retryAfter = strconv.Itoa(int((ra + time.Second - 1) / time.Second))
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
	if g.aud == nil {
		g.aud = nopAuditor{}
	}
	return g, nil
}

type ctxKey struct{}

// reqState is what Middleware hands to UpstreamCookie.
type reqState struct {
	rec    *Record
	cookie string
}

// FromContext returns the record of the access token that authenticated
// the request, when Guard.Middleware accepted one. The session layer uses
// it (session.Options.IsGuest) so that token traffic never creates or
// touches a browser session. The record must not be modified.
func FromContext(ctx context.Context) (*Record, bool) {
	st, ok := ctx.Value(ctxKey{}).(*reqState)
	if !ok || st == nil {
		return nil, false
	}
	return st.rec, true
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

// Middleware is the hook for proxy.Options.Middleware. Install it after
// the Superset JWT guard (which leaves "Bearer sgw_…" alone) and before
// the session layer, and install UpstreamCookie as the innermost
// middleware. Requests without an access token pass untouched.
//
// A request with one reaches next only when the token parses (checksum),
// its record exists, the secret's HMAC matches, it is neither revoked nor
// expired, the client address is inside its CIDRs, it was created after
// its owner's epoch, and one of its scopes grants the route. next then
// sees Authorization replaced by a Superset access JWT for the owner, no
// Cookie header (token traffic is stateless and must not mix with a
// browser session), and for CSRF-protected writes X-CSRFToken. Refusals
// never reach Superset: 401 {"msg": …} for the token, 403 naming the
// missing scope or for the address, 503 with Retry-After when the store
// cannot answer, 502 when Superset's CSRF token cannot be obtained.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok, bad := tokenFrom(r.Header)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if bad {
			g.refuse(w, r, nil, ScopeNone, ReasonBadHeader)
			return
		}
		id, secret, err := Parse(tok)
		if err != nil {
			reason := ReasonMalformed
			if errors.Is(err, ErrChecksum) {
				reason = ReasonBadChecksum
			}
			g.refuse(w, r, nil, ScopeNone, reason)
			return
		}
		ctx := r.Context()
		e, err := g.m.lookup(ctx, id)
		if err != nil {
			g.log.Warn("access-token store unavailable", zap.Error(err))
			g.refuse(w, r, nil, ScopeNone, ReasonStoreUnavailable)
			return
		}
		rec := e.rec
		if rec == nil {
			g.refuseID(w, r, id, ReasonUnknown)
			return
		}
		if !hmac.Equal(rec.MAC, g.m.mac(id, secret)) {
			g.refuse(w, r, rec, ScopeNone, ReasonBadSecret)
			return
		}
		now := g.now()
		switch rec.Status(now) {
		case "revoked":
			g.refuse(w, r, rec, ScopeNone, ReasonRevoked)
			return
		case "expired":
			g.refuse(w, r, rec, ScopeNone, ReasonExpired)
			return
		}
		ip := g.clientIP(r)
		if len(e.cidrs) > 0 && !inAny(e.cidrs, ip) {
			g.refuse(w, r, rec, ScopeNone, ReasonCIDR)
			return
		}
		d, err := g.ep.IssuedAfter(ctx, rec.OwnerID, rec.Created, time.Millisecond)
		if err != nil {
			g.log.Warn("epoch store unavailable", zap.Error(err))
			g.refuse(w, r, rec, ScopeNone, ReasonStoreUnavailable)
			return
		}
		if !d.Allow {
			g.refuse(w, r, rec, ScopeNone, d.Reason)
			return
		}
		d = g.scopes.Allow(rec.Scopes, r.Method, r.URL.Path)
		if !d.Allow {
			scope := policy.MissingScope(d.Reason)
			if scope == "" {
				scope = ScopeNone
			}
			g.refuse(w, r, rec, scope, d.Reason)
			return
		}
		scope := d.Reason
		jwt, err := g.bearer(rec, now)
		if err != nil {
			g.log.Error("cannot mint a Superset JWT", zap.Error(err))
			g.refuse(w, r, rec, scope, ReasonUpstream)
			return
		}
		st := &reqState{rec: rec}
		if NeedsCSRF(r.Method, r.URL.Path) {
			c, err := g.csrfCreds(ctx, rec, jwt, now)
			if err != nil {
				reason := ReasonUpstream
				if errors.Is(err, ErrUnavailable) {
					reason = ReasonStoreUnavailable
				}
				g.log.Warn("upstream CSRF credentials unavailable", zap.String("token_id", rec.ID), zap.Error(err))
				g.refuse(w, r, rec, scope, reason)
				return
			}
			r.Header.Set("X-CSRFToken", c.CSRF)
			st.cookie = c.Cookie
		} else {
			r.Header.Del("X-CSRFToken")
		}
		r.Header.Del("X-CSRF-Token") // Flask-WTF's other header: never the client's to send
		r.Header.Set("Authorization", "Bearer "+jwt)
		delete(r.Header, "Cookie")
		ipStr := ""
		if ip.IsValid() {
			ipStr = ip.Unmap().String()
		}
		g.m.touch(ctx, rec, ipStr, g.requestID(r))
		g.obs.ObserveAccessTokenRequest(scope, OutcomeAllowed)
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, ctxKey{}, st)))
	})
}

// UpstreamCookie is the innermost hook for proxy.Options.Middleware (after
// the session layer, which drops every Cookie header it did not set). For
// a request Middleware accepted it sets the Cookie header to the Superset
// session the CSRF token belongs to (or removes it); other requests pass
// untouched.
func (g *Guard) UpstreamCookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok && st != nil {
			if st.cookie != "" {
				r.Header["Cookie"] = []string{st.cookie}
			} else {
				delete(r.Header, "Cookie")
			}
		}
		next.ServeHTTP(w, r)
	})
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

func (g *Guard) refuseID(w http.ResponseWriter, r *http.Request, id, reason string) {
	g.refuse(w, r, &Record{ID: id}, ScopeNone, reason)
}

// refuse counts, audits (throttled), and answers a refusal.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, rec *Record, scope, reason string) {
	g.obs.ObserveAccessTokenRequest(scope, reason)
	if reason != ReasonStoreUnavailable {
		g.auditRefusal(r, rec, reason)
	}
	status, msg := StatusFor(reason)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", g.retryAfter)
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(status)
	// msg is built from constants and scope names only: no escaping needed.
	_, _ = w.Write([]byte(`{"msg":"` + msg + `"}` + "\n"))
}

func (g *Guard) auditRefusal(r *http.Request, rec *Record, reason string) {
	key := reason
	ev := audit.Event{Event: "access_token.refused", Actor: "anonymous", Outcome: audit.OutcomeDenied, Reason: reason,
		RequestID: g.requestID(r)}
	if ip := g.clientIP(r); ip.IsValid() {
		ev.IP = ip.Unmap().String()
	}
	if rec != nil {
		if reason != ReasonUnknown {
			// Unknown ids are the attacker's to choose: one event a
			// second for all of them, not one per id.
			key += "|" + rec.ID
		}
		ev.Subject = "access_token:" + rec.ID
		if rec.OwnerID != "" && reason != ReasonBadSecret {
			ev.Actor = "user:" + rec.OwnerID
		}
		ev.Details = map[string]any{"method": r.Method, "path": r.URL.Path}
	}
	now := g.now()
	g.auditMu.Lock()
	if now.Sub(g.lastAudit[key]) < time.Second {
		g.auditMu.Unlock()
		return
	}
	if len(g.lastAudit) >= 10000 {
		clear(g.lastAudit)
	}
	g.lastAudit[key] = now
	g.auditMu.Unlock()
	if err := g.aud.Emit(r.Context(), ev); err != nil {
		g.log.Warn("audit event not fully recorded", zap.Error(err))
	}
}

// StatusFor maps a refusal reason to the HTTP status and the public
// message ({"msg": …}, flask-jwt-extended's shape).
func StatusFor(reason string) (int, string) {
	switch reason {
	case ReasonStoreUnavailable:
		return http.StatusServiceUnavailable, "Service temporarily unavailable"
	case ReasonUpstream:
		return http.StatusBadGateway, "Could not obtain upstream credentials"
	case ReasonExpired:
		return http.StatusUnauthorized, "Access token has expired"
	case ReasonRevoked:
		return http.StatusUnauthorized, "Access token has been revoked"
	case ReasonCIDR:
		return http.StatusForbidden, "Access token is not allowed from this address"
	case policy.ReasonNotAPI:
		return http.StatusForbidden, "Access tokens cannot open browser pages"
	case policy.ReasonNoScope:
		return http.StatusForbidden, "No access-token scope allows this request"
	}
	if s := policy.MissingScope(reason); s != "" {
		return http.StatusForbidden, "Access token lacks the scope " + s
	}
	return http.StatusUnauthorized, "Invalid access token"
}
