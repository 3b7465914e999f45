package proxy

import (
	"bufio"
	"net"
	"net/http"
)

// respWriter records status and size for the access log and applies the
// security headers when the status is written, so that they cover upstream
// answers and the gateway's own pages alike.
type respWriter struct {
	http.ResponseWriter
	g      *Gateway
	st     *reqState
	status int
	bytes  int64
	wrote  bool
}

// WriteHeader applies the security headers, then writes the status.
// Informational answers other than 101 pass through untouched.
func (w *respWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	w.status = code
	w.applyHeaders()
	w.ResponseWriter.WriteHeader(code)
}

// applyHeaders adds the policy's headers that the response lacks, keeping
// those Superset set itself, and removes the ones the policy forbids.
func (w *respWriter) applyHeaders() {
	h := w.ResponseWriter.Header()
	if _, ok := h["X-Request-Id"]; !ok {
		// httputil.ReverseProxy clears the header map after relaying a
		// 1xx answer (103 Early Hints), taking the id set up front.
		h["X-Request-Id"] = []string{w.st.id}
	}
	for _, d := range w.g.headers.For(w.st.path) {
		if d.Remove {
			delete(h, d.Name)
			continue
		}
		if _, ok := h[d.Name]; !ok {
			h[d.Name] = d.Values()
		}
	}
}

func (w *respWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends buffered data at once; streaming answers depend on it.
func (w *respWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection over for a protocol upgrade (WebSocket).
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.wrote = true
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher  = (*respWriter)(nil)
	_ http.Hijacker = (*respWriter)(nil)
)
