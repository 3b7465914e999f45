package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/ratelimit"
	"github.com/superset-gateway/superset-gateway/tracing"
)

// The request path, in the order a request meets it. proxy runs the first
// two stages (hygiene, then the gateway's own /-/ routes) and the last
// two (the reverse proxy and the response hooks); everything between them
// is Pipeline.ServeHTTP below, top to bottom:
//
//  1. hygiene                       proxy (one path, size limits, headers)
//  2. the gateway's own routes      proxy → admin, session, accesstoken pages
//  3. authenticate: one principal   Bearer sst_ (FAB API key), Bearer JWT,
//                                   Bearer sgw_, guest token,
//                                   else the gateway session cookie
//  4. one revocation check          epochs (users, global), revoked_before
//  5. authorise                     access-token and FAB API key scopes;
//                                   FAB key management routes; extension
//                                   policy; rate limits
//  6. inject upstream credentials   session jar, minted JWT + CSRF
//  7. reverse proxy                 proxy/upstream
//  8. response hooks, in order      stamp epochs → guest issuance →
//                                   access-token CSRF → FAB key registry
//                                   → extension list
//                                   filter and file pinning → session vault
//                                   → sign-in outcomes (rate limits)
//
// A new stage goes here, between two numbered ones, and nowhere else.

// Authenticator reads one kind of credential from a request the way
// Superset reads it. It returns the zero Principal when the request
// carries no credential of its kind, a refusing Decision with a reason for
// a credential it cannot accept, and an error only when the store cannot
// answer. It never writes the response and never checks revocation (stage
// 4 does, for every kind alike).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, policy.Decision, error)
}

// SessionStage is the session vault as the request path uses it.
type SessionStage interface {
	// Authenticate loads the gateway session of a browser request (no
	// token) into x.SessionState: a Session principal for a live record,
	// None for no or a dead cookie. err is a store failure.
	Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, error)
	// Revoked destroys a session the revocation check refused; the
	// request goes on anonymous and the cookie is cleared on the way
	// back. It never logs anyone out for a store failure: err is 503.
	Revoked(ctx context.Context, r *http.Request, x *principal.Exchange, reason policy.Reason) error
	// Inject sets the Cookie header to the session's Superset cookies.
	Inject(r *http.Request, x *principal.Exchange)
	// ModifyResponse absorbs Superset's Set-Cookie into the vault,
	// creates, rotates and destroys sessions. Runs for every response.
	ModifyResponse(resp *http.Response) error
}

// TokenStage is the access-token guard as the request path uses it.
type TokenStage interface {
	Authenticator
	// Authorize checks the token's scopes for r.
	Authorize(ctx context.Context, r *http.Request, x *principal.Exchange) policy.Decision
	// Inject replaces Authorization with a minted Superset JWT of the
	// owner and, for CSRF-protected writes, the Superset session and
	// CSRF token the gateway keeps for the token. A refusal (Superset's
	// CSRF token unobtainable) is a Decision; err is a store failure.
	Inject(ctx context.Context, r *http.Request, x *principal.Exchange) (policy.Decision, error)
	ModifyResponse(resp *http.Response) error
}

// GuestRevocation answers whether a guest token issued at iat for these
// resources was revoked (per dashboard or globally).
type GuestRevocation interface {
	Check(ctx context.Context, iat time.Time, resources []string) (policy.Decision, error)
}

// EpochChecker is the user and global invalidation epochs.
type EpochChecker interface {
	IssuedAfter(ctx context.Context, userID string, issued time.Time, granularity time.Duration) (policy.Decision, error)
}

// StampStage stamps epochs from Superset's own user-admin traffic: it
// captures what such a request asked for and, on the answer, stamps.
type StampStage interface {
	// Capture refuses a user-admin request whose target it could not
	// stamp (policy.ReasonBadUserID).
	Capture(r *http.Request, x *principal.Exchange) policy.Decision
	StampResponse(resp *http.Response) error
}

// ExtensionStage is the extension policy (extensions/enforce): Check
// refuses a failing or unvetted extension's files and backend routes;
// ModifyResponse filters the list of extensions and pins served files.
type ExtensionStage interface {
	Check(r *http.Request) policy.Decision
	ModifyResponse(resp *http.Response) error
}

// RateLimitStage is the rate limits (package ratelimit) as the request
// path uses them.
type RateLimitStage interface {
	// Check spends from the request's buckets; a refusal names its
	// reason and the 429's headers. It never fails: a store outage is
	// answered by per-process buckets.
	Check(ctx context.Context, r *http.Request, x *principal.Exchange) *ratelimit.Refusal
	// ModifyResponse counts failed sign-ins and marks known devices.
	ModifyResponse(resp *http.Response) error
}

// FABKeyStage is superset.fab_api_keys as the request path uses it
// (fabkey.Refuser, fabkey.Enforcer): Authenticate claims a request
// carrying a FAB API key before any other bearer stage looks at it; Check
// decides FAB's key management routes; Authorize checks a key's scopes;
// Inject hands Superset the key; ModifyResponse watches the management
// routes' answers.
type FABKeyStage interface {
	Authenticator
	Check(r *http.Request) policy.Decision
	Authorize(ctx context.Context, r *http.Request, x *principal.Exchange) policy.Decision
	Inject(r *http.Request, x *principal.Exchange)
	ModifyResponse(resp *http.Response) error
}

// Parts are the stages the pipeline runs. New builds them from the
// config; tests build their own (real packages over fakes) and get the
// same order. Nil JWT, Tokens, Guests or Stamp leave that stage out; nil
// Sessions (tests only) drops every cookie and keeps no session.
type Parts struct {
	Sessions SessionStage
	JWT      Authenticator
	// Tokens nil with TokensDisabled: every `Bearer sgw_…` is refused.
	Tokens         TokenStage
	TokensDisabled bool
	Guests         Authenticator
	// FABKeys nil: FAB API keys are not looked for (a key then fails as a
	// malformed JWT).
	FABKeys FABKeyStage
	// GuestIssuance sees responses (guest tokens Superset issued).
	GuestIssuance func(*http.Response) error
	GuestRevoked  GuestRevocation
	Epochs        EpochChecker
	Stamp         StampStage
	// Extensions nil: extensions pass through unchecked.
	Extensions ExtensionStage
	// RateLimits nil: no rate limits.
	RateLimits RateLimitStage
	Refusals   *Refuser
	Now        func() time.Time
	Logger     *zap.Logger
	// Traced marks the stages on the request's span (package tracing);
	// false skips even looking for one, so tracing off costs nothing.
	Traced bool
}

// Pipeline is stages 3 to 6 and 8 of the request path. Build it with
// NewPipeline; it is immutable and safe for concurrent use.
type Pipeline struct {
	p     Parts
	hooks []func(*http.Response) error
}

// NewPipeline checks parts and fixes the order of the response hooks.
func NewPipeline(p Parts) (*Pipeline, error) {
	if p.Epochs == nil || p.Refusals == nil {
		return nil, errors.New("gateway: Parts.Epochs and Refusals are required")
	}
	if p.Guests != nil && p.GuestRevoked == nil {
		return nil, errors.New("gateway: Parts.Guests needs GuestRevoked")
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = zap.NewNop()
	}
	pl := &Pipeline{p: p}
	// Stamping first: the vault's hook reads Exchange.SelfStamped.
	if p.Stamp != nil {
		pl.hooks = append(pl.hooks, p.Stamp.StampResponse)
	}
	if p.GuestIssuance != nil {
		pl.hooks = append(pl.hooks, p.GuestIssuance)
	}
	if p.Tokens != nil {
		pl.hooks = append(pl.hooks, p.Tokens.ModifyResponse)
	}
	if p.FABKeys != nil {
		pl.hooks = append(pl.hooks, p.FABKeys.ModifyResponse)
	}
	if p.Extensions != nil {
		pl.hooks = append(pl.hooks, p.Extensions.ModifyResponse)
	}
	// Last: the vault removes every Set-Cookie before the client sees it.
	if p.Sessions != nil {
		pl.hooks = append(pl.hooks, p.Sessions.ModifyResponse)
	} else {
		pl.hooks = append(pl.hooks, stripSetCookie)
	}
	// After the vault, which removes every Set-Cookie: the known-device
	// cookie is the gateway's own.
	if p.RateLimits != nil {
		pl.hooks = append(pl.hooks, p.RateLimits.ModifyResponse)
	}
	return pl, nil
}

// Middleware is stages 3 to 6 around next (the reverse proxy); install it
// as the only proxy.Options.Middleware.
func (pl *Pipeline) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pl.serve(w, r, next)
	})
}

// ModifyResponse is stage 8: the response hooks in their fixed order.
func (pl *Pipeline) ModifyResponse(resp *http.Response) error {
	if resp.Request != nil {
		pl.stage(resp.Request.Context(), "hooks")
	}
	for _, h := range pl.hooks {
		if err := h(resp); err != nil {
			return err
		}
	}
	return nil
}

func (pl *Pipeline) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := r.Context()
	x := &principal.Exchange{Start: pl.p.Now()}
	defer x.Done()

	// 3. Authenticate: exactly one principal.
	pl.stage(ctx, "authenticate")
	p, d, err := pl.authenticate(ctx, r, x)
	if pl.p.Traced {
		tracing.Caller(ctx, p.Kind.String())
	}
	if pl.refused(w, r, p, d, err) {
		return
	}

	// 4. One revocation check, the same for every kind.
	pl.stage(ctx, "revocation")
	d, err = pl.revocation(ctx, p)
	if err != nil {
		pl.p.Refusals.Refuse(w, r, p, policy.ReasonStoreUnavailable, err)
		return
	}
	if !d.Allow {
		if p.Kind != principal.Session {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
		// A revoked browser session is ended, not refused: the browser
		// goes on anonymous and lands on Superset's login page.
		if err := pl.p.Sessions.Revoked(ctx, r, x, d.Reason); err != nil {
			pl.p.Refusals.Refuse(w, r, p, policy.ReasonStoreUnavailable, err)
			return
		}
		p = principal.Principal{}
	}
	if c := x.Carrier; c.SignedIn() {
		// The JWT's own user's session carries its cookies: a revoked
		// one is ended, and the JWT goes on without it.
		d, err := pl.revocation(ctx, c)
		if err != nil {
			pl.p.Refusals.Refuse(w, r, p, policy.ReasonStoreUnavailable, err)
			return
		}
		if !d.Allow {
			if err := pl.p.Sessions.Revoked(ctx, r, x, d.Reason); err != nil {
				pl.p.Refusals.Refuse(w, r, p, policy.ReasonStoreUnavailable, err)
				return
			}
		}
	}
	x.Principal = p

	// 5. Authorise: scopes, the extension policy, then the rate limits;
	// a refused or limited request never reaches Superset.
	pl.stage(ctx, "authorise")
	if p.Kind == principal.AccessToken {
		if d := pl.p.Tokens.Authorize(ctx, r, x); !d.Allow {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
	}
	if p.Kind == principal.FABAPIKey {
		if d := pl.p.FABKeys.Authorize(ctx, r, x); !d.Allow {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
	}
	if pl.p.FABKeys != nil {
		if d := pl.p.FABKeys.Check(r); !d.Allow {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
	}
	if pl.p.Extensions != nil {
		if d := pl.p.Extensions.Check(r); !d.Allow {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
	}
	if pl.p.RateLimits != nil {
		if ref := pl.p.RateLimits.Check(ctx, r, x); ref != nil {
			pl.p.Refusals.RefuseWithHeaders(w, r, p, ref.Reason, ref.Header)
			return
		}
	}

	// 6. Inject upstream credentials. No cookie the client sent ever
	// reaches Superset: only the vault's, or the token's own.
	pl.stage(ctx, "inject")
	delete(r.Header, "Cookie")
	switch p.Kind {
	case principal.Session, principal.APIJWT, principal.RefreshJWT, principal.None:
		if pl.p.Sessions != nil {
			pl.p.Sessions.Inject(r, x)
		}
	case principal.AccessToken:
		if d, err := pl.p.Tokens.Inject(ctx, r, x); pl.refused(w, r, p, d, err) {
			return
		}
	case principal.FABAPIKey:
		pl.p.FABKeys.Inject(r, x)
	}
	if pl.p.Stamp != nil {
		if d := pl.p.Stamp.Capture(r, x); !d.Allow {
			pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
			return
		}
	}

	// The caller class of the performance metrics (proxy.Options.Observer).
	if rep := upstream.ReportFrom(ctx); rep != nil {
		rep.Caller = p.Caller()
	}

	// 7. The reverse proxy, with the exchange as the one context value.
	pl.stage(ctx, "upstream")
	next.ServeHTTP(w, r.WithContext(principal.WithExchange(ctx, x)))
}

// stage marks a stage on the request's span when tracing is on.
func (pl *Pipeline) stage(ctx context.Context, name string) {
	if pl.p.Traced {
		tracing.Stage(ctx, name)
	}
}

// refused answers the request when a stage could not decide (err: the
// store, 503) or decided against it, and reports whether it did.
func (pl *Pipeline) refused(w http.ResponseWriter, r *http.Request, p principal.Principal, d policy.Decision, err error) bool {
	switch {
	case err != nil:
		pl.p.Refusals.Refuse(w, r, p, policy.ReasonStoreUnavailable, err)
	case !d.Allow:
		pl.p.Refusals.Refuse(w, r, p, d.Reason, nil)
	default:
		return false
	}
	return true
}

// authenticate finds the request's one principal. Authorization (a
// Superset JWT or an access token) and a guest token together are refused:
// Superset would pick one of them by rules of its own, and the gateway
// must decide on the one Superset acts on. A guest or access-token request
// is stateless: a gateway cookie sent with it is neither loaded nor
// forwarded. A Superset JWT may come with the gateway cookie of the
// session that holds Superset's CSRF cookie for it (how API clients make
// CSRF-protected writes); that session must be anonymous or the JWT's own
// user, or the request is refused, and it is checked for revocation too
// (x.SessionState, see revocation).
func (pl *Pipeline) authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, policy.Decision, error) {
	allow := policy.Decision{Allow: true}
	var bearer principal.Principal
	bearerD := allow
	found := false
	// A FAB API key first: it is a bearer too, and would otherwise be
	// judged (and refused as malformed) by the JWT stage.
	if pl.p.FABKeys != nil {
		p, d, err := pl.p.FABKeys.Authenticate(ctx, r, x)
		if err != nil || p.Kind != principal.None || !d.Allow {
			return p, d, err
		}
	}
	if pl.p.JWT != nil {
		p, d, err := pl.p.JWT.Authenticate(ctx, r, x)
		if err != nil {
			return p, d, err
		}
		if p.Kind != principal.None || !d.Allow {
			bearer, bearerD, found = p, d, true
		}
	}
	if !found {
		switch {
		case pl.p.Tokens != nil:
			p, d, err := pl.p.Tokens.Authenticate(ctx, r, x)
			if err != nil {
				return p, d, err
			}
			if p.Kind != principal.None || !d.Allow {
				bearer, bearerD, found = p, d, true
			}
		case pl.p.TokensDisabled && accesstoken.Claims(r.Header):
			bearer, bearerD, found = principal.Principal{Kind: principal.AccessToken}, policy.Decision{Reason: policy.ReasonTokensDisabled}, true
		}
	}
	if pl.p.Guests != nil {
		g, d, err := pl.p.Guests.Authenticate(ctx, r, x)
		if err != nil {
			return g, d, err
		}
		if g.Kind != principal.None || !d.Allow {
			if found {
				return principal.Principal{Kind: bearer.Kind}, policy.Decision{Reason: policy.ReasonMixedCredentials}, nil
			}
			return g, d, nil
		}
	}
	if found && (bearer.Kind == principal.AccessToken || !bearerD.Allow) {
		return bearer, bearerD, nil
	}
	if pl.p.Sessions == nil {
		return bearer, allow, nil
	}
	s, err := pl.p.Sessions.Authenticate(ctx, r, x)
	if err != nil || !found {
		return s, allow, err
	}
	// A Superset JWT with a gateway cookie.
	if s.SignedIn() && s.UserID != bearer.UserID {
		return bearer, policy.Decision{Reason: policy.ReasonMixedCredentials}, nil
	}
	x.Carrier = s
	return bearer, allow, nil
}

// revocation is stage 4: the credential's issue time against the epochs
// of its user and the global one, or a guest token's against
// revoked_before of every dashboard it names and the global one.
func (pl *Pipeline) revocation(ctx context.Context, p principal.Principal) (policy.Decision, error) {
	switch {
	case p.Kind == principal.Guest:
		return pl.p.GuestRevoked.Check(ctx, p.IssuedAt, p.Resources)
	case p.UserID != "":
		return pl.p.Epochs.IssuedAfter(ctx, p.UserID, p.IssuedAt, p.Granularity)
	}
	return policy.Decision{Allow: true}, nil
}

// stripSetCookie stands in for the vault's hook in a pipeline built
// without sessions (tests of one credential): Superset's cookies never
// reach the client.
func stripSetCookie(resp *http.Response) error {
	delete(resp.Header, "Set-Cookie")
	return nil
}
