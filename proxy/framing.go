package proxy

import (
	"bytes"
	"errors"
	"net"
	"strconv"
)

// FramingConflictHeader marks a request whose header block, as it arrived
// on the wire, framed its body ambiguously: Content-Length together with
// Transfer-Encoding, or Content-Length given twice. Go's parser resolves
// both silently (it drops Content-Length under chunked and merges equal
// lengths), so by the time a handler runs the ambiguity is gone from the
// request; the framing listener adds this header to the block before the
// parser reads it, and the gateway's hygiene stage answers 400 and closes
// the connection, as Envoy does by default. A client that sends the
// header itself only refuses its own request.
const FramingConflictHeader = "Sg-Framing-Conflict"

// FramingListener wraps a plaintext HTTP/1.x listener so that every
// connection's request header blocks are inspected before net/http parses
// them (see FramingConflictHeader). It is not for TLS listeners: net/http
// must see the *tls.Conn itself to negotiate HTTP/2 and set Request.TLS.
func FramingListener(l net.Listener, maxHeaderBytes int) net.Listener {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = 1 << 20
	}
	return framingListener{Listener: l, max: maxHeaderBytes}
}

type framingListener struct {
	net.Listener
	max int
}

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, t: framingTracker{max: l.max + 4096}}, nil
}

// framingConn hands net/http the connection's bytes after its tracker has
// seen each request's header block whole. Body bytes and everything after
// tracking ends are read straight into the caller's buffer.
type framingConn struct {
	net.Conn
	t   framingTracker
	in  []byte // read from the connection, not yet judged
	out []byte // judged, not yet handed to the reader
	err error  // the connection's read error, after in and out are drained
	buf [4096]byte
}

func (c *framingConn) Read(p []byte) (int, error) {
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		}
		if len(c.in) > 0 {
			if n := c.t.feed(c.in); n > 0 {
				c.out = c.t.emit(c.in[:n])
				c.in = c.in[n:]
				continue
			}
		}
		if c.err != nil {
			if len(c.in) > 0 {
				// An incomplete header block: the parser refuses it.
				c.out, c.in = c.in, nil
				continue
			}
			return 0, c.err
		}
		if len(c.in) == 0 && c.t.state != trackHeader && len(p) > 0 {
			n, err := c.Conn.Read(p)
			if n == 0 && isTimeout(err) {
				return 0, err
			}
			if c.t.state == trackBody {
				if used := c.t.feed(p[:n]); used < n {
					// The next request's first bytes: held back until
					// its header block is whole.
					c.in = append(c.in, p[used:n]...)
					n = used
				}
			}
			if err != nil && len(c.in) > 0 {
				c.err, err = err, nil
			}
			return n, err
		}
		n, err := c.Conn.Read(c.buf[:])
		c.in = append(c.in, c.buf[:n]...)
		switch {
		case err == nil:
		case isTimeout(err):
			// net/http aborts its background read with a deadline in
			// the past and then reads on: a timeout is not the end of
			// the connection, and what was read is kept for later.
			if n == 0 {
				return 0, err
			}
		default:
			c.err = err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// framingTracker follows HTTP/1.x request framing as net/http does, far
// enough to find each header block: a block is judged whole, then a
// Content-Length body is passed through uncounted by content. A request
// whose body is chunked, or that upgrades the connection, ends tracking:
// the gateway answers a chunked request with Connection: close, and an
// upgraded connection carries no more requests. Whatever the tracker cannot
// follow ends tracking too, and net/http then refuses it itself.
type framingTracker struct {
	max      int
	state    int
	body     int64 // Content-Length bytes still to pass
	conflict bool  // the block just judged frames its body ambiguously
}

const (
	trackHeader = iota
	trackBody
	trackOff
)

// feed judges in (not yet emitted bytes) and returns how many of its
// leading bytes may be emitted; 0 means it needs more bytes.
func (t *framingTracker) feed(in []byte) int {
	switch t.state {
	case trackOff:
		return len(in)
	case trackBody:
		n := int64(len(in))
		if n > t.body {
			n = t.body
		}
		t.body -= n
		if t.body == 0 {
			t.state = trackHeader
		}
		return int(n)
	}
	end := headerEnd(in)
	if end < 0 {
		if len(in) > t.max {
			t.state = trackOff // the parser answers 431 and closes
			return len(in)
		}
		return 0
	}
	t.judge(in[:end])
	return end
}

// emit returns the bytes to hand on for block, which feed just returned:
// the block with FramingConflictHeader after its request line when it was
// ambiguous, otherwise block itself.
func (t *framingTracker) emit(block []byte) []byte {
	if !t.conflict {
		return block
	}
	t.conflict = false
	nl := bytes.IndexByte(block, '\n')
	out := make([]byte, 0, len(block)+len(FramingConflictHeader)+5)
	out = append(out, block[:nl+1]...)
	out = append(out, FramingConflictHeader+": 1\r\n"...)
	return append(out, block[nl+1:]...)
}

// headerEnd returns the length of the header block at the start of b
// (request line, fields and the empty line, bare LF line ends accepted as
// net/http accepts them), or -1 when b does not hold it all yet.
func headerEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		// An empty line: "\n" or "\r\n" right after a line end.
		switch {
		case i >= 1 && b[i-1] == '\n':
			return i + 1
		case i >= 2 && b[i-1] == '\r' && b[i-2] == '\n':
			return i + 1
		}
	}
	return -1
}

// judge reads the framing fields of one header block and sets what comes
// after it.
func (t *framingTracker) judge(block []byte) {
	if bytes.HasPrefix(block, []byte("PRI ")) {
		t.state = trackOff // HTTP/2 preface: not HTTP/1 framing
		return
	}
	var cl []byte
	ncl := 0
	te, upgrade, folded := false, false, false
	rest := block[bytes.IndexByte(block, '\n')+1:] // the fields, after the request line
	for len(rest) > 0 {
		var ln []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			ln, rest = rest[:i], rest[i+1:]
		} else {
			ln, rest = rest, nil
		}
		ln = bytes.TrimSuffix(ln, []byte("\r"))
		if len(ln) == 0 {
			continue
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			folded = true
			continue
		}
		name, value, ok := bytes.Cut(ln, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = bytes.TrimSpace(value)
			ncl++
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = true
		}
	}
	switch {
	case te && ncl > 0, ncl > 1, folded && (te || ncl > 0):
		// Refused, and the connection is closed after the answer.
		t.conflict = true
		t.state = trackOff
	case te, upgrade:
		t.state = trackOff
	case ncl == 1:
		n, err := strconv.ParseInt(string(cl), 10, 64)
		if err != nil || n < 0 || len(cl) == 0 || cl[0] == '+' || cl[0] == '-' {
			t.state = trackOff // net/http refuses it and closes
			return
		}
		if n > 0 {
			t.body, t.state = n, trackBody
		}
	}
}
