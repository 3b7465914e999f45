// Package proxy is the gateway's HTTP front: the middleware chain (request
// id, access log, metrics, panic recovery, request hygiene, security
// headers), the gateway's own /-/ routes, the reverse proxy to the upstream
// pool, hot reload and the listeners.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/ui"
)

// Observer receives request measurements. Implementations must be safe for
// concurrent use and must not block.
type Observer interface {
	// InFlight adds delta (+1 or -1) to the requests being served.
	InFlight(delta int)
	// ObserveRequest records one finished request: its route class, the
	// status logged (499 when the client went away) and its duration.
	ObserveRequest(class string, status int, d time.Duration)
	// ObserveRefusal counts a request the gateway answered itself with an
	// error, by reason: "body_too_large", "smuggling", "framing_conflict",
	// "framing_unknown", "underscore_header", "duplicate_header",
	// "bad_path", "path_too_long", "bad_method", "no_healthy_upstream",
	// "upstream_timeout", "upstream_unreachable", "client_gone", "panic".
	ObserveRefusal(reason string)
}

// SupersetObserver is implemented by an Observer that also records
// Superset's performance per proxied request (metrics.Metrics does). It is
// optional so that small test observers need not implement it.
type SupersetObserver interface {
	ObserveSuperset(s SupersetSample)
}

// SupersetSample is one request Superset answered, as the client saw it.
type SupersetSample struct {
	Endpoint string // superset.Endpoint of the method and normalised path
	Node     string // the node that answered
	Caller   string // principal.Principal.Caller, "anonymous" if unknown
	Status   int    // the status written to the client
	TTFB     time.Duration
	Total    time.Duration // until the response was written out
	// ReqBytes is the declared request body size (Content-Length; 0 for a
	// chunked body); RespBytes the response body bytes written.
	ReqBytes, RespBytes int64
	Slow                bool // Total reached Options.SlowThreshold
}

type nopObserver struct{}

func (nopObserver) InFlight(int)                              {}
func (nopObserver) ObserveRequest(string, int, time.Duration) {}
func (nopObserver) ObserveRefusal(string)                     {}

// Options configures a Gateway, in the style of httputil.ReverseProxy:
// fields are hooks and settings, and each says what its zero value means.
type Options struct {
	// Upstream carries requests to Superset; normally an *upstream.Pool.
	// It sees each request with the normalised path, an empty URL scheme
	// and host (the pool fills them in) and the route class in the context
	// (upstream.ClassFrom). Required.
	Upstream http.RoundTripper

	// Logger receives one access-log record per request and the causes of
	// errors; nil means zap.NewNop().
	Logger *zap.Logger
	// Observer receives metrics; nil means none.
	Observer Observer
	// SlowThreshold: a proxied request whose total time reaches it is
	// counted as slow per endpoint class and logged with its request id;
	// zero turns slow-request logging off.
	SlowThreshold time.Duration
	// Now is the clock for request durations; nil means time.Now.
	Now func() time.Time

	// TrustedProxies are the networks whose X-Forwarded-*, Forwarded,
	// X-Real-IP and X-Request-ID the gateway believes. From any other peer
	// these headers are stripped. Empty means trust nobody.
	TrustedProxies []netip.Prefix
	// RefuseUnderscoreHeaders answers 400 to a request with a header
	// whose name contains "_"; false drops such headers instead. Either
	// way none reaches Superset (see CanonicalHeaders).
	RefuseUnderscoreHeaders bool

	// TrustedHeaders are further request headers only a trusted proxy may
	// set, such as the user header of a sign-on proxy that Superset turns
	// into REMOTE_USER. From any other peer they are removed before the
	// request goes upstream, so a client cannot name itself.
	TrustedHeaders []string

	// Classify names the route class of a request (rate-limit and metric
	// label). It sees the normalised path and must be cheap and pure.
	// nil means every proxied request is "other". Requests to /-/ routes are
	// always "gateway".
	Classify func(*http.Request) string

	// Readiness answers /-/readyz: 200 when ready, else 503, with details
	// rendered as JSON. nil means always ready, without details.
	Readiness func(ctx context.Context) (ready bool, details any)
	// Internal serves every /-/ route other than /-/healthz and /-/readyz
	// (token pages, admin API). nil means 404 for them.
	Internal http.Handler

	// Middleware wraps the proxy to Superset, outermost first. It runs after
	// request hygiene and only for requests bound upstream (not /-/ routes),
	// so rate limits and authentication plug in here.
	Middleware []func(http.Handler) http.Handler
	// ModifyResponse, if set, sees every upstream response before it is
	// copied to the client (login, logout and cookie hooks). An error is
	// answered with 502. It must not touch the security headers: those are
	// applied afterwards, when the status is written.
	ModifyResponse func(*http.Response) error

	// Headers decides the security headers of every response, including
	// the gateway's own pages. nil means policy defaults for an http public
	// URL.
	Headers *policy.HeaderPolicy

	// MaxBodyBytes bounds a request body; larger ones get 413. 0 means
	// 64 MiB (dashboard imports and CSV uploads are large); negative means
	// no limit.
	MaxBodyBytes int64
	// MaxPathBytes bounds the decoded request path; longer ones get 414.
	// 0 means 4096.
	MaxPathBytes int
	// RetryAfter is sent with 503 when no upstream is healthy; 0 means 5s.
	RetryAfter time.Duration

	// Tracer opens one span per request (package tracing). nil means no
	// tracing at no cost: a valid incoming traceparent is forwarded to
	// Superset unchanged, a malformed one is replaced by a fresh trace,
	// never forwarded as it came.
	Tracer Tracer
}

// Tracer starts the span of one request. It must be safe for concurrent
// use and must not block.
type Tracer interface {
	// Start opens the request's span as a child of parent (the incoming
	// traceparent; zero when absent or malformed) with the incoming
	// tracestate (valid or ""). The returned context carries the span
	// to the later stages.
	Start(ctx context.Context, parent TraceContext, tracestate, method, requestID string) (context.Context, RequestSpan)
}

// RequestSpan is one request's span as the proxy sees it.
type RequestSpan interface {
	// Upstream is the trace context sent to Superset: this span as the
	// parent, and the tracestate to forward ("" for none).
	Upstream() (TraceContext, string)
	// End closes the span with the route class, the status logged and
	// the refusal reason ("" for none).
	End(class string, status int, refusal string)
}

// Gateway is the gateway's http.Handler. Build it with New; it is immutable
// and safe for concurrent use.
type Gateway struct {
	log     *zap.Logger
	obs     Observer
	now     func() time.Time
	trusted trustSet
	// trustedHdr are Options.TrustedHeaders, canonical.
	trustedHdr []string
	// refuseUnderscore is Options.RefuseUnderscoreHeaders.
	refuseUnderscore bool
	classify         func(*http.Request) string
	slow             time.Duration
	readiness        func(context.Context) (bool, any)
	internal         http.Handler
	headers          *policy.HeaderPolicy
	maxBody          int64
	maxPath          int
	retryAfter       string
	tracer           Tracer
	page             *ui.Errors
	upstream         http.Handler
}

var _ http.Handler = (*Gateway)(nil)

// New validates opts and builds a Gateway.
func New(opts Options) (*Gateway, error) {
	if opts.Upstream == nil {
		return nil, errors.New("proxy: Options.Upstream is required")
	}
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("proxy: invalid trusted proxy prefix %v", p)
		}
	}
	var trustedHdr []string
	for _, name := range opts.TrustedHeaders {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			return nil, fmt.Errorf("proxy: invalid trusted header name %q", name)
		}
		trustedHdr = append(trustedHdr, http.CanonicalHeaderKey(name))
	}
	g := &Gateway{
		trustedHdr:       trustedHdr,
		refuseUnderscore: opts.RefuseUnderscoreHeaders,
		log:              opts.Logger,
		obs:              opts.Observer,
		now:              opts.Now,
		trusted:          trustSet(append([]netip.Prefix(nil), opts.TrustedProxies...)),
		classify:         opts.Classify,
		slow:             opts.SlowThreshold,
		readiness:        opts.Readiness,
		internal:         opts.Internal,
		headers:          opts.Headers,
		maxBody:          opts.MaxBodyBytes,
		maxPath:          opts.MaxPathBytes,
		tracer:           opts.Tracer,
	}
	for i, p := range g.trusted {
		g.trusted[i] = p.Masked()
	}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	if g.obs == nil {
		g.obs = nopObserver{}
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.headers == nil {
		h, err := policy.NewHeaderPolicy(policy.HeaderOptions{})
		if err != nil {
			return nil, fmt.Errorf("proxy: default headers: %w", err)
		}
		g.headers = h
	}
	if g.maxBody == 0 {
		g.maxBody = 64 << 20
	}
	if g.maxPath <= 0 {
		g.maxPath = 4096
	}
	g.retryAfter = policy.RetryAfter(opts.RetryAfter)
	page, err := ui.NewErrors()
	if err != nil {
		return nil, fmt.Errorf("proxy: error page: %w", err)
	}
	g.page = page

	rp := &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      opts.Upstream,
		BufferPool:     newBufferPool(),
		ErrorHandler:   g.proxyError,
		ModifyResponse: opts.ModifyResponse,
		// Errors are logged by proxyError with the request id.
		ErrorLog: zap.NewStdLog(g.log.Named("reverseproxy")),
	}
	var h http.Handler = rp
	for i := len(opts.Middleware) - 1; i >= 0; i-- {
		h = opts.Middleware[i](h)
	}
	g.upstream = h
	return g, nil
}

// reqState is the gateway's per-request record, shared by the layers of the
// chain through the request context.
type reqState struct {
	id       string
	peer     netip.Addr
	trusted  bool // the TCP peer is a trusted proxy
	clientIP netip.Addr
	path     string // normalised path, "" until known
	class    string
	refusal  string
	status   int // overrides the written status in logs (499)
	span     RequestSpan
	// up is filled by the upstream pool and the pipeline (Node, TTFB,
	// Caller) for the Superset performance metrics.
	up upstream.Report

	// Kept here so one allocation serves the whole request.
	w   respWriter
	idv [1]string
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// ClientIP returns the client address the gateway decided on for r: the
// rightmost address that is not a trusted proxy. It is the zero Addr for a
// request that did not pass through a Gateway.
func ClientIP(r *http.Request) netip.Addr {
	if st := stateFrom(r.Context()); st != nil {
		return st.clientIP
	}
	return netip.Addr{}
}

// RequestID returns the request id the gateway assigned to r, or "".
func RequestID(r *http.Request) string {
	if st := stateFrom(r.Context()); st != nil {
		return st.id
	}
	return ""
}

// ServeHTTP runs the chain: request id → access log → observer → panic
// recovery → hygiene → security headers → /-/ routes → upstream.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	st := &reqState{class: "other"}
	st.peer = peerAddr(r.RemoteAddr)
	st.trusted = g.trusted.contains(st.peer)
	if st.trusted {
		st.clientIP = g.trusted.clientAddr(st.peer, r.Header["X-Forwarded-For"])
		if id := r.Header.Get("X-Request-Id"); ValidRequestID(id) {
			st.id = id
		}
	} else {
		st.clientIP = st.peer
	}
	if st.id == "" {
		st.id = newRequestID()
	}
	rw := &st.w
	rw.ResponseWriter, rw.g, rw.st = w, g, st
	st.idv[0] = st.id
	w.Header()["X-Request-Id"] = st.idv[:]
	if g.tracer != nil {
		parent, _ := incomingTrace(r.Header)
		ctx, span := g.tracer.Start(r.Context(), parent, incomingTracestate(r.Header), r.Method, st.id)
		st.span = span
		r = r.WithContext(ctx)
	}

	g.obs.InFlight(1)
	defer g.finish(rw, r, st, start)
	g.serve(rw, r, w, st)
}

// finish writes the access-log record and the request metrics. It runs even
// when the handler aborts with http.ErrAbortHandler.
func (g *Gateway) finish(rw *respWriter, r *http.Request, st *reqState, start time.Time) {
	d := g.now().Sub(start)
	status := rw.status
	if st.status != 0 {
		status = st.status
	}
	if status == 0 {
		status = http.StatusOK
	}
	g.obs.InFlight(-1)
	g.obs.ObserveRequest(st.class, status, d)
	if st.span != nil {
		st.span.End(st.class, status, st.refusal)
	}
	path := st.path
	if path == "" {
		path = logSafe(r.URL.Path)
	}
	if st.up.Node != "" {
		g.observeSuperset(r, rw, st, status, d, path)
	}
	// Allow-listed fields only: never the query string (it may hold a
	// guest token), cookies or Authorization.
	fields := []zap.Field{
		zap.String("request_id", st.id),
		zap.String("method", logSafe(r.Method)),
		zap.String("path", path),
		zap.Int("status", status),
		zap.Int64("bytes", rw.bytes),
		zap.Duration("duration", d),
		zap.String("client_ip", st.clientIP.String()),
		zap.String("class", st.class),
	}
	if st.refusal != "" {
		fields = append(fields, zap.String("refusal", st.refusal))
	}
	g.log.Info("request", fields...)
}

// logSafe truncates text from the request line for the log.
func logSafe(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

func (g *Gateway) serve(rw *respWriter, r *http.Request, raw http.ResponseWriter, st *reqState) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			// The reverse proxy aborts a response it can no longer
			// complete; net/http closes the connection quietly.
			if st.status == 0 && !rw.wrote {
				st.status = StatusClientClosedRequest
			}
			if st.refusal == "" {
				st.refusal = string(policy.ReasonResponseAborted)
			}
			panic(v)
		}
		g.log.Error("panic serving request", zap.String("request_id", st.id),
			zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		if rw.wrote {
			// Too late for an error page: cut the response short.
			st.refusal = string(policy.ReasonPanic)
			g.obs.ObserveRefusal(string(policy.ReasonPanic))
			panic(http.ErrAbortHandler)
		}
		g.refuse(rw, st, http.StatusInternalServerError, policy.ReasonPanic)
	}()

	// Go's server drops Content-Length when Transfer-Encoding is present
	// on the wire, merges equal Content-Lengths and reframes the body, so
	// the handler cannot see these: the listener (framing.go) followed
	// the connection's bytes and says whether this request was framed
	// unambiguously.
	if why := admitFraming(r); why != "" {
		g.refuseWith(rw, st, http.StatusBadRequest, why, refusalMessage(why, ""))
		return
	}
	if r.Method == http.MethodConnect || r.Method == http.MethodTrace {
		// Not ours to tunnel, and TRACE would echo credentials back
		// (cross-site tracing).
		g.refuse(rw, st, http.StatusMethodNotAllowed, policy.ReasonBadMethod)
		return
	}
	// The same ambiguity wherever it is still visible: an in-process
	// caller or a future protocol layer.
	if len(r.TransferEncoding) > 0 && len(r.Header["Content-Length"]) > 0 ||
		len(r.Header["Transfer-Encoding"]) > 0 && len(r.Header["Content-Length"]) > 0 {
		g.refuseWith(rw, st, http.StatusBadRequest, reasonSmuggling, refusalMessage(reasonSmuggling, ""))
		return
	}
	if why, name := CanonicalHeaders(r.Header, g.refuseUnderscore); why != "" {
		g.refuseWith(rw, st, http.StatusBadRequest, why, refusalMessage(why, name))
		return
	}
	if g.maxBody > 0 {
		if r.ContentLength > g.maxBody {
			g.refuse(rw, st, http.StatusRequestEntityTooLarge, policy.ReasonBodyTooLarge)
			return
		}
		if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			// A body of declared length is already bounded by it.
			r.Body = http.MaxBytesReader(raw, r.Body, g.maxBody)
		}
	}
	clean, err := CleanPath(r.URL.Path, g.maxPath)
	if err != nil {
		if errors.Is(err, ErrPathTooLong) {
			g.refuse(rw, st, http.StatusRequestURITooLong, policy.ReasonPathTooLong)
		} else {
			g.refuse(rw, st, http.StatusBadRequest, policy.ReasonBadPath)
		}
		return
	}
	st.path = clean

	if strings.HasPrefix(clean, "/-/") {
		st.class = "gateway"
		r2 := r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		if clean != r.URL.Path || r.URL.RawPath != "" {
			u := *r.URL
			u.Path, u.RawPath = clean, ""
			r2.URL = &u
		}
		g.serveGateway(rw, r2, st)
		return
	}
	if g.classify != nil {
		st.class = g.classify(withPath(r, clean))
	}
	ctx := upstream.WithClass(context.WithValue(r.Context(), stateKey{}, st), st.class)
	ctx = upstream.WithReport(ctx, &st.up)
	r2 := r.WithContext(ctx)
	if clean != r.URL.Path || r.URL.RawPath != "" {
		// Upstream sees exactly the path decided on: with RawPath empty,
		// URL.EscapedPath re-encodes Path canonically.
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		r2.URL = &u
	}
	g.upstream.ServeHTTP(rw, r2)
}

// withPath returns r with its path replaced, without copying when unchanged.
func withPath(r *http.Request, p string) *http.Request {
	if r.URL.Path == p && r.URL.RawPath == "" {
		return r
	}
	r2 := *r
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r2.URL = &u
	return &r2
}

func (g *Gateway) serveGateway(w http.ResponseWriter, r *http.Request, st *reqState) {
	switch st.path {
	case "/-/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok"))
	case "/-/readyz":
		ready, details := true, any(nil)
		if g.readiness != nil {
			ready, details = g.readiness(r.Context())
		}
		body, err := json.Marshal(struct {
			Ready   bool `json:"ready"`
			Details any  `json:"details,omitempty"`
		}{ready, details})
		if err != nil {
			g.log.Error("readiness details not encodable", zap.String("request_id", st.id), zap.Error(err))
			ready, body = false, []byte(`{"ready":false}`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if ready {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(append(body, '\n'))
	default:
		if g.internal == nil {
			http.NotFound(w, r)
			return
		}
		g.internal.ServeHTTP(w, r)
	}
}

// rewrite builds the upstream request. httputil.ReverseProxy has already
// removed hop-by-hop headers and X-Forwarded-For/-Host/-Proto and
// Forwarded from out; what is set here survives.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	st := stateFrom(in.Context())
	h := out.Header
	for name := range h {
		if forwardedHeader(name) {
			delete(h, name)
		}
	}
	proto, host := scheme(in), in.Host
	xff := st.peer.String()
	if st.trusted {
		for name, v := range in.Header {
			if forwardedHeader(name) && name != "X-Forwarded-For" {
				h[name] = v
			}
		}
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + xff
		}
		if p := in.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			proto = p
		}
		if fh := in.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
	}
	if !st.trusted {
		for _, name := range g.trustedHdr {
			delete(h, name)
		}
	}
	h["X-Forwarded-For"] = []string{xff}
	h["X-Forwarded-Proto"] = []string{proto}
	if host != "" {
		h["X-Forwarded-Host"] = []string{host}
	}
	h["X-Request-Id"] = []string{st.id}
	g.traceUpstream(in.Header, h, st)
}

// traceUpstream sets the W3C trace context Superset receives: the
// gateway's own span when it traces; otherwise the caller's, re-checked,
// so that a malformed traceparent is replaced by a fresh trace and a
// tracestate travels only with a valid traceparent.
func (g *Gateway) traceUpstream(in, h http.Header, st *reqState) {
	if st.span != nil {
		tc, ts := st.span.Upstream()
		h["Traceparent"] = []string{tc.String()}
		if ts != "" {
			h["Tracestate"] = []string{ts}
		} else {
			delete(h, "Tracestate")
		}
		return
	}
	if _, sent := in["Traceparent"]; !sent {
		delete(h, "Tracestate")
		return
	}
	tc, ok := incomingTrace(in)
	if !ok {
		h["Traceparent"] = []string{newTraceContext().String()}
		delete(h, "Tracestate")
		return
	}
	h["Traceparent"] = []string{tc.String()}
	if ts := incomingTracestate(in); ts != "" {
		h["Tracestate"] = []string{ts}
	} else {
		delete(h, "Tracestate")
	}
}

// incomingTrace reads the request's one traceparent; several are
// malformed.
func incomingTrace(h http.Header) (TraceContext, bool) {
	v := h["Traceparent"]
	if len(v) != 1 {
		return TraceContext{}, false
	}
	return ParseTraceparent(v[0])
}

// incomingTracestate joins the request's tracestate lines (one list by
// the recommendation) and returns it when valid, else "".
func incomingTracestate(h http.Header) string {
	v := h["Tracestate"]
	if len(v) == 0 {
		return ""
	}
	ts := strings.Join(v, ",")
	if !ValidTracestate(ts) {
		return ""
	}
	return ts
}

// bufferPool reuses the 32 KiB copy buffers of the reverse proxy, which
// otherwise allocates one per request.
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

// observeSuperset records the performance of a request Superset answered
// and logs it when it was slow.
func (g *Gateway) observeSuperset(r *http.Request, rw *respWriter, st *reqState, status int, d time.Duration, path string) {
	so, ok := g.obs.(SupersetObserver)
	slow := g.slow > 0 && d >= g.slow
	if !ok && !slow {
		return
	}
	s := SupersetSample{
		Endpoint:  superset.Endpoint(r.Method, st.path),
		Node:      st.up.Node,
		Caller:    st.up.Caller,
		Status:    status,
		TTFB:      st.up.TTFB,
		Total:     d,
		ReqBytes:  max(r.ContentLength, 0),
		RespBytes: rw.bytes,
		Slow:      slow,
	}
	if s.Caller == "" {
		s.Caller = "anonymous"
	}
	if ok {
		so.ObserveSuperset(s)
	}
	if slow {
		g.log.Warn("slow superset request",
			zap.String("request_id", st.id),
			zap.String("endpoint", s.Endpoint),
			zap.String("node", s.Node),
			zap.String("caller", s.Caller),
			zap.String("path", path),
			zap.Int("status", status),
			zap.Duration("ttfb", s.TTFB),
			zap.Duration("duration", d))
	}
}
