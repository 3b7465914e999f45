package upstream

import (
	"context"
	"time"
)

// Report describes the answered round trip of one proxied request, for the
// performance metrics of the layer that owns the client's response: the pool
// knows the node and the time to first byte, the gateway's pipeline knows the
// caller, and only the outermost layer knows the total time and sizes.
// Whoever puts a Report in the context owns it; the pool only fills it.
type Report struct {
	// Node is the name of the node that answered; "" when none did.
	Node string
	// TTFB is the time from sending the request to the response headers.
	TTFB time.Duration
	// Caller is the caller class (browser_session, api_jwt, access_token, fab_api_key,
	// guest, anonymous), set by the authenticating layer; "" if unknown.
	Caller string
}

type reportKey struct{}

// WithReport returns a context under which the pool fills rep.
func WithReport(ctx context.Context, rep *Report) context.Context {
	return context.WithValue(ctx, reportKey{}, rep)
}

// ReportFrom returns the Report stored by WithReport, or nil.
func ReportFrom(ctx context.Context) *Report {
	rep, _ := ctx.Value(reportKey{}).(*Report)
	return rep
}
