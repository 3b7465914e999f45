package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

// seen is what the backend received, for the backend to assert on.
type seen struct {
	RequestURI string
	Path       string
	Header     http.Header
	Body       string
	TE         []string
	CL         int64
	Host       string
}

// testBackend is a real upstream that records every request.
type testBackend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func (b *testBackend) last(t *testing.T) seen {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatal("backend received nothing")
	}
	return b.reqs[len(b.reqs)-1]
}

func (b *testBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func newTestBackend(t testing.TB, h http.HandlerFunc) *testBackend {
	t.Helper()
	b := &testBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			_, _ = io.WriteString(w, "OK")
			return
		}
		var body []byte
		if r.Header.Get("Upgrade") == "" {
			body, _ = io.ReadAll(r.Body)
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, seen{RequestURI: r.RequestURI, Path: r.URL.Path, Header: r.Header.Clone(),
			Body: string(body), TE: r.TransferEncoding, CL: r.ContentLength, Host: r.Host})
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(b.Close)
	return b
}

// recObs records the proxy observer calls.
type recObs struct {
	mu       sync.Mutex
	inflight int
	reqs     []string
	refusals []string
	done     chan struct{}
}

func newRecObs() *recObs { return &recObs{done: make(chan struct{}, 100)} }

func (o *recObs) InFlight(d int) { o.mu.Lock(); o.inflight += d; o.mu.Unlock() }
func (o *recObs) ObserveRequest(class string, status int, _ time.Duration) {
	o.mu.Lock()
	o.reqs = append(o.reqs, class+" "+strconv.Itoa(status))
	o.mu.Unlock()
	o.done <- struct{}{}
}
func (o *recObs) ObserveRefusal(reason string) {
	o.mu.Lock()
	o.refusals = append(o.refusals, reason)
	o.mu.Unlock()
}
func (o *recObs) snapshot() (int, []string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.inflight, append([]string(nil), o.reqs...), append([]string(nil), o.refusals...)
}

type stack struct {
	gw      *Gateway
	front   *httptest.Server
	backend *testBackend
	pool    *upstream.Pool
	obs     *recObs
	logs    *observer.ObservedLogs
}

// newStack puts a Gateway in front of a real backend, behind a real
// listener. mod may adjust the options.
func newStack(t testing.TB, h http.HandlerFunc, mod func(*Options, *upstream.Options)) *stack {
	t.Helper()
	s := &stack{backend: newTestBackend(t, h), obs: newRecObs()}
	core, logs := observer.New(zap.DebugLevel)
	s.logs = logs
	po := upstream.Options{Nodes: []string{s.backend.URL}}
	o := Options{Logger: zap.New(core), Observer: s.obs}
	if mod != nil {
		mod(&o, &po)
	}
	pool, err := upstream.New(po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	s.pool = pool
	if o.Upstream == nil {
		o.Upstream = pool
	}
	gw, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.gw = gw
	// The listener, handler and connection context as Server wraps a
	// plaintext one (framing.go).
	s.front = httptest.NewUnstartedServer(framingHandler{next: gw})
	s.front.Listener = framingListener{s.front.Listener}
	s.front.Config.ConnContext = framingConnContext
	s.front.Config.DisableGeneralOptionsHandler = true
	s.front.Start()
	t.Cleanup(s.front.Close)
	return s
}

func (s *stack) addr() string { return strings.TrimPrefix(s.front.URL, "http://") }

func (s *stack) get(t testing.TB, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", s.front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// raw sends a hand-written request on a fresh connection and reads one
// answer, so that nothing on the client side normalises it.
func raw(t testing.TB, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func loopback() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }

func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return "http://" + a
}
