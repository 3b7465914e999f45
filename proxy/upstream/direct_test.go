package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawNode is a node speaking HTTP/1.1 by hand, so that tests control
// exactly what goes over each connection. serve runs per connection and
// gets the number of the connection (from 1).
type rawNode struct {
	url      string
	accepted atomic.Int64
}

func newRawNode(t *testing.T, serve func(n int64, c net.Conn, br *bufio.Reader)) *rawNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rn := &rawNode{url: "http://" + ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := rn.accepted.Add(1)
			go func() {
				defer c.Close()
				serve(n, c, bufio.NewReader(c))
			}()
		}
	}()
	return rn
}

// readRequest reads one request off br, or reports false.
func readRequest(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	_, _ = io.Copy(io.Discard, req.Body)
	return req, true
}

func directPoolOf(t *testing.T, url string, o Options) *Pool {
	t.Helper()
	o.Nodes = []string{url}
	p := newPool(t, o)
	if p.nodes[0].direct == nil {
		t.Fatal("no direct path for a plain-http node")
	}
	return p
}

func TestDirectEligibility(t *testing.T) {
	get := func(mod func(r *http.Request)) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://node/x", nil)
		if mod != nil {
			mod(r)
		}
		return r
	}
	for _, c := range []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"plain GET", get(nil), true},
		{"HEAD", get(func(r *http.Request) { r.Method = http.MethodHead }), true},
		{"OPTIONS", get(func(r *http.Request) { r.Method = http.MethodOptions }), true},
		{"POST", get(func(r *http.Request) { r.Method = http.MethodPost }), false},
		{"DELETE", get(func(r *http.Request) { r.Method = http.MethodDelete }), false},
		{"GET with a body", get(func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("x")); r.ContentLength = 1 }), false},
		{"GET with a chunked body", get(func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("x")); r.ContentLength = -1 }), false},
		{"upgrade", get(func(r *http.Request) { r.Header.Set("Connection", "Upgrade"); r.Header.Set("Upgrade", "websocket") }), false},
		{"Connection: close", get(func(r *http.Request) { r.Close = true }), false},
		{"bad header name", get(func(r *http.Request) { r.Header["Bad\r\nName"] = []string{"x"} }), false},
		{"trailers", get(func(r *http.Request) { r.Trailer = http.Header{"X-T": nil} }), false},
	} {
		if got := direct(c.req); got != c.want {
			t.Errorf("%s: direct = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDirectReusesOneConnection(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "streamed")
		default:
			_, _ = io.WriteString(w, "hello")
		}
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	p := directPoolOf(t, s.URL, Options{})
	for i := 0; i < 5; i++ {
		for _, c := range []struct{ method, path string }{{"GET", "/"}, {"HEAD", "/"}, {"GET", "/empty"}, {"GET", "/chunked"}, {"OPTIONS", "/"}} {
			resp, err := do(t, p, c.method, c.path, "")
			if err != nil || resp.StatusCode >= 300 {
				t.Fatalf("%s %s: %v %v", c.method, c.path, resp, err)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for sequential requests, want 1", n)
	}
}

func TestDirectBodyAndHeadersArriveIntact(t *testing.T) {
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Agent", r.Header.Get("User-Agent"))
		_, _ = fmt.Fprintf(w, "%s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	})
	p := directPoolOf(t, a.URL, Options{})
	req, _ := http.NewRequest(http.MethodGet, "http://gateway.invalid/api/v1/chart/?q=(page:0)", nil)
	req.Host = "superset.example"
	req.Header.Set("User-Agent", "") // as httputil.ReverseProxy sends it when the client sent none
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "GET /api/v1/chart/?q=(page:0)" || resp.Header.Get("X-Seen-Host") != "superset.example" || resp.Header.Get("X-Seen-Agent") != "" {
		t.Fatalf("%q %v", body, resp.Header)
	}
	// After EOF and Close, the body stays at EOF (the connection is
	// serving others by then).
	if n, err := resp.Body.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: %d %v", n, err)
	}
}

// A kept-alive connection the node closed while idle is replaced once.
func TestDirectRetriesConnectionClosedWhileIdle(t *testing.T) {
	var served atomic.Int64
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); !ok {
			return
		}
		served.Add(1)
		// Keep-alive by the headers, closed right after: a node whose
		// keep-alive timeout ran out.
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := directPoolOf(t, rn.url, Options{})
	for i := 0; i < 3; i++ {
		resp, err := do(t, p, "GET", "/", "")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v %v", i, resp, err)
		}
	}
	if served.Load() != 3 || rn.accepted.Load() < 3 {
		t.Fatalf("served %d on %d connections", served.Load(), rn.accepted.Load())
	}
}

// A connection that failed after part of a response came back is not
// retried: the node answered, and the answer was broken.
func TestDirectNoRetryAfterPartialResponse(t *testing.T) {
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); ok {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
		}
	})
	p := directPoolOf(t, rn.url, Options{})
	if _, err := do(t, p, "GET", "/", ""); err == nil {
		t.Fatal("a truncated header was accepted")
	}
	if n := rn.accepted.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (no retry)", n)
	}
}

func TestDirectDoesNotReuseAfterConnectionCloseOrExtraBytes(t *testing.T) {
	for _, c := range []struct{ name, answer string }{
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		{"unsolicited bytes", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforged"},
		{"body to close", "HTTP/1.1 200 OK\r\n\r\nok"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rn := newRawNode(t, func(_ int64, conn net.Conn, br *bufio.Reader) {
				for {
					if _, ok := readRequest(br); !ok {
						return
					}
					_, _ = io.WriteString(conn, c.answer)
					if c.name == "body to close" {
						return
					}
				}
			})
			p := directPoolOf(t, rn.url, Options{})
			for i := 0; i < 2; i++ {
				resp, err := p.RoundTrip(mustGet(t, "/"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != "ok" {
					t.Fatalf("request %d: body %q", i, body)
				}
			}
			if n := rn.accepted.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
}

func mustGet(t *testing.T, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://gateway.invalid"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Closing a body early closes the connection instead of draining it: the
// node's endless stream ends with a write error.
func TestDirectEarlyCloseDoesNotDrain(t *testing.T) {
	ended := make(chan error, 1)
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := "400\r\n" + strings.Repeat("x", 1024) + "\r\n"
		for {
			if _, err := io.WriteString(c, chunk); err != nil {
				ended <- err
				return
			}
		}
	})
	p := directPoolOf(t, rn.url, Options{})
	resp, err := p.RoundTrip(mustGet(t, "/stream"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err == nil {
		t.Fatal("the node's stream did not end")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close succeeded")
	}
}

func TestDirectCancelInterruptsTheWait(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		readRequest(br)
		<-release
	})
	p := directPoolOf(t, rn.url, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req := mustGet(t, "/hang").WithContext(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := p.RoundTrip(req)
		errc <- err
	}()
	for rn.accepted.Load() == 0 {
		select {
		case err := <-errc:
			t.Fatalf("returned before the node was reached: %v", err)
		default:
		}
		waitABit()
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestDirectHeaderTooLarge(t *testing.T) {
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); !ok {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("y", 1<<16) + "\r\n"
		for i := 0; i <= maxDirectHeaderBytes/len(line); i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	p := directPoolOf(t, rn.url, Options{})
	_, err := do(t, p, "GET", "/", "")
	if !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("err = %v, want %v", err, errHeaderTooLarge)
	}
}

// An informational answer is skipped (and relayed through the trace by
// httputil.ReverseProxy); the final answer is returned.
func TestDirectSkipsInformationalAnswers(t *testing.T) {
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		if _, ok := readRequest(br); ok {
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := directPoolOf(t, rn.url, Options{})
	resp, err := do(t, p, "GET", "/", "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
}

// waitABit yields while polling for a condition; it asserts no timing.
func waitABit() { time.Sleep(time.Millisecond) }

// Bytes a node sends on an idle connection never pass for the answer to
// the next request sent on it.
func TestDirectUnsolicitedAnswerOnIdleConnection(t *testing.T) {
	read, forged := make(chan struct{}), make(chan struct{})
	rn := newRawNode(t, func(n int64, c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			if n > 1 {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			<-read
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")
			close(forged)
		}
	})
	p := directPoolOf(t, rn.url, Options{})
	get := func() string {
		resp, err := p.RoundTrip(mustGet(t, "/"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(body)
	}
	if got := get(); got != "ok" {
		t.Fatalf("first answer %q", got)
	}
	close(read)
	<-forged
	if got := get(); got != "real" {
		t.Fatalf("second answer %q, want the second connection's", got)
	}
}

// A kept-alive connection whose node is merely slow times out once: the
// request is not sent again.
func TestDirectTimeoutIsNotRetried(t *testing.T) {
	var requests atomic.Int64
	release := make(chan struct{})
	defer close(release)
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				return
			}
			if requests.Add(1) > 1 {
				<-release
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := directPoolOf(t, rn.url, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	if _, err := do(t, p, "GET", "/", ""); err != nil {
		t.Fatal(err)
	}
	_, err := do(t, p, "GET", "/slow", "")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("the node saw %d requests, want 2", n)
	}
}

func TestDirectAddress(t *testing.T) {
	for raw, want := range map[string]string{
		"http://superset":         "superset:80",
		"http://superset:8088":    "superset:8088",
		"http://[::1]":            "[::1]:80",
		"http://[::1]:8088":       "[::1]:8088",
		"http://10.0.0.5:8088/":   "10.0.0.5:8088",
		"http://SuperSet.Example": "SuperSet.Example:80",
	} {
		p, err := New(Options{Nodes: []string{raw}})
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := p.nodes[0].direct.addr; got != want {
			t.Errorf("%s: dials %q, want %q", raw, got, want)
		}
	}
	p, err := New(Options{Nodes: []string{"https://superset"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.nodes[0].direct != nil {
		t.Error("an https node has a direct path")
	}
}

// Idle connections are closed once idle for IdleConnTimeout, even when no
// request comes to notice.
func TestDirectIdleConnectionsAreClosed(t *testing.T) {
	closed := make(chan struct{}, 2)
	rn := newRawNode(t, func(_ int64, c net.Conn, br *bufio.Reader) {
		for {
			if _, ok := readRequest(br); !ok {
				closed <- struct{}{}
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	p := directPoolOf(t, rn.url, Options{IdleConnTimeout: 20 * time.Millisecond})
	if _, err := do(t, p, "GET", "/", ""); err != nil {
		t.Fatal(err)
	}
	<-closed // the sweeper closed the idle connection
	p.nodes[0].direct.mu.Lock()
	idle := len(p.nodes[0].direct.idle)
	p.nodes[0].direct.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections left", idle)
	}
	// The pool still works afterwards.
	if _, err := do(t, p, "GET", "/", ""); err != nil {
		t.Fatal(err)
	}
}
