package proxy

import (
	"bytes"
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

// FuzzFramingConn: whatever arrives and however it is split, the listener
// hands on exactly the bytes it got, plus a conflict marker only ever right
// after a request line; it never panics or loses bytes.
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
		c := &framingConn{Conn: &chunkConn{data: append([]byte(nil), data...), step: int(step%64) + 1},
			t: framingTracker{max: 1 << 12}}
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		// A client may send the marker itself (it only refuses its own
		// request): compare with every marker removed from both sides.
		marker := []byte(FramingConflictHeader + ": 1\r\n")
		for i := bytes.Index(out, marker); i >= 0; i = bytes.Index(out, marker) {
			if i == 0 || out[i-1] != '\n' {
				t.Fatalf("marker not after a line end at %d in %q", i, out)
			}
			out = append(out[:i:i], out[i+len(marker):]...)
		}
		if in := bytes.ReplaceAll(data, marker, nil); !bytes.Equal(out, in) {
			t.Fatalf("bytes changed:\n in %q\nout %q", data, out)
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
// a past deadline and then reads the next request; the listener must not
// take that timeout for the end of the connection (every keep-alive
// request after the first failed when it did).
func TestFramingTimeoutIsNotTheEnd(t *testing.T) {
	for _, state := range []int{trackHeader, trackOff} {
		c := &framingConn{Conn: &timeoutConn{chunkConn: chunkConn{data: []byte("GET / HTTP/1.1\r\n\r\n"), step: 5}},
			t: framingTracker{max: 1 << 12, state: state}}
		if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
			t.Fatalf("state %d: first read %v, want the timeout", state, err)
		}
		out, err := io.ReadAll(c)
		if err != nil || string(out) != "GET / HTTP/1.1\r\n\r\n" {
			t.Fatalf("state %d: after the timeout: %q %v", state, out, err)
		}
	}
}
