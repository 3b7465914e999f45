package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
)

// Why a listener wrapper: net/http reads Content-Length together with
// Transfer-Encoding as chunked and deletes Content-Length, and merges two
// equal Content-Lengths into one, before any handler runs (RFC 9112 §6.3
// lets it). The handler therefore cannot refuse what RFC 9112 calls a
// likely smuggling attempt. The framing tracker reads the same bytes
// net/http reads, follows HTTP/1.x message boundaries (header blocks,
// Content-Length and chunked bodies, pipelining) and records, per
// connection, which header block was ambiguous; the handler asks before
// it does anything else (admitFraming). Where the tracker cannot follow
// what net/http would accept, it stops, and every later request of the
// connection is refused: fail closed, never guessed.

// framingCap is how much of a header or chunk-size line the tracker keeps:
// enough for "Transfer-Encoding:" or "Content-Length:" with any value
// net/http accepts, a chunk size and its extension's start.
const framingCap = 128

type framingState uint8

const (
	fsRequestLine framingState = iota
	fsHeader
	fsBody      // remain bytes of a Content-Length body
	fsChunkSize // a chunk-size line
	fsChunkData // remain bytes of chunk data
	fsChunkCRLF // the CRLF after chunk data
	fsTrailer   // trailer lines up to the empty one
	fsStopped   // a conflict or lost framing: nothing is parsed any more
)

// framingTracker follows HTTP/1.x request framing over a connection's
// bytes, in the order read. It is a plain state machine with fixed-size
// buffers: feeding it never allocates. Not safe for concurrent use
// (net/http never reads a connection from two goroutines at once).
type framingTracker struct {
	state  framingState
	remain uint64 // fsBody, fsChunkData
	crlf   uint8  // fsChunkCRLF: bytes of "\r\n" seen

	// The current line: its length without the '\n', its first
	// framingCap bytes, the number of '\r' in it and its last byte.
	lineLen int
	line    [framingCap]byte
	crs     int
	last    byte
	// Request line only: spaces seen, and the bytes after the last one
	// (the protocol version), up to len(proto).
	spaces   int
	proto    [9]byte
	protoLen int

	// The header block being read.
	http11    bool // HTTP/1.1 or later (net/http ignores Transfer-Encoding before)
	cl, te    int  // Content-Length and Transfer-Encoding fields
	clValue   uint64
	clBad     bool // a Content-Length net/http would refuse or the tracker could not read
	chunked   bool // the (single) Transfer-Encoding is "chunked"
	prevFrame bool // the previous field was Content-Length or Transfer-Encoding
	folded    bool // a Content-Length or Transfer-Encoding value was folded (obs-fold)

	// Blocks is the number of header blocks classified. Bad is the index
	// of the first request that must be refused (-1: none), Why its reason.
	blocks int
	bad    int
	why    policy.Reason
}

func newFramingTracker() framingTracker { return framingTracker{bad: -1} }

// feed follows p, the next bytes of the connection. It reports whether
// blocks or bad changed.
func (t *framingTracker) feed(p []byte) bool {
	changed := false
	for len(p) > 0 {
		switch t.state {
		case fsStopped:
			return changed
		case fsBody, fsChunkData:
			n := uint64(len(p))
			if n > t.remain {
				n = t.remain
			}
			p = p[n:]
			t.remain -= n
			if t.remain == 0 {
				if t.state == fsBody {
					t.nextMessage()
				} else {
					t.state, t.crlf = fsChunkCRLF, 0
				}
			}
		case fsChunkCRLF:
			// net/http wants exactly "\r\n" after chunk data.
			if p[0] != "\r\n"[t.crlf] {
				t.stop(t.blocks, reasonFramingUnknown)
				return true
			}
			p = p[1:]
			if t.crlf++; t.crlf == 2 {
				t.state = fsChunkSize
				t.resetLine()
			}
		default:
			i := bytes.IndexByte(p, '\n')
			seg := p
			if i >= 0 {
				seg = p[:i]
			}
			t.addToLine(seg)
			if i < 0 {
				return changed
			}
			p = p[i+1:]
			if t.endLine() {
				changed = true
			}
		}
	}
	return changed
}

func (t *framingTracker) resetLine() {
	t.lineLen, t.crs, t.last, t.spaces, t.protoLen = 0, 0, 0, 0, 0
}

// nextMessage expects the next request line.
func (t *framingTracker) nextMessage() {
	t.state = fsRequestLine
	t.resetLine()
}

// stop ends tracking: requests from index at on are refused for why.
func (t *framingTracker) stop(at int, why policy.Reason) {
	t.state = fsStopped
	if t.bad < 0 || at < t.bad {
		t.bad, t.why = at, why
	}
}

func (t *framingTracker) addToLine(seg []byte) {
	if len(seg) == 0 {
		return
	}
	if t.lineLen < framingCap {
		copy(t.line[t.lineLen:], seg)
	}
	t.lineLen += len(seg)
	t.last = seg[len(seg)-1]
	switch t.state {
	case fsRequestLine:
		// The request target may be long; only the spaces and what
		// follows the last one matter.
		t.spaces += bytes.Count(seg, []byte{' '})
		after := seg
		if j := bytes.LastIndexByte(seg, ' '); j >= 0 {
			after, t.protoLen = seg[j+1:], 0
		}
		if t.protoLen+len(after) > len(t.proto) {
			t.protoLen = len(t.proto) + 1 // too long to be a version
		} else {
			t.protoLen += copy(t.proto[t.protoLen:], after)
		}
	case fsChunkSize:
		t.crs += bytes.Count(seg, []byte{'\r'})
	}
}

// endLine handles a complete line; it reports whether blocks or bad
// changed.
func (t *framingTracker) endLine() bool {
	defer t.resetLine()
	switch t.state {
	case fsRequestLine:
		return t.requestLine()
	case fsHeader:
		return t.headerLine()
	case fsChunkSize:
		return t.chunkSizeLine()
	case fsTrailer:
		// net/http's trailer reader ends at the first empty line; the
		// fields themselves do not frame anything.
		if t.lineLen == 0 || t.lineLen == 1 && t.last == '\r' {
			t.nextMessage()
		}
	}
	return false
}

// requestLine checks what net/http's readRequest needs to frame the
// message: METHOD SP target SP HTTP/1.x.
func (t *framingTracker) requestLine() bool {
	p := t.proto[:min(t.protoLen, len(t.proto))]
	if t.protoLen <= len(t.proto) && len(p) > 0 && p[len(p)-1] == '\r' {
		p = p[:len(p)-1]
	} else if t.protoLen > len(t.proto) {
		p = nil
	}
	// net/http answers anything else with 400 or 505 and closes the
	// connection; the tracker need not follow it further.
	if t.spaces != 2 || len(p) != 8 || string(p[:5]) != "HTTP/" || p[5] != '1' || p[6] != '.' || p[7] < '0' || p[7] > '9' {
		t.stop(t.blocks, reasonFramingUnknown)
		return true
	}
	t.http11 = p[7] >= '1'
	t.cl, t.te, t.clValue, t.clBad, t.chunked, t.prevFrame, t.folded = 0, 0, 0, false, false, false, false
	t.state = fsHeader
	return false
}

// headerLine notes Content-Length and Transfer-Encoding fields, the way
// net/http's textproto reader splits them (name up to the first ':',
// value trimmed of spaces and tabs); at the empty line it classifies the
// block.
func (t *framingTracker) headerLine() bool {
	n := t.lineLen
	if n > 0 && t.last == '\r' {
		n-- // textproto drops one CR before the LF
	}
	if n == 0 {
		return t.endBlock()
	}
	c := t.line[:min(n, framingCap)]
	if c[0] == ' ' || c[0] == '\t' {
		// A continuation (obs-fold), which net/http joins to the
		// previous field.
		if t.prevFrame {
			t.folded = true
		}
		return false
	}
	colon := bytes.IndexByte(c, ':')
	t.prevFrame = false
	if colon < 0 {
		return false // a name longer than any framing field's, or a line net/http refuses
	}
	name, value := c[:colon], trimOWS(c[colon+1:])
	switch {
	case asciiEqualFold(name, "content-length"):
		t.cl++
		t.prevFrame = true
		v, ok := parseDecimal(value)
		if !ok || n > framingCap {
			t.clBad = true
		}
		t.clValue = v
	case asciiEqualFold(name, "transfer-encoding"):
		t.te++
		t.prevFrame = true
		t.chunked = n <= framingCap && asciiEqualFold(value, "chunked")
	}
	return false
}

// endBlock classifies the header block just ended and sets up its body.
func (t *framingTracker) endBlock() bool {
	idx := t.blocks
	t.blocks++
	switch {
	case t.cl > 0 && t.te > 0, t.cl > 1, t.te > 0 && !t.http11:
		// RFC 9112 §6.1 and §6.3: both framings, two lengths (even equal
		// ones, which net/http merges silently), or Transfer-Encoding on
		// HTTP/1.0 (which net/http ignores, framing by Content-Length).
		t.stop(idx, reasonFramingConflict)
	case t.folded, t.te > 1, t.te == 1 && !t.chunked, t.cl == 1 && t.clBad:
		// net/http refuses these (501 or 400) or would read them in a
		// way the tracker does not model: refuse rather than guess.
		t.stop(idx, reasonFramingUnknown)
	case t.te == 1:
		t.state = fsChunkSize
	case t.cl == 1 && t.clValue > 0:
		t.state, t.remain = fsBody, t.clValue
	default:
		t.nextMessage()
	}
	return true
}

// chunkSizeLine reads chunk-size [; extensions] CRLF as net/http's
// chunked reader does: the line must end in CRLF with no other CR,
// trailing spaces and tabs go, the extension is cut at ';', and the size
// is 1 to 16 hex digits.
func (t *framingTracker) chunkSizeLine() bool {
	if t.last != '\r' || t.crs != 1 {
		t.stop(t.blocks, reasonFramingUnknown)
		return true
	}
	n := t.lineLen - 1
	c := t.line[:min(n, framingCap)]
	var size []byte
	if j := bytes.IndexByte(c, ';'); j >= 0 {
		size = c[:j]
	} else if n <= framingCap {
		size = c
		for len(size) > 0 && (size[len(size)-1] == ' ' || size[len(size)-1] == '\t') {
			size = size[:len(size)-1]
		}
	}
	v, ok := parseHex(size)
	if !ok {
		t.stop(t.blocks, reasonFramingUnknown)
		return true
	}
	if v == 0 {
		t.state = fsTrailer
	} else {
		t.state, t.remain = fsChunkData, v
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold compares b with the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length as net/http does: 1 to 19 ASCII
// digits, below 2^63.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v < 1<<63
}

// parseHex parses a chunk size: 1 to 16 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// framingConn is a server connection whose reads go through a tracker.
type framingConn struct {
	net.Conn
	t framingTracker // only Read touches it

	mu      sync.Mutex
	blocks  int // t.blocks, published
	bad     int // t.bad, published
	why     policy.Reason
	served  int           // requests net/http has handed to the handler
	current policy.Reason // the verdict on the request being served
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.t.feed(p[:n]) {
		c.mu.Lock()
		c.blocks, c.bad, c.why = c.t.blocks, c.t.bad, c.t.why
		c.mu.Unlock()
	}
	return n, err
}

// begin is called once for every request net/http hands to the handler,
// in order (HTTP/1 serves a connection's requests one at a time), and
// decides on it: "" when its header block was classified and unambiguous,
// else the reason to refuse it.
func (c *framingConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.served
	c.served++
	switch {
	case c.bad >= 0 && i >= c.bad:
		c.current = c.why
	case i >= c.blocks:
		// net/http read a request whose end the tracker did not see:
		// they disagree about this connection.
		c.current = reasonFramingUnknown
	default:
		c.current = ""
	}
}

func (c *framingConn) verdict() policy.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// framingListener wraps every accepted connection in a framingConn.
type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingConn(c), nil
}

func newFramingConn(c net.Conn) *framingConn {
	return &framingConn{Conn: c, t: newFramingTracker(), bad: -1}
}

func (c *framingConn) framing() *framingConn { return c }

// tlsFramingConn is a framingConn over TLS. net/http sets Request.TLS from
// ConnectionState for connections that are not a *tls.Conn themselves.
type tlsFramingConn struct{ *framingConn }

func (c tlsFramingConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

// tlsFramingListener terminates TLS itself, so that HTTP/1 over TLS goes
// through a framing tracker too (net/http only reads a *tls.Conn's
// plaintext inside its own serve loop). Handshakes run in their own
// goroutines, bounded by a timeout, so a slow client never holds up
// Accept. A connection that negotiated h2 is handed over as the *tls.Conn
// it is (HTTP/2 frames carry their own lengths); any other is wrapped.
type tlsFramingListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	log     *zap.Logger

	conns     chan net.Conn
	errs      chan error
	done      chan struct{}
	closeOnce sync.Once
}

func newTLSFramingListener(l net.Listener, cfg *tls.Config, timeout time.Duration, log *zap.Logger) *tlsFramingListener {
	tl := &tlsFramingListener{inner: l, cfg: cfg, timeout: timeout, log: log,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{})}
	go tl.acceptLoop()
	return tl
}

func (l *tlsFramingListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // net/http backs off on temporary errors and asks again
		}
		go l.handshake(c)
	}
}

func (l *tlsFramingListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && bytes.HasPrefix(rh.RecordHeader[:], []byte("GET ")) {
			// As net/http does for plain HTTP sent to a TLS port.
			_, _ = io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("tls handshake failed", zap.String("remote", c.RemoteAddr().String()), zap.Error(err))
		_ = c.Close()
		return
	}
	var out net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		out = tlsFramingConn{newFramingConn(tc)}
	}
	select {
	case l.conns <- out:
	case <-l.done:
		_ = tc.Close()
	}
}

func (l *tlsFramingListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsFramingListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.inner.Close()
}

func (l *tlsFramingListener) Addr() net.Addr { return l.inner.Addr() }

type framingKey struct{}

// framingConnContext is the http.Server's ConnContext: it puts the
// connection's framingConn where the handlers find it.
func framingConnContext(ctx context.Context, c net.Conn) context.Context {
	if f, ok := c.(interface{ framing() *framingConn }); ok {
		return context.WithValue(ctx, framingKey{}, f.framing())
	}
	return ctx
}

func connFraming(r *http.Request) *framingConn {
	if r.ProtoMajor != 1 {
		return nil // HTTP/2 frames carry their own lengths
	}
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	return fc
}

// framingHandler is the http.Server's handler in front of the gateway: it
// counts every request net/http serves on a framing connection, so that
// the verdicts stay aligned with the header blocks whatever the handler
// behind it answers itself.
type framingHandler struct{ next http.Handler }

func (h framingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fc := connFraming(r); fc != nil {
		fc.begin()
	}
	h.next.ServeHTTP(w, r)
}

// admitFraming is the gateway's side: "" when r was framed unambiguously
// or did not come through a framing listener (an in-process caller,
// HTTP/2), else the refusal reason.
func admitFraming(r *http.Request) policy.Reason {
	if fc := connFraming(r); fc != nil {
		return fc.verdict()
	}
	return ""
}
