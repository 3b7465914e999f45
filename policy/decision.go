// Package policy holds the gateway's pure decisions and their vocabulary:
// the typed refusal reasons (reason.go), security headers, access-token
// scope route rules, CIDR parsing, Retry-After rounding and secret
// strength. Nothing here does I/O or imports net/http handlers' state;
// every decision takes plain values and returns a Decision whose Reason
// feeds the metric label, the audit event and the test assertion. (Rate-
// limit classes will live here when the rate-limit stage exists.)
package policy

// Decision is the outcome of a policy check. The zero value refuses with no
// reason, so a forgotten assignment fails closed.
type Decision struct {
	// Allow reports whether the checked thing is acceptable.
	Allow bool
	// Reason says why, in a stable form that tests assert and logs and
	// metrics can carry; empty when Allow is true and nothing is worth
	// saying. It never contains the checked value itself (a secret, a token).
	Reason Reason
}
