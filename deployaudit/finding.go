// Package deployaudit is `superset-gateway audit`: a read-only, bounded
// check of a Superset deployment from outside, against Superset directly or
// through the gateway. It fetches the login page once (following at most
// MaxRedirects redirects), judges the anonymous session cookie's signing key
// against Superset's published secrets (and an operator's wordlist), a guest
// token if given, cookie attributes, security headers, TLS, endpoints open
// without authentication and, only when asked, whether sign-in attempts are
// rate limited. Every request is bounded in time and size; nothing is
// written to the target except the optional rate-limit probe's failed
// sign-ins for a made-up user.
package deployaudit

import "slices"

// Severity orders findings; Critical makes the command exit non-zero.
type Severity string

const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
	// Pass records a check that found nothing wrong, so a clean report
	// shows what was checked.
	Pass Severity = "pass"
)

var severityOrder = []Severity{Critical, High, Medium, Low, Info, Pass}

func (s Severity) rank() int { return slices.Index(severityOrder, s) }

// Checklist items of the production-readiness analysis a finding answers.
const (
	ItemSecretKey    = "R1 SECRET_KEY is not a published default"
	ItemGuestSecret  = "R2 GUEST_TOKEN_JWT_SECRET is its own, non-default secret"
	ItemCookies      = "R3 session cookies are Secure, HttpOnly and SameSite"
	ItemHeaders      = "R4 security headers (HSTS, CSP, framing, nosniff)"
	ItemTLS          = "R5 TLS 1.2+ with a valid, not soon expiring certificate"
	ItemExposure     = "R6 no API documentation or version disclosed without authentication"
	ItemRateLimit    = "R7 sign-in attempts are rate limited"
	ItemReachability = "R0 the deployment answers as Superset"
)

// Finding is one result. It never carries a secret: a matched key is named
// by its list entry (or wordlist line).
type Finding struct {
	ID        string   `json:"id"`
	Severity  Severity `json:"severity"`
	Title     string   `json:"title"`
	Detail    string   `json:"detail,omitempty"`
	Checklist string   `json:"checklist"`
	Fix       string   `json:"fix,omitempty"`
}
