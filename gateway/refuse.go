package gateway

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/tracing"
	"github.com/superset-gateway/superset-gateway/ui"
)

// Answer is what a refusal looks like from outside: the status, the
// public message ({"msg": …}, the shape flask-jwt-extended gives
// Superset's own 401s, so Superset's frontend and the embedded SDK treat a
// refused token as an expired one) and whether Retry-After is sent.
type Answer struct {
	Status     int
	Message    string
	RetryAfter bool
}

// AnswerFor is the one mapping from a reason to its answer; kind picks the
// wording where Superset's own differs by credential. The message never
// says more than Superset's would and never echoes the request.
func AnswerFor(kind principal.Kind, reason policy.Reason) Answer {
	unauth := func(msg string) Answer { return Answer{Status: http.StatusUnauthorized, Message: msg} }
	forbid := func(msg string) Answer { return Answer{Status: http.StatusForbidden, Message: msg} }
	bad := func(msg string) Answer { return Answer{Status: http.StatusBadRequest, Message: msg} }
	if s := policy.MissingScope(reason); s != "" {
		if kind == principal.FABAPIKey {
			return forbid("API key lacks the scope " + s)
		}
		return forbid("Access token lacks the scope " + s)
	}
	switch reason {
	case policy.ReasonStoreUnavailable:
		return Answer{Status: http.StatusServiceUnavailable, Message: "Service temporarily unavailable", RetryAfter: true}
	case policy.ReasonRateLimited, policy.ReasonLoginThrottled:
		// Retry-After comes with the limit's own headers
		// (RefuseWithHeaders), not the store's fixed one.
		return Answer{Status: http.StatusTooManyRequests, Message: "Too many requests"}
	case policy.ReasonBadUserID:
		return bad("The user id must be a plain decimal number.")
	case policy.ReasonMixedCredentials:
		return bad("Send one credential: an Authorization bearer token or a guest token, not both")
	case policy.ReasonBadAuthorizationHeader:
		return unauth("Bad Authorization header. Expected 'Authorization: Bearer <JWT>'")
	case policy.ReasonFormTooLarge:
		return Answer{Status: http.StatusRequestEntityTooLarge, Message: "Request body too large"}
	case policy.ReasonAmbiguous, policy.ReasonMalformedForm, policy.ReasonBodyRead:
		return bad("Bad request")
	case policy.ReasonUpstreamCredits:
		return Answer{Status: http.StatusBadGateway, Message: "Could not obtain upstream credentials"}
	case policy.ReasonCIDR:
		return forbid("Access token is not allowed from this address")
	case policy.ReasonNotAPI:
		return forbid("Access tokens cannot open browser pages")
	case policy.ReasonNoScope:
		return forbid("No access-token scope allows this request")
	case policy.ReasonTokensDisabled:
		return unauth("access tokens are disabled")
	case policy.ReasonFABAPIKey:
		// 401, not 403: the request is refused for its credential, not
		// for what it asks, and the client can go on with another one
		// (a JWT, a gateway access token) to the same route.
		return unauth("API keys are not accepted by this gateway; use a JWT or a gateway access token")
	case policy.ReasonFABAPIKeyNoScopes:
		return forbid("API key has no scopes; the gateway accepts only API keys with scopes")
	case policy.ReasonFABAPIKeyUnresolved:
		return forbid("API key cannot be checked: its owner may not read their API keys")
	case policy.ReasonFABAPIKeyManagement:
		// 403 whoever asks (even an admin's session): the route exists in
		// Superset but the gateway does not serve it.
		return forbid("API key management is disabled by the gateway")
	case policy.ReasonExtensionRefused, policy.ReasonExtensionUnverified:
		return forbid("This extension is not permitted by the gateway's extension policy")
	case policy.ReasonExtensionAdvisoriesUnavailable:
		return Answer{Status: http.StatusServiceUnavailable, Message: "Extensions are unavailable: advisory data is missing or stale", RetryAfter: true}
	}
	switch kind {
	case principal.FABAPIKey:
		if reason == policy.ReasonTokenRevoked {
			return unauth("API key has been revoked")
		}
		return unauth("Invalid API key")
	case principal.AccessToken:
		switch reason {
		case policy.ReasonExpired:
			return unauth("Access token has expired")
		case policy.ReasonTokenRevoked:
			return unauth("Access token has been revoked")
		}
		// An owner's epoch (disabled, deleted, revoked) says nothing
		// about the token itself to whoever holds it.
		return unauth("Invalid access token")
	case principal.Guest:
		if reason == policy.ReasonExpired {
			return unauth("Token has expired")
		}
		return unauth("Invalid guest token")
	}
	// Superset API JWTs, in flask-jwt-extended's words where it has them.
	switch reason {
	case policy.ReasonExpired:
		return unauth("Token has expired")
	case policy.ReasonBadSignature:
		return unauth("Signature verification failed")
	case policy.ReasonWrongType:
		if kind == principal.RefreshJWT {
			return unauth("Only refresh tokens are allowed")
		}
		return unauth("Only non-refresh tokens are allowed")
	case policy.ReasonNotYetValid:
		return unauth("The token is not yet valid (nbf)")
	case policy.ReasonIATInFuture:
		return unauth("The token is not yet valid (iat)")
	case policy.ReasonRevokedUser, policy.ReasonRevokedGlobal, policy.ReasonRevokedJTI:
		return unauth("Token has been revoked")
	case policy.ReasonAlgNotAllowed:
		return unauth("The specified alg value is not allowed")
	}
	return unauth("Invalid token")
}

// RefusalObserver counts refusals by credential kind and reason.
type RefusalObserver interface {
	ObserveCredentialRefusal(kind, reason string)
}

// RefusalAuditor records refusal events; *audit.Logger implements it and
// throttles them per (event, reason), keeping them apart from every other
// event, so an attacker's flood cannot push real events out.
type RefusalAuditor interface {
	Refusal(ctx context.Context, ev audit.Event) error
}

// Refuser is the one refusal writer of the request path: every refusal
// of stages 3 to 6 goes through Refuse, which maps the reason to the
// answer, counts it, audits it and logs its private cause.
type Refuser struct {
	obs        RefusalObserver
	aud        RefusalAuditor
	log        *zap.Logger
	info       func(*http.Request) (requestID, ip string)
	retryAfter string
	// pages renders the browser's error page; nil (it cannot fail to
	// parse) means browsers get the JSON too.
	pages *ui.Errors
}

// RefuserOptions configure NewRefuser; every field may be nil or zero.
type RefuserOptions struct {
	Observer RefusalObserver
	Auditor  RefusalAuditor
	Logger   *zap.Logger
	// RequestInfo gives the request id and client address for the audit
	// event.
	RequestInfo func(*http.Request) (requestID, ip string)
	// RetryAfter is sent with 503; 0 means 5s.
	RetryAfter time.Duration
}

// NewRefuser builds the refusal writer.
func NewRefuser(o RefuserOptions) *Refuser {
	f := &Refuser{obs: o.Observer, aud: o.Auditor, log: o.Logger, info: o.RequestInfo,
		retryAfter: policy.RetryAfter(o.RetryAfter)}
	if f.log == nil {
		f.log = zap.NewNop()
	}
	if pages, err := ui.NewErrors(); err == nil {
		f.pages = pages
	} else {
		f.log.Error("browser error pages unavailable; refusals answer JSON", zap.Error(err))
	}
	return f
}

// Refuse answers r with the refusal of reason for a principal of p's kind.
// cause is the private error (a store failure), logged, never sent.
func (f *Refuser) Refuse(w http.ResponseWriter, r *http.Request, p principal.Principal, reason policy.Reason, cause error) {
	a := AnswerFor(p.Kind, reason)
	// Without a recording span on the context this does nothing.
	tracing.Refusal(r.Context(), string(reason))
	if f.obs != nil {
		f.obs.ObserveCredentialRefusal(p.Kind.String(), string(reason))
	}
	rid, ip := "", ""
	if f.info != nil {
		rid, ip = f.info(r)
	}
	if cause != nil {
		f.log.Warn("request refused", zap.String("reason", string(reason)), zap.String("credential", p.Kind.String()),
			zap.String("request_id", rid), zap.Error(cause))
	}
	if f.aud != nil && reason != policy.ReasonStoreUnavailable {
		ev := audit.Event{Event: refusalEvent(p.Kind), Actor: "anonymous", RequestID: rid, IP: ip,
			Outcome: audit.OutcomeDenied, Reason: string(reason),
			Details: map[string]any{"credential": p.Kind.String(), "method": r.Method, "path": r.URL.Path}}
		switch {
		case p.Kind == principal.FABAPIKey && p.ID != "":
			// FAB's uuid of the key (never the key); its owner acted, as
			// far as Superset can tell.
			ev.Subject = "fab_api_key:" + p.ID
			if p.UserID != "" {
				ev.Actor = p.Actor()
			}
		case p.Kind == principal.AccessToken && p.ID != "":
			// The token is the subject; its owner acted unless the
			// secret was wrong (then someone else holds the id).
			ev.Subject = "access_token:" + p.ID
			if p.UserID != "" && reason != policy.ReasonBadSecret {
				ev.Actor = p.Actor()
			}
		case p.UserID != "":
			// Verified, then refused (revoked): the user is real, but
			// whoever sent it may not be them.
			ev.Subject = "user:" + p.UserID
		}
		if err := f.aud.Refusal(r.Context(), ev); err != nil {
			f.log.Warn("refusal not audited", zap.Error(err))
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if a.RetryAfter {
		h.Set("Retry-After", f.retryAfter)
	}
	if a.Status == http.StatusUnauthorized && (p.Kind == principal.AccessToken || p.Kind == principal.APIJWT || p.Kind == principal.RefreshJWT || p.Kind == principal.FABAPIKey) {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if f.pages != nil && ui.WantsHTML(r) {
		// A person in a browser: the same status and headers, a page
		// saying what happened and what to do. API clients keep the JSON.
		page := refusalPage(a, rid, f.retryAfter)
		if v := h.Get("Retry-After"); v != "" {
			page.RetryAfter = v // a 429's own wait, from the limit
		}
		f.pages.Write(w, page)
		return
	}
	b := ui.MsgJSON(a.Message)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(a.Status)
	_, _ = w.Write(b)
}

// refusalPage explains a refusal to a person: the public message says
// what happened, the status decides what to do.
func refusalPage(a Answer, requestID, retryAfter string) ui.ErrorPage {
	p := ui.ErrorPage{Status: a.Status, What: a.Message + ".", RequestID: requestID}
	switch a.Status {
	case http.StatusUnauthorized:
		p.Heading = "Please sign in again"
		p.Do = "Your sign-in is no longer accepted (it expired or was revoked). Sign in to Superset again; if this keeps happening, ask your administrator."
	case http.StatusForbidden:
		p.Heading = "Not allowed"
		p.Do = "You are signed in, but this is not allowed for you or from here. If you need it, ask your administrator and give them the request id."
	case http.StatusTooManyRequests:
		p.Heading = "Too many requests"
		p.Do = "Wait a little, then reload the page."
	case http.StatusServiceUnavailable:
		p.Heading = "Temporarily unavailable"
		p.Do = "Nothing is wrong with your account. Wait a few seconds and reload the page."
	case http.StatusBadGateway:
		p.Heading = "Superset could not be reached"
		p.Do = "Reload the page in a moment; if it lasts, tell your administrator, with the request id."
	default:
		p.Heading = "The request was refused"
		p.Do = "Go back to Superset and try again from its own pages."
	}
	if a.RetryAfter {
		p.RetryAfter = retryAfter
	}
	return p
}

// RefuseWithHeaders is Refuse with extra response headers (a 429's
// Retry-After and RateLimit fields). Refuse itself chooses the answer's
// form: the JSON body for /api/ and API clients, the gateway's error page
// for a browser's page request.
func (f *Refuser) RefuseWithHeaders(w http.ResponseWriter, r *http.Request, p principal.Principal, reason policy.Reason, extra http.Header) {
	h := w.Header()
	for k, v := range extra {
		h[k] = v
	}
	f.Refuse(w, r, p, reason, nil)
}

// refusalEvent is the audit event name of a refusal: one per credential
// kind, so an admin can filter the events of one kind.
func refusalEvent(k principal.Kind) string {
	switch k {
	case principal.APIJWT, principal.RefreshJWT:
		return "jwt.refused"
	case principal.AccessToken:
		return "access_token.refused"
	case principal.Guest:
		return "guest_token.refused"
	case principal.Session:
		return "session.refused"
	case principal.FABAPIKey:
		return "fab_api_key.refused"
	}
	return "request.refused"
}
