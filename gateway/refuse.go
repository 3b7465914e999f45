package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
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
	}
	switch kind {
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
	return f
}

// Refuse answers r with the refusal of reason for a principal of p's kind.
// cause is the private error (a store failure), logged, never sent.
func (f *Refuser) Refuse(w http.ResponseWriter, r *http.Request, p principal.Principal, reason policy.Reason, cause error) {
	a := AnswerFor(p.Kind, reason)
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
	if a.Status == http.StatusUnauthorized && (p.Kind == principal.AccessToken || p.Kind == principal.APIJWT || p.Kind == principal.RefreshJWT) {
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	// Python's json.dumps spacing, as Superset's own {"msg": …} answers.
	var buf bytes.Buffer
	buf.WriteString(`{"msg": `)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(a.Message) // a string always encodes; Encode adds "\n"
	b := buf.Bytes()
	b = append(b[:len(b)-1], "}\n"...)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(a.Status)
	_, _ = w.Write(b)
}

// RefuseWithHeaders is Refuse with extra response headers (a 429's
// Retry-After and RateLimit fields). A browser page request gets a small
// HTML page instead of the JSON body; /api/ and every other client get
// Refuse's JSON.
func (f *Refuser) RefuseWithHeaders(w http.ResponseWriter, r *http.Request, p principal.Principal, reason policy.Reason, extra http.Header) {
	h := w.Header()
	for k, v := range extra {
		h[k] = v
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		f.Refuse(w, r, p, reason, nil)
		return
	}
	f.Refuse(&htmlRefusal{ResponseWriter: w}, r, p, reason, nil)
}

// htmlRefusal replaces Refuse's JSON body with a short page for a browser.
type htmlRefusal struct {
	http.ResponseWriter
	status int
}

func (h *htmlRefusal) WriteHeader(status int) { h.status = status }

func (h *htmlRefusal) Write([]byte) (int, error) {
	msg := http.StatusText(h.status)
	page := "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>" + msg + "</title>" +
		"<h1>" + msg + "</h1><p>Too many attempts. Please wait " + html.EscapeString(h.Header().Get("Retry-After")) +
		" seconds, then try again.</p></html>\n"
	hd := h.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(page)))
	h.ResponseWriter.WriteHeader(h.status)
	return h.ResponseWriter.Write([]byte(page))
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
	}
	return "request.refused"
}
