package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/ui"
)

// StatusClientClosedRequest is logged and counted (never sent) when the
// client went away before the answer, as nginx does.
const StatusClientClosedRequest = 499

// The error page (ui.Errors) is ours on purpose: it names no upstream,
// error or version.

// whatToDo tells a person seeing the error page what to do about it.
var whatToDo = map[int]string{
	http.StatusBadRequest:            "Check the address, or go back and try again.",
	http.StatusRequestEntityTooLarge: "Send less data at once, for example a smaller file or query.",
	http.StatusRequestURITooLong:     "Use a shorter address; long filters belong in the request body.",
	http.StatusMethodNotAllowed:      "Use the application's own links and buttons.",
	http.StatusInternalServerError:   "Try again; if it keeps happening, give your administrator the request id below.",
	http.StatusBadGateway:            "Superset may be restarting. Wait a moment and reload; if it lasts, tell your administrator, with the request id below.",
	http.StatusServiceUnavailable:    "Wait a few seconds and reload the page.",
	http.StatusGatewayTimeout:        "Reload the page; a dashboard or query that keeps timing out may need a smaller time range or a simpler query.",
}

var publicMessages = map[int]string{
	http.StatusBadRequest:            "The request was malformed.",
	http.StatusRequestEntityTooLarge: "The request body is too large.",
	http.StatusRequestURITooLong:     "The request path is too long.",
	http.StatusMethodNotAllowed:      "This method is not allowed.",
	http.StatusInternalServerError:   "Something went wrong in the gateway.",
	http.StatusBadGateway:            "The application server could not be reached.",
	http.StatusServiceUnavailable:    "The application is temporarily unavailable. Please retry shortly.",
	http.StatusGatewayTimeout:        "The application server took too long to answer.",
}

// classifyProxyError is the one place that maps a proxying failure to a
// status and a refusal reason.
func classifyProxyError(r *http.Request, err error) (int, policy.Reason) {
	var tooLarge *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.Is(r.Context().Err(), context.Canceled) || errors.Is(err, context.Canceled):
		return StatusClientClosedRequest, policy.ReasonClientGone
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, policy.ReasonBodyTooLarge
	case errors.Is(err, upstream.ErrNodesRefused):
		return http.StatusServiceUnavailable, policy.ReasonUpstreamSecretMismatch
	case errors.Is(err, upstream.ErrNoHealthyUpstream):
		return http.StatusServiceUnavailable, policy.ReasonNoHealthyUpstream
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, policy.ReasonUpstreamTimeout
	default:
		return http.StatusBadGateway, policy.ReasonUpstreamUnreachable
	}
}

// proxyError is the ReverseProxy's ErrorHandler.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	status, reason := classifyProxyError(r, err)
	// The cause goes to the log only; the client gets our page.
	g.log.Warn("upstream request failed", zap.String("request_id", st.id),
		zap.String("reason", string(reason)), zap.Error(err))
	rw, _ := w.(*respWriter)
	if status == StatusClientClosedRequest {
		st.status = status
		st.refusal = string(reason)
		g.obs.ObserveRefusal(string(reason))
		return
	}
	if rw == nil {
		// Wrapped by Options.Middleware beyond recognition: still answer.
		rw = &respWriter{ResponseWriter: w, g: g, st: st}
	}
	if reason == policy.ReasonUpstreamSecretMismatch {
		// A deployment fault only the operator can fix: say which, so the
		// page is not mistaken for a passing outage.
		g.refuseWith(rw, st, status, reason, secretMismatchMessage)
		return
	}
	g.refuse(rw, st, status, reason)
}

// secretMismatchMessage is the operator-facing 503 text when every node was
// refused by the upstream secret check. It names no node and no secret.
const secretMismatchMessage = "The application is unavailable: its servers sign with a different SECRET_KEY than the gateway was given. Operators: see /-/readyz and the gateway's log (upstream secret mismatch)."

// refuse answers the request with our error page and counts the reason.
func (g *Gateway) refuse(w *respWriter, st *reqState, status int, reason policy.Reason) {
	g.refuseWith(w, st, status, reason, publicMessages[status])
}

// refuseWith is refuse with the page's message given: a hygiene refusal
// says what was wrong with the request.
func (g *Gateway) refuseWith(w *respWriter, st *reqState, status int, why policy.Reason, message string) {
	reason := string(why)
	st.refusal = reason
	g.obs.ObserveRefusal(reason)
	if w.wrote {
		return
	}
	h := w.Header()
	for k := range h {
		if k != "X-Request-Id" {
			delete(h, k)
		}
	}
	h["X-Request-Id"] = []string{st.id}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", g.retryAfter)
	}
	if status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge {
		// The rest of the connection cannot be trusted to be framed right.
		h.Set("Connection", "close")
	}
	p := ui.ErrorPage{Status: status, What: message, Do: whatToDo[status], RequestID: st.id}
	if status == http.StatusServiceUnavailable {
		p.RetryAfter = g.retryAfter
	}
	body, err := g.page.Render(p)
	if err != nil {
		// The embedded page cannot fail to render; say the status anyway.
		body = []byte(strconv.Itoa(status) + " " + http.StatusText(status) + "\n")
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
