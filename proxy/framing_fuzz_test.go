package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkConn is a net.Conn that reads its data a few bytes at a time.
type chunkConn struct {
	net.Conn
	data []byte
	step int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.step, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzFramingConn: whatever arrives and however it is split, the
// connection hands on exactly the bytes it got (it only watches them),
// and publishes the verdicts of a tracker fed the same bytes at once.
func FuzzFramingConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
		"POST / HTTP/1.1\nContent-Length: 2\n\nabGET / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 1\n\n",
		"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		c := newFramingConn(&chunkConn{data: append([]byte(nil), data...), step: int(step%64) + 1})
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("bytes changed:\n in %q\nout %q", data, out)
		}
		whole := newFramingTracker()
		whole.feed(data)
		if c.blocks != whole.blocks || c.bad != whole.bad || c.why != whole.why {
			t.Fatalf("published %d %d %q, tracker %d %d %q", c.blocks, c.bad, c.why, whole.blocks, whole.bad, whole.why)
		}
	})
}

// timeoutConn answers one timeout (as net/http's aborted background read
// sees) before its data.
type timeoutConn struct {
	chunkConn
	timedOut bool
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (c *timeoutConn) Read(p []byte) (int, error) {
	if !c.timedOut {
		c.timedOut = true
		return 0, timeoutErr{}
	}
	return c.chunkConn.Read(p)
}

// TestFramingTimeoutIsNotTheEnd: net/http aborts its background read with
// a past deadline and then reads the next request; the connection passes
// the timeout on and keeps following what comes after it.
func TestFramingTimeoutIsNotTheEnd(t *testing.T) {
	c := newFramingConn(&timeoutConn{chunkConn: chunkConn{data: []byte("GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), step: 5}})
	var te timeoutErr
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &te) {
		t.Fatalf("first read %v, want the timeout", err)
	}
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n" || c.blocks != 2 || c.bad != -1 {
		t.Fatalf("after the timeout: %q %v, blocks %d bad %d", out, err, c.blocks, c.bad)
	}
}
