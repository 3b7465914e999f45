package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"
)

// backend is a real HTTP server that counts what it received.
type backend struct {
	*httptest.Server
	hits   atomic.Int64
	bodies chan string
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{bodies: make(chan string, 64)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if h != nil {
				h(w, r)
				return
			}
			_, _ = io.WriteString(w, "OK")
			return
		}
		b.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		select {
		case b.bodies <- string(body):
		default:
		}
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(b.Close)
	return b
}

// deadURL returns the URL of a port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

type recObserver struct {
	mu      sync.Mutex
	ups     []string
	changes []string
}

func (o *recObserver) ObserveUpstream(node, class string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ups = append(o.ups, node+" "+class+" "+http.StatusText(status))
}

func (o *recObserver) SetNodeHealthy(node string, healthy bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := "down"
	if healthy {
		s = "up"
	}
	o.changes = append(o.changes, node+" "+s)
}

func (o *recObserver) snapshot() ([]string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ups...), append([]string(nil), o.changes...)
}

func newPool(t *testing.T, o Options) *Pool {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.CloseIdleConnections)
	return p
}

func do(t *testing.T, p *Pool, method, path, body string, hdr ...string) (*http.Response, error) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "http://gateway.invalid"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := p.RoundTrip(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestNewRejectsBadNodes(t *testing.T) {
	for _, nodes := range [][]string{
		nil,
		{"ftp://x"},
		{"http://x/sub"},
		{"http://u:p@x"},
		{"http://x?q=1"},
		{"http://x", "http://x/"},
		{"://bad"},
	} {
		if _, err := New(Options{Nodes: nodes}); err == nil {
			t.Errorf("New(%q) accepted", nodes)
		}
	}
	if _, err := New(Options{Nodes: []string{"http://x"}, HealthPath: "health"}); err == nil {
		t.Error("relative health path accepted")
	}
}

func TestRoundRobinDistribution(t *testing.T) {
	bs := []*backend{newBackend(t, nil), newBackend(t, nil), newBackend(t, nil)}
	obs := &recObserver{}
	p := newPool(t, Options{Nodes: []string{bs[0].URL, bs[1].URL, bs[2].URL}, Observer: obs})
	for range 30 {
		req, _ := http.NewRequestWithContext(WithClass(context.Background(), "api"), "GET", "http://gateway.invalid/api/v1/x?q=1", nil)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.URL.Host != "gateway.invalid" {
			t.Fatal("RoundTrip modified the caller's request")
		}
	}
	for i, b := range bs {
		if got := b.hits.Load(); got != 10 {
			t.Errorf("node %d got %d requests, want 10", i, got)
		}
	}
	ups, _ := obs.snapshot()
	if len(ups) != 30 || !strings.HasSuffix(ups[0], " api OK") {
		t.Errorf("observations = %d, first %q", len(ups), ups[0])
	}
}

func TestLeastConnAvoidsBusyNode(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "ok")
	}
	a, b := newBackend(t, slow), newBackend(t, slow)
	p := newPool(t, Options{Nodes: []string{a.URL, b.URL}, Selector: &LeastConn{}})
	done := make(chan error, 1)
	go func() { _, err := do(t, p, "GET", "/slow", ""); done <- err }()
	<-entered
	busy, idle := a, b
	if b.hits.Load() == 1 {
		busy, idle = b, a
	}
	for range 6 {
		if _, err := do(t, p, "GET", "/fast", ""); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if busy.hits.Load() != 1 || idle.hits.Load() != 6 {
		t.Errorf("busy node got %d, idle node got %d; want 1 and 6", busy.hits.Load(), idle.hits.Load())
	}
}

func TestSelectorsTable(t *testing.T) {
	ns := []*Node{{name: "a"}, {name: "b"}, {name: "c"}}
	ns[0].inflight.Store(5)
	ns[1].inflight.Store(1)
	ns[2].inflight.Store(3)
	lc := &LeastConn{}
	for range 5 {
		if got := lc.Select(ns).name; got != "b" {
			t.Fatalf("LeastConn picked %s, want b", got)
		}
	}
	ns[0].inflight.Store(0)
	ns[1].inflight.Store(0)
	ns[2].inflight.Store(0)
	seen := map[string]int{}
	for range 9 {
		seen[lc.Select(ns).name]++
	}
	if seen["a"] != 3 || seen["b"] != 3 || seen["c"] != 3 {
		t.Errorf("LeastConn ties not spread: %v", seen)
	}
	rr := &RoundRobin{}
	var order []string
	for range 4 {
		order = append(order, rr.Select(ns).name)
	}
	if strings.Join(order, "") != "abca" {
		t.Errorf("RoundRobin order %v", order)
	}
}

func TestRetryGETOnConnectFailureButNotPOST(t *testing.T) {
	live := newBackend(t, nil)
	dead := deadURL(t)
	p := newPool(t, Options{Nodes: []string{dead, live.URL}, EjectAfter: 1000})
	for range 4 {
		if _, err := do(t, p, "GET", "/x", ""); err != nil {
			t.Fatalf("GET not retried: %v", err)
		}
	}
	if live.hits.Load() != 4 {
		t.Fatalf("live node got %d GETs, want 4", live.hits.Load())
	}
	var failed int
	for range 4 {
		_, err := do(t, p, "POST", "/x", "payload")
		if err != nil {
			failed++
			if !isConnectFailure(err) || !strings.Contains(err.Error(), dead) {
				t.Errorf("POST error %v, want a connect failure naming the node", err)
			}
		}
	}
	if failed != 2 || live.hits.Load() != 6 {
		t.Errorf("POST: %d failed, live hits %d; want 2 and 6 (no retry)", failed, live.hits.Load())
	}
	// With an Idempotency-Key a POST is retried, body intact.
	for range 2 {
		if _, err := do(t, p, "POST", "/x", "keyed body", "Idempotency-Key", "k1"); err != nil {
			t.Fatalf("keyed POST not retried: %v", err)
		}
	}
	for len(live.bodies) > 1 {
		<-live.bodies
	}
	if got := <-live.bodies; got != "keyed body" {
		t.Errorf("retried body = %q", got)
	}
}

func TestNoRetryWhenRequestWasSent(t *testing.T) {
	var total atomic.Int64
	reset := func(w http.ResponseWriter, r *http.Request) {
		total.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}
	a, b := newBackend(t, reset), newBackend(t, reset)
	p := newPool(t, Options{Nodes: []string{a.URL, b.URL}})
	if _, err := do(t, p, "GET", "/x", ""); err == nil {
		t.Fatal("want error from a node that closed the connection")
	}
	if total.Load() != 1 {
		t.Errorf("request reached %d nodes, want 1 (no retry once sent)", total.Load())
	}
}

func TestEjectionAndReadmissionAfterCooldown(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1_000_000, 0))
	obs := &recObserver{}
	live := newBackend(t, nil)
	dead := deadURL(t)
	p := newPool(t, Options{
		Nodes: []string{dead, live.URL}, EjectAfter: 2, EjectCooldown: 30 * time.Second,
		Now: clk.Now, Observer: obs,
	})
	// POSTs are not retried, so failures surface and count.
	var failed int
	for range 6 {
		if _, err := do(t, p, "POST", "/x", "b"); err != nil {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("%d POSTs failed, want 2 before ejection", failed)
	}
	if p.Healthy() != 1 {
		t.Fatalf("Healthy() = %d after ejection, want 1", p.Healthy())
	}
	st := p.Nodes()
	if !st[0].Ejected || st[0].Available || !st[0].Healthy {
		t.Errorf("dead node status %+v", st[0])
	}
	clk.Advance(29 * time.Second)
	if p.Healthy() != 1 {
		t.Fatal("re-admitted before cooldown")
	}
	clk.Advance(2 * time.Second)
	if p.Healthy() != 2 {
		t.Fatal("not re-admitted after cooldown")
	}
	_, changes := obs.snapshot()
	want := []string{dead + " up", live.URL + " up", dead + " down", dead + " up"}
	if strings.Join(changes, ",") != strings.Join(want, ",") {
		t.Errorf("health changes %v, want %v", changes, want)
	}
}

func TestActiveHealthChecks(t *testing.T) {
	var sick atomic.Bool
	health := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && sick.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "OK")
	}
	a := newBackend(t, health)
	p := newPool(t, Options{Nodes: []string{a.URL}, UnhealthyAfter: 2})
	ctx := context.Background()
	sick.Store(true)
	p.Check(ctx)
	if p.Healthy() != 1 {
		t.Fatal("unhealthy after one failed check; want 2")
	}
	p.Check(ctx)
	if p.Healthy() != 0 {
		t.Fatal("still healthy after two failed checks")
	}
	if _, err := do(t, p, "GET", "/x", ""); !errors.Is(err, ErrNoHealthyUpstream) {
		t.Fatalf("err = %v, want ErrNoHealthyUpstream", err)
	}
	sick.Store(false)
	p.Check(ctx)
	if p.Healthy() != 1 {
		t.Fatal("not healthy after a passing check")
	}
}

func TestPassingCheckReadmitsEjectedNode(t *testing.T) {
	var broken atomic.Bool
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" && broken.Load() {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "OK")
	}
	a := newBackend(t, h)
	p := newPool(t, Options{Nodes: []string{a.URL}, EjectAfter: 1, EjectCooldown: time.Hour})
	broken.Store(true)
	if _, err := do(t, p, "GET", "/x", ""); err == nil {
		t.Fatal("want transport error")
	}
	if p.Healthy() != 0 {
		t.Fatal("not ejected")
	}
	broken.Store(false)
	p.Check(context.Background())
	if p.Healthy() != 1 {
		t.Fatal("passing check did not re-admit")
	}
}

func TestStartRunsChecksUntilCancelled(t *testing.T) {
	var checks atomic.Int64
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	p := newPool(t, Options{Nodes: []string{a.URL}, HealthInterval: 10 * time.Millisecond, UnhealthyAfter: 1})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	for p.Healthy() != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	for checks.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
}

func TestResponseHeaderTimeoutIsATimeout(t *testing.T) {
	release := make(chan struct{})
	a := newBackend(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	p := newPool(t, Options{Nodes: []string{a.URL}, ResponseHeaderTimeout: 50 * time.Millisecond})
	_, err := do(t, p, "GET", "/hang", "")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestConcurrentTrafficWithFailover(t *testing.T) {
	a, b := newBackend(t, nil), newBackend(t, nil)
	dead := deadURL(t)
	obs := &recObserver{}
	p := newPool(t, Options{Nodes: []string{a.URL, dead, b.URL}, Selector: &LeastConn{}, Observer: obs, EjectAfter: 2})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if _, err := do(t, p, "GET", "/x", ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := a.hits.Load() + b.hits.Load(); got != 200 {
		t.Errorf("live nodes served %d, want 200", got)
	}
	for _, n := range p.Nodes() {
		if n.InFlight != 0 {
			t.Errorf("%s: in flight %d after all bodies closed", n.URL, n.InFlight)
		}
		if n.URL == dead && n.Available {
			t.Error("dead node still available")
		}
	}
	ups, _ := obs.snapshot()
	var failures int
	for _, u := range ups {
		if strings.HasPrefix(u, dead+" other ") {
			failures++
		}
	}
	if failures < 2 {
		t.Errorf("transport failures observed: %d", failures)
	}
}

type closeCounter struct {
	io.Reader
	closes atomic.Int64
}

func (c *closeCounter) Close() error { c.closes.Add(1); return nil }

func TestRetriedBodyClosedOnce(t *testing.T) {
	live := newBackend(t, nil)
	p := newPool(t, Options{Nodes: []string{deadURL(t), live.URL}, EjectAfter: 1000})
	for i := range 4 {
		body := &closeCounter{Reader: strings.NewReader("payload")}
		req, _ := http.NewRequest("PUT", "http://gateway.invalid/x", body)
		req.Header.Set("Idempotency-Key", "k")
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := <-live.bodies; got != "payload" {
			t.Fatalf("attempt %d: body %q", i, got)
		}
		// The transport may close the body in its own goroutine.
		for body.closes.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		if n := body.closes.Load(); n != 1 {
			t.Fatalf("body closed %d times", n)
		}
	}
	// Without a healthy node the body is closed too.
	p2 := newPool(t, Options{Nodes: []string{live.URL}, EjectAfter: 1})
	p2.nodes[0].healthy.Store(false)
	body := &closeCounter{Reader: strings.NewReader("x")}
	req, _ := http.NewRequest("POST", "http://gateway.invalid/x", body)
	if _, err := p2.RoundTrip(req); !errors.Is(err, ErrNoHealthyUpstream) || body.closes.Load() != 1 {
		t.Fatalf("err %v, closes %d", err, body.closes.Load())
	}
}
