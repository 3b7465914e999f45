// Package principal names who a request acts as once the gateway has
// authenticated it: one credential, read the way Superset reads it, and
// the time it was issued, which the one revocation check compares with the
// invalidation epochs. Every credential package returns a Principal; the
// gateway puts it into the request context once, inside the Exchange, and
// nothing else about the request travels in the context.
package principal

import (
	"context"
	"time"
)

// Kind is the kind of credential a request carries.
type Kind uint8

// The credential kinds. A request carries at most one kind (several are
// refused before anything is checked), except that a gateway cookie sent
// with a token is ignored: the token is the principal and the session is
// neither loaded nor forwarded.
const (
	// None: no credential at all. Superset sees the request anonymous.
	None Kind = iota
	// Session: the gateway's session cookie (signed in, or an anonymous
	// session that holds Superset's pre-login cookies).
	Session
	// APIJWT: a Superset API access JWT (Authorization: Bearer).
	APIJWT
	// RefreshJWT: a Superset API refresh JWT, on the refresh route only.
	RefreshJWT
	// AccessToken: a gateway access token (Authorization: Bearer sgw_…).
	AccessToken
	// Guest: a Superset guest token (X-GuestToken, the guest_token form
	// field or query parameter).
	Guest
	// FABAPIKey: a Flask-AppBuilder API key (Authorization: Bearer sst_…,
	// package fabkey).
	FABAPIKey
)

// String is the metric label and audit word of the kind.
func (k Kind) String() string {
	switch k {
	case Session:
		return "session"
	case APIJWT:
		return "access_jwt"
	case RefreshJWT:
		return "refresh_jwt"
	case AccessToken:
		return "access_token"
	case Guest:
		return "guest_token"
	case FABAPIKey:
		return "fab_api_key"
	}
	return "none"
}

// Principal is an authenticated caller. The zero value is "no credential".
type Principal struct {
	Kind Kind
	// UserID is the Superset user id (decimal) the credential acts as;
	// empty for guests and anonymous sessions.
	UserID string
	// Username, when known (sessions, access tokens), for audit and pages.
	Username string
	// IssuedAt is when the credential was issued: a session's login time,
	// a JWT's iat, an access token's creation, a guest token's iat. Zero
	// for anonymous sessions and None.
	IssuedAt time.Time
	// Granularity is the precision of IssuedAt: a credential issued in the
	// same unit as an epoch is refused (a JWT's iat is whole seconds).
	Granularity time.Duration
	// Resources are a guest token's dashboard references (ids or embed
	// uuids), checked against each one's revoked_before.
	Resources []string
	// ID names the credential itself in audit events and metrics without
	// revealing it: an access token's id, a session's short handle.
	ID string
}

// SignedIn reports a principal that acts as a Superset user.
func (p Principal) SignedIn() bool { return p.UserID != "" }

// Actor is the audit actor of p: "user:<id>", "guest" or "anonymous".
func (p Principal) Actor() string {
	switch {
	case p.UserID != "":
		return "user:" + p.UserID
	case p.Kind == Guest:
		return "guest"
	}
	return "anonymous"
}

// Caller is the caller class of p for performance metrics: which kind of
// client Superset was working for. It is one of browser_session, api_jwt,
// access_token, guest, fab_api_key or anonymous (an anonymous session is
// anonymous).
func (p Principal) Caller() string {
	switch p.Kind {
	case Session:
		if p.SignedIn() {
			return "browser_session"
		}
	case APIJWT, RefreshJWT:
		return "api_jwt"
	case AccessToken:
		return "access_token"
	case Guest:
		return "guest"
	case FABAPIKey:
		return "fab_api_key"
	}
	return "anonymous"
}

// FromContext returns the principal of the request; ok is false outside
// the gateway's request path.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	if x := ExchangeFrom(ctx); x != nil {
		return x.Principal, true
	}
	return Principal{}, false
}

// Exchange is the one value the gateway puts into a request's context: the
// principal, when the request entered the request path, and what a stage
// learned that a response hook needs. Each State field belongs to one
// package, which alone reads and writes it; the gateway only carries it.
type Exchange struct {
	Principal Principal
	// Carrier is the gateway session a Superset JWT came with (it holds
	// Superset's CSRF session cookie for the API client); zero when none.
	// It is checked for revocation like the principal.
	Carrier Principal
	// Start is when the request entered the request path: a login's
	// time is when its request was sent, not when Superset answered, so a
	// login Superset checked before a revocation lands before it.
	Start time.Time
	// SelfStamped is the epoch (Unix ms) a response hook stamped for the
	// caller's own user on this request (a password change through
	// PUT /api/v1/me/), 0 if none. The epoch hook writes it and runs
	// before the session vault's hook, which re-issues the caller's
	// session after it.
	SelfStamped int64
	// SessionState, TokenState and StampState are the session vault's,
	// the access-token guard's and the epoch hook's own request state.
	SessionState any
	TokenState   any
	StampState   any
	// RateState is the rate-limit stage's (a sign-in attempt it saw).
	RateState any

	deferred []func()
}

type exchangeKey struct{}

// WithExchange returns ctx carrying x.
func WithExchange(ctx context.Context, x *Exchange) context.Context {
	return context.WithValue(ctx, exchangeKey{}, x)
}

// ExchangeFrom returns the request's exchange, or nil outside the
// gateway's request path (also on the upstream request that response
// hooks see, which carries the same context).
func ExchangeFrom(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return x
}

// Defer registers f to run when the request is over (after the response
// has been copied to the client): a stage releases what it held for the
// request, such as a spooled body. nil f is ignored.
func (x *Exchange) Defer(f func()) {
	if f != nil {
		x.deferred = append(x.deferred, f)
	}
}

// Done runs the deferred functions, last registered first. The gateway
// calls it once per request.
func (x *Exchange) Done() {
	for i := len(x.deferred) - 1; i >= 0; i-- {
		x.deferred[i]()
	}
	x.deferred = nil
}
