package guesttoken

import (
	"context"
	"net/http"
)

// Observer receives the package's metrics. Implementations must be safe
// for concurrent use and must not block. Labels are bounded: reasons are
// the Reason* constants and guestjwt.Reason's labels; dashboard is a
// resource id from a token Superset issued (bounded by the number of
// embedded dashboards); scope is "dashboard" or "global".
type Observer interface {
	// ObserveGuestTokenChecked counts a request carrying a guest token.
	ObserveGuestTokenChecked()
	// ObserveGuestTokenIssued counts a token Superset issued, once per
	// dashboard it names.
	ObserveGuestTokenIssued(dashboard string)
	// ObserveGuestTokenRevocation counts a revocation by scope.
	ObserveGuestTokenRevocation(scope string)
}

type nopObserver struct{}

func (nopObserver) ObserveGuestTokenChecked()          {}
func (nopObserver) ObserveGuestTokenIssued(string)     {}
func (nopObserver) ObserveGuestTokenRevocation(string) {}

// AuditEvent mirrors the gateway's audit record (DESIGN.md §6) so that this
// package need not import the audit package; the gateway adapts it. Details holds
// ids, counts and names only, never a token.
type AuditEvent struct {
	Event     string // "guest_token.issue", "guest_token.default_secret"
	Actor     string
	Subject   string // "dashboard:<id>[,dashboard:<id>…]"
	RequestID string
	IP        string
	Outcome   string // "success", "failure", "denied"
	Reason    string
	Details   map[string]any
}

// Auditor records audit events. It must not block the request for long;
// errors are the auditor's to log. Events with Outcome "denied" are
// refusals anyone can cause: the auditor throttles them (the gateway's
// adapter sends them to audit.Logger.Refusal).
type Auditor interface {
	Audit(ctx context.Context, ev AuditEvent)
}

// Caller says who made a request, for audit events. The wiring fills it
// from the session layer (Actor) and the proxy (RequestID, IP).
type Caller struct {
	Actor     string
	RequestID string
	IP        string
}

// CallerFunc extracts the Caller of a request. It sees the inbound request
// in the middleware and the upstream request (same context) in the
// response hook.
type CallerFunc func(r *http.Request) Caller
