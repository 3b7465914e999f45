package guesttoken

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/internal/ttlcache"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// DefaultGuestSecret is Superset's default GUEST_TOKEN_JWT_SECRET. Anyone
// can mint guest tokens with it.
const DefaultGuestSecret = "test-guest-secret-change-me"

// Options configure a Guard. Verifier.Key and Revoker are required.
type Options struct {
	// Verifier holds Superset's guest secret, algorithm allow-list,
	// audience and leeway.
	Verifier guestjwt.Verifier
	// Revoker reads the revoked_before stamps.
	Revoker *Revoker
	// Policy caps lifetime and resources.
	Policy Policy
	// AllowDefaultSecret turns off the refusal of tokens that verify under
	// DefaultGuestSecret (an operator's explicit opt-out, for demos).
	AllowDefaultSecret bool
	// HeaderName is Superset's GUEST_TOKEN_HEADER_NAME; "" means
	// DefaultHeader.
	HeaderName string
	// MaxFormBytes bounds the urlencoded or multipart body read to find a
	// guest_token field; larger form bodies are refused with 413, because
	// a token beyond what was read could not be checked. 0 means
	// DefaultMaxFormBytes; set it to the proxy's body limit.
	MaxFormBytes int64
	// FormMemoryBytes is how much of a form body is held in memory; the
	// rest is spooled to an unlinked file in SpoolDir. 0 means
	// DefaultFormMemoryBytes.
	FormMemoryBytes int64
	// SpoolDir holds spooled form bodies; "" means os.TempDir().
	SpoolDir string
	// VerifiedCacheSize bounds the cache of verified tokens (by SHA-256),
	// which spares the signature check when an embedded page sends the
	// same token again; revocation is checked on every request anyway.
	// 0 means 10000; negative disables the cache.
	VerifiedCacheSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives store failures and refusals (reasons only, never a
	// token); nil means none.
	Logger *zap.Logger
	// Observer receives metrics; nil means none.
	Observer Observer
	// Auditor receives issuance and default-secret events; nil means none.
	Auditor Auditor
	// Caller names who made a request, for audit events; nil leaves
	// Actor, RequestID and IP empty.
	Caller CallerFunc
}

// Guard checks guest tokens on the way to Superset and watches their
// issuance on the way back. Build it with New; it is safe for concurrent
// use.
type Guard struct {
	v          guestjwt.Verifier
	defaultV   guestjwt.Verifier
	keyDefault bool
	allowDef   bool
	rev        *Revoker
	policy     Policy
	ex         extractor
	verified   *ttlcache.Cache[[32]byte, *guestjwt.Claims]
	now        func() time.Time
	log        *zap.Logger
	obs        Observer
	aud        Auditor
	caller     CallerFunc
}

// New validates o and builds a Guard.
func New(o Options) (*Guard, error) {
	if len(o.Verifier.Key) == 0 {
		return nil, fmt.Errorf("%w: Verifier.Key is required", ErrConfig)
	}
	if o.Revoker == nil {
		return nil, fmt.Errorf("%w: Revoker is required", ErrConfig)
	}
	g := &Guard{
		v: o.Verifier, rev: o.Revoker, policy: o.Policy, allowDef: o.AllowDefaultSecret,
		now: o.Now, log: o.Logger, obs: o.Observer, aud: o.Auditor, caller: o.Caller,
	}
	g.defaultV = o.Verifier
	g.defaultV.Key = []byte(DefaultGuestSecret)
	g.keyDefault = string(o.Verifier.Key) == DefaultGuestSecret
	name := o.HeaderName
	if name == "" {
		name = DefaultHeader
	}
	g.ex = extractor{header: textproto.CanonicalMIMEHeaderKey(name), maxForm: o.MaxFormBytes, memForm: o.FormMemoryBytes, spoolDir: o.SpoolDir}
	if g.ex.maxForm <= 0 {
		g.ex.maxForm = DefaultMaxFormBytes
	}
	if g.ex.memForm <= 0 {
		g.ex.memForm = DefaultFormMemoryBytes
	}
	g.ex.memForm = min(g.ex.memForm, g.ex.maxForm)
	if n := o.VerifiedCacheSize; n >= 0 {
		if n == 0 {
			n = 10000
		}
		g.verified = ttlcache.New[[32]byte, *guestjwt.Claims](n)
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
	if g.caller == nil {
		g.caller = func(*http.Request) Caller { return Caller{} }
	}
	return g, nil
}

// Result is the outcome of Check: a Decision, and the claims when the
// token verified (also when it was then refused by policy or revocation).
type Result struct {
	Decision
	Claims *guestjwt.Claims
}

// Check verifies token and applies the policy and the revocation stamps.
// Its error is ErrUnavailable (the store could not answer; fail closed)
// and nothing else: every verdict on the token itself is a Decision.
func (g *Guard) Check(ctx context.Context, token string) (Result, error) {
	if len(token) > guestjwt.MaxTokenLen {
		return Result{Decision: refuse(ReasonTooLarge)}, nil
	}
	now := g.now()
	c, d := g.verify(token, now)
	if !d.Allow {
		return Result{Decision: d, Claims: c}, nil
	}
	keys := make([]string, 0, len(c.Resources)+1)
	keys = append(keys, GlobalKey)
	for _, r := range c.Resources {
		keys = append(keys, ResourceKey(r.Type, r.ID))
	}
	ms, stamped, err := g.rev.RevokedBefore(ctx, keys...)
	if err != nil {
		return Result{Decision: refuse(ReasonStoreUnavailable), Claims: c}, err
	}
	return Result{Decision: CheckRevocation(c.IssuedAt, ms, stamped), Claims: c}, nil
}

// verify runs the signature, claims and policy checks, from the verified
// cache when possible. Only tokens that passed them all are cached: the
// outcome for them can change only with time, through exp, which bounds
// the entry.
func (g *Guard) verify(token string, now time.Time) (*guestjwt.Claims, Decision) {
	var key [32]byte
	if g.verified != nil {
		key = sha256.Sum256([]byte(token))
		if c, ok := g.verified.Get(key, now); ok {
			return c, allow()
		}
	}
	c, err := g.v.Verify(token, now)
	if err != nil {
		if errors.Is(err, guestjwt.ErrBadSignature) && !g.allowDef && !g.keyDefault && g.signedWithDefault(token, now) {
			return nil, refuse(ReasonDefaultSecret)
		}
		return nil, refuse(policy.Reason(guestjwt.Reason(err)))
	}
	if g.keyDefault && !g.allowDef {
		return c, refuse(ReasonDefaultSecret)
	}
	if d := CheckClaims(c, g.policy); !d.Allow {
		return c, d
	}
	if g.verified != nil {
		g.verified.PutIf(g.verified.Generation(), key, c, c.ExpiresAt.Add(g.v.Leeway), now)
	}
	return c, allow()
}

// signedWithDefault reports whether token's signature is valid under
// DefaultGuestSecret, whatever its claims say: Verify checks the signature
// before the claims, so any outcome but ErrBadSignature means it matched.
func (g *Guard) signedWithDefault(token string, now time.Time) bool {
	_, err := g.defaultV.Verify(token, now)
	return !errors.Is(err, guestjwt.ErrBadSignature)
}

// Authenticate finds the request's guest tokens as Superset could read
// them (the X-GuestToken header, and every guest token in a body that
// could be a form: see extract.go), verifies them and applies the policy
// and, to body tokens, the revocation stamps. It returns the zero
// Principal when the request carries no token it could verify; otherwise
// the principal's IssuedAt is the token's iat and its Resources the
// revocation keys of the dashboards it names, which the gateway checks
// with Revoker.Check. A body spooled to read a form is released when the
// request ends (Exchange.Defer). It never writes the response.
func (g *Guard) Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, policy.Decision, error) {
	rd, d, release := g.ex.read(r)
	x.Defer(release)
	p := principal.Principal{Kind: principal.Guest}
	if !d.Allow {
		g.obs.ObserveGuestTokenChecked()
		return p, policy.Decision{Reason: policy.Reason(d.Reason)}, nil
	}
	if rd.Header == "" && len(rd.Body) == 0 {
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	g.obs.ObserveGuestTokenChecked()
	now := g.now()
	var (
		token  string
		claims *guestjwt.Claims
	)
	if rd.Header != "" {
		c, d := g.verify(rd.Header, now)
		if !d.Allow {
			if d.Reason == ReasonDefaultSecret {
				g.auditDefaultSecret(r, c)
			}
			return p, policy.Decision{Reason: policy.Reason(d.Reason)}, nil
		}
		token, claims = rd.Header, c
	}
	for _, cand := range rd.Body {
		c, verified, d := g.checkCandidate(cand, now)
		if !d.Allow {
			return p, policy.Decision{Reason: policy.Reason(d.Reason)}, nil
		}
		if verified {
			switch {
			case token == "":
				// The principal: the revocation stage checks it.
				token, claims = cand.Token, c
				continue
			case cand.Token == token:
				continue
			}
			// Two tokens that verify: which one Superset uses depends
			// on fields the gateway does not parse.
			return p, policy.Decision{Reason: policy.ReasonAmbiguous}, nil
		}
		rev, err := g.rev.Check(ctx, c.IssuedAt, resourceKeys(c))
		if err != nil {
			return p, policy.Decision{Reason: policy.ReasonStoreUnavailable}, err
		}
		if !rev.Allow {
			return p, rev, nil
		}
	}
	if token == "" {
		// Only copies it could not verify, each checked: Superset
		// decides on the signature.
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	p.IssuedAt = claims.IssuedAt
	p.Resources = resourceKeys(claims)
	return p, policy.Decision{Allow: true}, nil
}

// checkCandidate verifies a token found in a body. One whose signature
// does not verify as found is checked on its payload's claims alone:
// PyJWT skips bytes outside the base64 alphabet in the signature segment,
// so Superset may verify a copy the gateway cannot. verified reports
// whether the signature held.
func (g *Guard) checkCandidate(cand Candidate, now time.Time) (c *guestjwt.Claims, verified bool, d Decision) {
	c, d = g.verify(cand.Token, now)
	switch {
	case d.Allow:
		return c, true, d
	case d.Reason != "bad_signature" && d.Reason != "malformed":
		return c, false, d
	}
	c, err := g.v.PayloadClaims(cand.Payload, now)
	if err != nil {
		return nil, false, refuse(policy.Reason(guestjwt.Reason(err)))
	}
	return c, false, CheckClaims(c, g.policy)
}

// resourceKeys are the revocation keys of the dashboards c names.
func resourceKeys(c *guestjwt.Claims) []string {
	keys := make([]string, 0, len(c.Resources))
	for _, res := range c.Resources {
		keys = append(keys, ResourceKey(res.Type, res.ID))
	}
	return keys
}

// auditDefaultSecret records that a token signed with Superset's default
// secret was presented. The event is denied: the auditor throttles it like
// every refusal (the gateway's adapter sends it to audit.Logger.Refusal),
// so an attacker replaying such a token cannot flood the audit log.
func (g *Guard) auditDefaultSecret(r *http.Request, c *guestjwt.Claims) {
	if g.aud == nil {
		return
	}
	cl := g.caller(r)
	ev := AuditEvent{Event: "guest_token.default_secret", Actor: cl.Actor, RequestID: cl.RequestID, IP: cl.IP,
		Outcome: "denied", Reason: string(ReasonDefaultSecret)}
	if c != nil {
		ev.Subject = subject(c.Resources)
	}
	g.aud.Audit(r.Context(), ev)
}

// Read is what Authenticate reads of r before verifying anything: the
// token header and every guest token of a body that could be a form, or
// a refusal. The differential tests (e2e/oracle) compare it with what
// Superset reads. It puts the body back byte for byte; release must be
// called when r is done.
func (g *Guard) Read(r *http.Request) (Reading, Decision, func()) {
	return g.ex.read(r)
}
