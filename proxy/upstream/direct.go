package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// directPool is a keep-alive HTTP/1.1 client for one plain-http node, used
// for the requests that make up nearly all of the gateway's traffic: GET,
// HEAD and OPTIONS without a body or a protocol upgrade (see direct). It
// writes the request and reads the response on the calling goroutine,
// where http.Transport hands every request to a writer goroutine and every
// response over from a reader goroutine of the connection; on loopback
// that hand-off costs about as much CPU as the proxying itself.
//
// Parsing and writing are net/http's own (http.Request.Write,
// http.ReadResponse), as in http.Transport. What it does not do, callers
// must not need: TLS, HTTP/2, proxies, request bodies, upgrades,
// compression. Everything else goes to the node's http.Transport.
type directPool struct {
	addr          string // host:port
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration

	mu      sync.Mutex
	idle    []*directConn // by idleAt, most recently used last
	sweeper *time.Timer   // closes expired idle connections; nil when none are idle
}

// maxDirectHeaderBytes bounds an upstream response's header, as
// http.Transport's default MaxResponseHeaderBytes does.
const maxDirectHeaderBytes = 10 << 20

// max1xx bounds the informational answers relayed before the final one, as
// http.Transport does.
const max1xx = 5

// unlimited is the read limit once a response's header is in.
const unlimited = math.MaxInt64

// errHeaderTooLarge is returned when an upstream response header exceeds
// maxDirectHeaderBytes.
var errHeaderTooLarge = errors.New("upstream: response header too large")

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked
// reads and writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// direct reports whether req may take the direct path: a method that is
// safe to send again on a fresh connection when a kept-alive one turns out
// to be closed by the node, no body, no upgrade, no trailers.
func direct(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	if req.Body != nil && req.Body != http.NoBody || req.ContentLength != 0 ||
		len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 || req.Close {
		return false
	}
	// httputil.ReverseProxy has removed hop-by-hop headers; these two are
	// back only for an upgrade (WebSocket).
	if _, ok := req.Header["Upgrade"]; ok {
		return false
	}
	if _, ok := req.Header["Connection"]; ok {
		return false
	}
	for name := range req.Header {
		if !validHeaderName(name) {
			// http.Transport refuses these; let it.
			return false
		}
	}
	return true
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '!', c == '#', c == '$', c == '%', c == '&',
			c == '\'', c == '*', c == '+', c == '^', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return true
}

// directConn is one kept-alive connection. Its reader and writer are used
// by one request at a time: the pool hands it out exclusively.
type directConn struct {
	c      net.Conn
	probe  idleProbe
	lr     limitedReader
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// limitedReader reads from the connection and fails with
// errHeaderTooLarge once more than n bytes were asked for; read counts the
// bytes of the current exchange.
type limitedReader struct {
	c    net.Conn
	n    int64
	read int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.c.Read(p)
	if l.n != unlimited {
		l.n -= int64(k)
	}
	l.read += int64(k)
	return k, err
}

func (p *directPool) newConn(c net.Conn) *directConn {
	dc := &directConn{c: c, probe: newIdleProbe(c)}
	dc.lr.c = c
	dc.br = bufio.NewReaderSize(&dc.lr, 32<<10)
	dc.bw = bufio.NewWriterSize(c, 4<<10)
	return dc
}

// get returns an idle connection or dials a new one; reused says which.
func (p *directPool) get(ctx context.Context) (dc *directConn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		dc = p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(dc.idleAt) >= p.idleTimeout {
			dc.c.Close()
			continue
		}
		p.mu.Unlock()
		if dc.probe.usable() {
			return dc, true, nil
		}
		dc.c.Close()
		p.mu.Lock()
	}
	p.mu.Unlock()
	c, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, err
	}
	return p.newConn(c), false, nil
}

// put keeps dc for the next request, or closes it when the pool is full.
func (p *directPool) put(dc *directConn) {
	dc.idleAt = time.Now()
	p.mu.Lock()
	if len(p.idle) >= p.maxIdle {
		p.mu.Unlock()
		dc.c.Close()
		return
	}
	p.idle = append(p.idle, dc)
	if p.sweeper == nil {
		p.sweeper = time.AfterFunc(p.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// sweep closes the connections idle for idleTimeout and runs again when
// the next one is due, so that idle connections never outlive it, even in
// a pool that no longer serves requests (replaced by a reload).
func (p *directPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleAt) >= p.idleTimeout {
		i++
	}
	expired := make([]*directConn, i)
	copy(expired, p.idle[:i])
	n := copy(p.idle, p.idle[i:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	if n > 0 {
		p.sweeper.Reset(p.idleTimeout - now.Sub(p.idle[0].idleAt))
	} else {
		p.sweeper = nil
	}
	p.mu.Unlock()
	for _, dc := range expired {
		dc.c.Close()
	}
}

// closeIdle closes every idle connection.
func (p *directPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, dc := range idle {
		dc.c.Close()
	}
}

// roundTrip sends req, which must satisfy direct. A kept-alive connection
// that the node closed before answering (no byte of a response came back,
// no timeout) is replaced by a fresh one once: the methods direct admits
// are safe to repeat, and http.Transport does the same for them.
func (p *directPool) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		dc, reused, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := p.exchange(ctx, dc, req)
		if err == nil {
			return resp, nil
		}
		dc.c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		var ne net.Error
		if reused && attempt == 0 && dc.lr.read == 0 && !(errors.As(err, &ne) && ne.Timeout()) {
			// Closed by the node while idle, before any answer: not a
			// slow node (a timeout), which is not asked twice.
			continue
		}
		return nil, err
	}
}

// exchange writes req on dc and reads the response header. On success the
// response body owns dc: it goes back to the pool when the body has been
// read to its end, and is closed otherwise.
func (p *directPool) exchange(ctx context.Context, dc *directConn, req *http.Request) (*http.Response, error) {
	// Cancellation (the client went away, a deadline) interrupts whatever
	// the connection is blocked in.
	stop := context.AfterFunc(ctx, func() { _ = dc.c.SetDeadline(aLongTimeAgo) })
	dc.lr.n, dc.lr.read = maxDirectHeaderBytes, 0
	if p.headerTimeout > 0 {
		_ = dc.c.SetReadDeadline(time.Now().Add(p.headerTimeout))
	}
	if err := req.Write(dc.bw); err != nil {
		stop()
		return nil, err
	}
	if err := dc.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		var err error
		resp, err = http.ReadResponse(dc.br, req)
		if err != nil {
			stop()
			return nil, err
		}
		code := resp.StatusCode
		if code >= 200 || code < 100 {
			break
		}
		if code == http.StatusSwitchingProtocols || n1xx >= max1xx {
			// Not asked for (direct requests never upgrade), or too many.
			stop()
			return nil, fmt.Errorf("upstream: unexpected %d answer", code)
		}
		// Informational (103 Early Hints): relay it as http.Transport
		// does, through the trace httputil.ReverseProxy installs.
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				stop()
				return nil, err
			}
		}
	}
	dc.lr.n = unlimited
	if p.headerTimeout > 0 {
		_ = dc.c.SetReadDeadline(time.Time{})
		if ctx.Err() != nil {
			// Cancelled while the deadline was being cleared: the
			// interruption must stand.
			_ = dc.c.SetDeadline(aLongTimeAgo)
		}
	}
	body := &directBody{rc: resp.Body, dc: dc, p: p, stop: stop, keep: !resp.Close}
	if resp.Body == http.NoBody {
		// HEAD, 204, 304: the exchange is over.
		body.finish(true)
		return resp, nil
	}
	resp.Body = body
	return resp, nil
}

// directBody is a response body over a directConn. Read to its end, it
// returns the connection to the pool; closed early, it closes it. It must
// not be read after Close or after it returned io.EOF (the connection may
// be serving another request by then), which it enforces.
type directBody struct {
	rc   io.ReadCloser
	dc   *directConn
	p    *directPool
	stop func() bool
	keep bool // the response allows reuse (no Connection: close)
	done atomic.Bool
	eof  bool
}

var errBodyClosed = errors.New("upstream: read on closed response body")

func (b *directBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
		b.finish(true)
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.done.Load() {
		return nil
	}
	b.finish(false)
	return nil
}

// finish settles the connection once: back to the pool when the body was
// read to its end on a reusable response that nothing interrupted, closed
// otherwise.
func (b *directBody) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	interrupted := !b.stop()
	if eof && b.keep && !interrupted && b.dc.br.Buffered() == 0 {
		b.p.put(b.dc)
		return
	}
	// Close the connection first, so that closing the body (which drains
	// what is left) returns at once instead of reading it all.
	b.dc.c.Close()
	_ = b.rc.Close()
}
