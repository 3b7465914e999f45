// Package upstream balances requests over several Superset nodes: one pooled
// transport per node, active health checks, passive ejection of failing
// nodes and a retry on another node for idempotent requests that could not
// connect. A Pool is an http.RoundTripper, so it slots under
// httputil.ReverseProxy as its Transport.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrNoHealthyUpstream is returned by Pool.RoundTrip when no node is
// available. The proxy answers it with 503 and Retry-After.
var ErrNoHealthyUpstream = errors.New("upstream: no healthy upstream")

// Observer receives upstream measurements. Implementations must be safe for
// concurrent use and must not block.
type Observer interface {
	// ObserveUpstream records one attempt against node for a request of the
	// given route class; status is 0 when the attempt failed in transport,
	// and d runs until the response headers arrived (or the failure).
	ObserveUpstream(node, class string, status int, d time.Duration)
	// SetNodeHealthy records that node became available or unavailable
	// (failed health checks or passive ejection).
	SetNodeHealthy(node string, healthy bool)
}

type nopObserver struct{}

func (nopObserver) ObserveUpstream(string, string, int, time.Duration) {}
func (nopObserver) SetNodeHealthy(string, bool)                        {}

type classKey struct{}

// WithClass returns a context carrying the route class of a request, used as
// the class label of upstream observations.
func WithClass(ctx context.Context, class string) context.Context {
	return context.WithValue(ctx, classKey{}, class)
}

// ClassFrom returns the route class stored by WithClass, or "other".
func ClassFrom(ctx context.Context) string {
	if c, ok := ctx.Value(classKey{}).(string); ok {
		return c
	}
	return "other"
}

// Options configures a Pool. Zero values select the documented defaults.
type Options struct {
	// Nodes are the base URLs of the Superset nodes ("http://10.0.0.5:8088").
	// At least one is required; a base URL must not carry a path, query or
	// user info.
	Nodes []string
	// Selector picks a node among the available ones; nil means RoundRobin.
	Selector Selector
	// TLSClientConfig is used for https nodes; nil means Go's defaults
	// (verified certificates, system roots).
	TLSClientConfig *tls.Config

	// DialTimeout bounds TCP connection setup; 0 means 5s.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake with a node; 0 means 5s.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a node's response headers
	// once the request is written; the proxy answers 504 when it expires.
	// Streaming bodies after the headers are not bounded. 0 means 120s,
	// Superset's own worker timeout for slow chart queries.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes pooled connections idle this long; 0 means 90s.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the number of kept-alive connections per node;
	// 0 means 512, enough for 128+ concurrent clients without churn.
	MaxIdleConnsPerHost int
	// DisableDirect sends every request through the node's http.Transport.
	// By default, GET, HEAD and OPTIONS requests without a body or an
	// upgrade to a plain-http node are written and read on the request's
	// own goroutine over a pool of kept-alive connections (see direct.go),
	// which costs markedly less CPU per request.
	DisableDirect bool

	// HealthPath is requested with GET on every node; 2xx is healthy.
	// "" means "/health" (Superset answers 200 "OK").
	HealthPath string
	// HealthInterval is the period of active checks; 0 means 5s.
	HealthInterval time.Duration
	// HealthTimeout bounds one check; 0 means 2s.
	HealthTimeout time.Duration
	// UnhealthyAfter consecutive failed checks mark a node unhealthy; one
	// passing check marks it healthy again. 0 means 2.
	UnhealthyAfter int

	// EjectAfter consecutive transport failures of live traffic (connect
	// refused, reset, header timeout) eject a node; 0 means 3.
	EjectAfter int
	// EjectCooldown is how long an ejected node stays out unless a health
	// check passes earlier; 0 means 10s.
	EjectCooldown time.Duration

	// Vetter judges each node by its answers (the upstream secret check);
	// nil means every node is trusted.
	Vetter Vetter

	// Observer receives measurements; nil means none.
	Observer Observer
	// Logger receives node state changes; nil means zap.NewNop().
	Logger *zap.Logger
	// Now is the clock used for ejection cooldowns and durations; nil means
	// time.Now.
	Now func() time.Time
}

// Node is one Superset node of a Pool. Its methods are safe for concurrent
// use.
type Node struct {
	name   string
	scheme string
	host   string
	rt     *http.Transport
	direct *directPool // nil: every request goes through rt
	vet    NodeVet     // nil: trusted
	// vetPath is the Vetter's ProbePath ("" : no probing); vetProbes
	// counts the probes made, at most maxVetProbes.
	vetPath   string
	vetProbes atomic.Int32

	inflight     atomic.Int64
	healthy      atomic.Bool // verdict of active checks
	activeFails  atomic.Int32
	passiveFails atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 when not ejected
	reported     atomic.Bool  // availability last sent to the observer
}

// URL returns the node's base URL as configured.
func (n *Node) URL() string { return n.name }

// InFlight returns the number of requests currently sent to the node whose
// response body is not yet closed.
func (n *Node) InFlight() int64 { return n.inflight.Load() }

// NodeStatus is a snapshot of one node for readiness reports.
type NodeStatus struct {
	URL       string `json:"url"`
	Healthy   bool   `json:"healthy"`   // active checks pass
	Ejected   bool   `json:"ejected"`   // passively ejected, cooling down
	Available bool   `json:"available"` // receives traffic
	Refused   bool   `json:"refused"`   // refused by the Vetter
	InFlight  int64  `json:"in_flight"`
}

// Pool balances requests over nodes. Create it with New; it is safe for
// concurrent use.
type Pool struct {
	nodes          []*Node
	sel            Selector
	obs            Observer
	log            *zap.Logger
	now            func() time.Time
	healthPath     string
	healthInterval time.Duration
	healthTimeout  time.Duration
	unhealthyAfter int32
	ejectAfter     int32
	ejectCooldown  time.Duration
}

var _ http.RoundTripper = (*Pool)(nil)

func orDur(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// orInt32 is orInt for thresholds kept in atomic int32s; larger values
// saturate, which reads as "never".
func orInt32(v, def int) int32 {
	return int32(min(orInt(v, def), math.MaxInt32))
}

// New validates opts and builds a Pool. Nodes start out healthy; call Start
// to run active health checks.
func New(opts Options) (*Pool, error) {
	if len(opts.Nodes) == 0 {
		return nil, errors.New("upstream: no nodes configured")
	}
	p := &Pool{
		sel:            opts.Selector,
		obs:            opts.Observer,
		log:            opts.Logger,
		now:            opts.Now,
		healthPath:     opts.HealthPath,
		healthInterval: orDur(opts.HealthInterval, 5*time.Second),
		healthTimeout:  orDur(opts.HealthTimeout, 2*time.Second),
		unhealthyAfter: orInt32(opts.UnhealthyAfter, 2),
		ejectAfter:     orInt32(opts.EjectAfter, 3),
		ejectCooldown:  orDur(opts.EjectCooldown, 10*time.Second),
	}
	if p.sel == nil {
		p.sel = &RoundRobin{}
	}
	if p.obs == nil {
		p.obs = nopObserver{}
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.healthPath == "" {
		p.healthPath = "/health"
	}
	if !strings.HasPrefix(p.healthPath, "/") {
		return nil, fmt.Errorf("upstream: health path %q must start with /", p.healthPath)
	}
	seen := make(map[string]bool, len(opts.Nodes))
	for _, raw := range opts.Nodes {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream: node %q: %w", raw, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("upstream: node %q: scheme must be http or https", raw)
		}
		if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("upstream: node %q: want scheme://host[:port] only", raw)
		}
		name := u.Scheme + "://" + u.Host
		if seen[name] {
			return nil, fmt.Errorf("upstream: node %q listed twice", raw)
		}
		seen[name] = true
		n := &Node{name: name, scheme: u.Scheme, host: u.Host, rt: newTransport(opts)}
		if u.Scheme == "http" && !opts.DisableDirect {
			n.direct = newDirectPool(opts, u)
		}
		if opts.Vetter != nil {
			n.vet, n.vetPath = opts.Vetter.Vet(name), opts.Vetter.ProbePath()
		}
		n.healthy.Store(true)
		n.reported.Store(true)
		p.nodes = append(p.nodes, n)
	}
	for _, n := range p.nodes {
		p.obs.SetNodeHealthy(n.name, true)
	}
	return p, nil
}

func newDialer(o Options) *net.Dialer {
	return &net.Dialer{Timeout: orDur(o.DialTimeout, 5*time.Second), KeepAlive: 30 * time.Second}
}

// newDirectPool builds the direct path of a plain-http node. Its deadlines
// and idle ages are wall-clock (time.Now), not Options.Now: they are the
// network's.
func newDirectPool(o Options, u *url.URL) *directPool {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return &directPool{
		addr:          net.JoinHostPort(u.Hostname(), port),
		dial:          newDialer(o).DialContext,
		maxIdle:       orInt(o.MaxIdleConnsPerHost, 512),
		idleTimeout:   orDur(o.IdleConnTimeout, 90*time.Second),
		headerTimeout: orDur(o.ResponseHeaderTimeout, 120*time.Second),
	}
}

func newTransport(o Options) *http.Transport {
	d := newDialer(o)
	return &http.Transport{
		// Never consult HTTP_PROXY: the nodes are private addresses.
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSClientConfig:       o.TLSClientConfig.Clone(),
		TLSHandshakeTimeout:   orDur(o.TLSHandshakeTimeout, 5*time.Second),
		ResponseHeaderTimeout: orDur(o.ResponseHeaderTimeout, 120*time.Second),
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       orDur(o.IdleConnTimeout, 90*time.Second),
		MaxIdleConnsPerHost:   orInt(o.MaxIdleConnsPerHost, 512),
		// The client's Accept-Encoding is forwarded as is; transparent
		// decompression would only burn CPU and drop Content-Length.
		DisableCompression: true,
		// HTTP/1.1 only, so that WebSocket upgrades work on every node.
		ForceAttemptHTTP2: false,
	}
}

// Nodes returns a snapshot of every node, in configuration order.
func (p *Pool) Nodes() []NodeStatus {
	now := p.now()
	out := make([]NodeStatus, len(p.nodes))
	for i, n := range p.nodes {
		avail := p.usable(n, now)
		out[i] = NodeStatus{
			URL:       n.name,
			Healthy:   n.healthy.Load(),
			Ejected:   n.ejectedUntil.Load() != 0,
			Available: avail,
			Refused:   n.refused(),
			InFlight:  n.inflight.Load(),
		}
	}
	return out
}

// Healthy returns the number of nodes currently receiving traffic.
func (p *Pool) Healthy() int {
	now := p.now()
	c := 0
	for _, n := range p.nodes {
		if p.usable(n, now) {
			c++
		}
	}
	return c
}

// CloseIdleConnections closes the idle pooled connections of every node.
func (p *Pool) CloseIdleConnections() {
	for _, n := range p.nodes {
		n.rt.CloseIdleConnections()
		if n.direct != nil {
			n.direct.closeIdle()
		}
	}
}

// roundTrip sends r to the node: directly when it qualifies, else through
// its http.Transport.
func (n *Node) roundTrip(r *http.Request) (*http.Response, error) {
	if n.direct != nil && direct(r) {
		return n.direct.roundTrip(r)
	}
	return n.rt.RoundTrip(r)
}

// refused reports that the Vetter keeps n out.
func (n *Node) refused() bool { return n.vet != nil && n.vet.Refused() }

// usable reports whether n may receive traffic, re-admitting it when its
// ejection cooldown has passed.
func (p *Pool) usable(n *Node, now time.Time) bool {
	if n.refused() {
		return false
	}
	if until := n.ejectedUntil.Load(); until != 0 {
		if now.UnixNano() < until {
			return false
		}
		if n.ejectedUntil.CompareAndSwap(until, 0) {
			n.passiveFails.Store(0)
			p.report(n)
		}
	}
	return n.healthy.Load()
}

// report tells the observer and the log about an availability change, once.
func (p *Pool) report(n *Node) {
	avail := n.healthy.Load() && n.ejectedUntil.Load() == 0 && !n.refused()
	if n.reported.CompareAndSwap(!avail, avail) {
		p.obs.SetNodeHealthy(n.name, avail)
		if avail {
			p.log.Info("upstream node available", zap.String("node", n.name))
		} else {
			p.log.Warn("upstream node unavailable", zap.String("node", n.name),
				zap.Bool("healthy", n.healthy.Load()), zap.Bool("ejected", n.ejectedUntil.Load() != 0), zap.Bool("refused", n.refused()))
		}
	}
}

// pick selects an available node not in exclude, or nil.
func (p *Pool) pick(exclude []*Node) *Node {
	now := p.now()
	all := true
	for _, n := range p.nodes {
		if !p.usable(n, now) || contains(exclude, n) {
			all = false
		}
	}
	if all {
		// The common case allocates nothing.
		return p.sel.Select(p.nodes)
	}
	avail := make([]*Node, 0, len(p.nodes))
	for _, n := range p.nodes {
		if p.usable(n, now) && !contains(exclude, n) {
			avail = append(avail, n)
		}
	}
	if len(avail) == 0 {
		return nil
	}
	return p.sel.Select(avail)
}

// anyRefused reports whether the Vetter keeps at least one node out.
func (p *Pool) anyRefused() bool {
	for _, n := range p.nodes {
		if n.refused() {
			return true
		}
	}
	return false
}

func contains(ns []*Node, n *Node) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}

// passiveFailure counts a transport failure of live traffic and ejects the
// node when the count reaches the threshold.
func (p *Pool) passiveFailure(n *Node) {
	if n.passiveFails.Add(1) < p.ejectAfter {
		return
	}
	now := p.now()
	until := now.Add(p.ejectCooldown).UnixNano()
	if n.ejectedUntil.CompareAndSwap(0, until) {
		p.report(n)
	}
}

// Retryable reports whether a request may be sent to a second node after
// failing to connect to the first: safe methods, or any method carrying an
// Idempotency-Key header.
func Retryable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// isConnectFailure reports whether err happened while connecting, so the
// node never saw the request.
func isConnectFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// RoundTrip sends req to an available node, rewriting its scheme and host.
// A request that could not connect is retried once on each other available
// node when Retryable says so and its body was not consumed; every other
// failure is returned wrapped, with the node named. With no available node
// it returns ErrNoHealthyUpstream. req itself is not modified.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	class := ClassFrom(ctx)
	retry := Retryable(req)
	var body *replayBody
	if retry && req.Body != nil && req.Body != http.NoBody {
		// Shield the body from the transport's Close so that a second
		// attempt can still send it when the first never connected.
		body = &replayBody{rc: req.Body}
	}
	var tried []*Node
	var lastErr error
	for {
		n := p.pick(tried)
		if n == nil {
			if body != nil {
				body.settle()
			} else if req.Body != nil {
				req.Body.Close()
			}
			if lastErr != nil {
				return nil, lastErr
			}
			if p.anyRefused() {
				return nil, ErrNodesRefused
			}
			return nil, ErrNoHealthyUpstream
		}
		out := new(http.Request)
		*out = *req
		u := *req.URL
		u.Scheme, u.Host = n.scheme, n.host
		out.URL = &u
		if body != nil {
			body.rearm()
			out.Body = body
		}
		n.inflight.Add(1)
		start := p.now()
		resp, err := n.roundTrip(out)
		d := p.now().Sub(start)
		if err == nil {
			if body != nil {
				body.settle()
			}
			n.passiveFails.Store(0)
			p.obs.ObserveUpstream(n.name, class, resp.StatusCode, d)
			if rep := ReportFrom(ctx); rep != nil {
				rep.Node, rep.TTFB = n.name, d
			}
			resp.Body = &countedBody{ReadCloser: resp.Body, n: n}
			if n.vet == nil {
				return resp, nil
			}
			verr := n.vet.Inspect(resp)
			if verr == nil {
				return resp, nil
			}
			// The node was just found out: its answer is not used. A
			// request that may be repeated goes to another node.
			resp.Body.Close()
			p.report(n)
			lastErr = fmt.Errorf("upstream %s: %w: %w", n.name, ErrNodesRefused, verr)
			if !retry || (body != nil && body.touched.Load()) {
				return nil, lastErr
			}
			tried = append(tried, n)
			continue
		}
		n.inflight.Add(-1)
		p.obs.ObserveUpstream(n.name, class, 0, d)
		if ctx.Err() != nil {
			// The client went away; the node is not to blame.
			return nil, fmt.Errorf("upstream %s: %w", n.name, err)
		}
		p.passiveFailure(n)
		lastErr = fmt.Errorf("upstream %s: %w", n.name, err)
		if !retry || !isConnectFailure(err) || (body != nil && body.touched.Load()) {
			if body != nil {
				body.settle()
			}
			return nil, lastErr
		}
		p.log.Debug("retrying on another node", zap.String("node", n.name), zap.Error(err))
		tried = append(tried, n)
	}
}

// replayBody passes reads through and records whether any happened. It
// holds back the transport's Close until the pool has settled on its last
// attempt, so the body survives a failed connection attempt and is still
// closed exactly once, by whoever finishes last.
type replayBody struct {
	rc      io.ReadCloser
	touched atomic.Bool

	mu       sync.Mutex
	closeReq bool // the current attempt's transport is done with the body
	settled  bool // no further attempt will be made
	closed   bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	return b.rc.Read(p)
}

func (b *replayBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closeReq = true
	if b.settled && !b.closed {
		b.closed = true
		return b.rc.Close()
	}
	return nil
}

// rearm starts a new attempt.
func (b *replayBody) rearm() {
	b.mu.Lock()
	b.closeReq = false
	b.mu.Unlock()
}

// settle marks the current attempt as the last one: its transport's Close
// now reaches the real body, at once if it already happened.
func (b *replayBody) settle() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settled = true
	if b.closeReq && !b.closed {
		b.closed = true
		_ = b.rc.Close()
	}
}

// countedBody keeps the request counted in flight until the response body is
// closed, so that least-conn sees long streaming answers.
type countedBody struct {
	io.ReadCloser
	n    *Node
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() { b.n.inflight.Add(-1) })
	return b.ReadCloser.Close()
}

// Write forwards to the underlying body when it is writable, which is the
// case for 101 Switching Protocols answers: httputil.ReverseProxy needs the
// body of an upgraded connection to be an io.ReadWriteCloser.
func (b *countedBody) Write(p []byte) (int, error) {
	if w, ok := b.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("upstream: response body is not writable")
}
