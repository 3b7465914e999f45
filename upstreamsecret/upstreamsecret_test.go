package upstreamsecret_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/upstreamsecret"
)

const goodKey = "kU4n9Qx2Lr7Vt1Zp8Hc3Wm6Yb0Ds5Fg2Je7Ta4Nq-gateway"

// node is a fake Superset node that signs its session cookie and guest
// tokens with key and counts what reaches it.
type node struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newNode(t *testing.T, key string) *node {
	t.Helper()
	n := &node{}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.hits.Add(1)
		switch {
		case r.URL.Path == "/health":
			io.WriteString(w, "OK")
		case r.URL.Path == "/api/v1/security/guest_token/" && r.Method == http.MethodPost:
			tok := testkit.Forge(t, map[string]any{"alg": "HS256", "typ": "JWT"}, map[string]any{
				"type": "guest", "iat": 1.5, "exp": 9e9, "user": map[string]any{}, "resources": []any{}, "rls_rules": []any{},
			}, []byte(key))
			fmt.Fprintf(w, `{"token": %q}`, tok)
		default:
			c, err := flaskcookie.Encode(flaskcookie.Session{"csrf_token": "x"}, key, time.Now())
			if err != nil {
				t.Error(err)
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: c, HttpOnly: true, Path: "/"})
			io.WriteString(w, "hello from "+key[:4])
		}
	}))
	t.Cleanup(n.srv.Close)
	return n
}

type gauge struct {
	mu sync.Mutex
	m  map[string]string // node/secret → known ("" cleared)
}

func (g *gauge) SetUpstreamSecretMismatch(node, secret, known string, mismatch bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]string{}
	}
	if !mismatch {
		known = ""
	}
	g.m[node+"/"+secret] = known
}

func (g *gauge) get(k string) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.m[k]
	return v, ok
}

type auditor struct {
	mu sync.Mutex
	fs []upstreamsecret.Finding
}

func (a *auditor) AuditUpstreamSecret(_ context.Context, f upstreamsecret.Finding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fs = append(a.fs, f)
}

func setup(t *testing.T, refuse bool, keys ...string) ([]*node, *upstream.Pool, *upstreamsecret.Checker, *gauge, *auditor) {
	t.Helper()
	var nodes []*node
	var urls []string
	for _, k := range keys {
		n := newNode(t, k)
		nodes = append(nodes, n)
		urls = append(urls, n.srv.URL)
	}
	g, a := &gauge{}, &auditor{}
	c := upstreamsecret.New(upstreamsecret.Options{
		Nodes: urls, SecretKey: []byte(goodKey), GuestSecret: []byte(goodKey + "-guest"),
		Refuse: refuse, Observer: g, Auditor: a,
	})
	p, err := upstream.New(upstream.Options{Nodes: urls, Vetter: vetter{c}})
	if err != nil {
		t.Fatal(err)
	}
	return nodes, p, c, g, a
}

func get(p *upstream.Pool, method, path string) (string, error) {
	req := httptest.NewRequest(method, "http://gateway"+path, nil)
	resp, err := p.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestReportOnly: a node on the Helm chart's default is named once (gauge,
// audit, Findings) with the entry it matches and keeps its traffic; the
// node on the configured key is not named.
func TestReportOnly(t *testing.T) {
	nodes, p, c, g, a := setup(t, false, goodKey, "thisISaSECRET_1234")
	for range 10 {
		if _, err := get(p, http.MethodGet, "/login/"); err != nil {
			t.Fatal(err)
		}
	}
	if nodes[1].hits.Load() != 5 {
		t.Errorf("mismatched node got %d of 10 requests in report-only mode, want 5", nodes[1].hits.Load())
	}
	fs := c.Findings()
	if len(fs) != 1 || fs[0].Index != 1 || fs[0].Secret != upstreamsecret.SecretKey || fs[0].Known != "superset-helm-chart" || fs[0].Refused {
		t.Fatalf("findings = %+v", fs)
	}
	if k, _ := g.get(nodes[1].srv.URL + "/secret_key"); k != "superset-helm-chart" {
		t.Errorf("gauge of the bad node: %q", k)
	}
	if k, ok := g.get(nodes[0].srv.URL + "/secret_key"); !ok || k != "" {
		t.Errorf("gauge of the good node: %q %v (want cleared)", k, ok)
	}
	if len(a.fs) != 1 {
		t.Errorf("%d audit events, want exactly 1 (once per node, not per request)", len(a.fs))
	}
	for _, f := range a.fs {
		if strings.Contains(fmt.Sprintf("%+v", f), "thisISaSECRET") {
			t.Error("the finding carries the secret")
		}
	}
}

// TestRefuse: with Refuse, the answer that exposes the node is discarded
// (a GET is retried on the good node, so the client never sees it) and the
// node gets no further traffic; with no trusted node left the pool answers
// ErrNodesRefused.
func TestRefuse(t *testing.T) {
	nodes, p, c, _, _ := setup(t, true, goodKey, "an-unlisted-but-different-key-0123456789")
	for range 10 {
		body, err := get(p, http.MethodGet, "/login/")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(body, "hello from kU4n") {
			t.Fatalf("client got %q from the mismatched node", body)
		}
	}
	if h := nodes[1].hits.Load(); h != 1 {
		t.Errorf("refused node got %d requests, want only the one that exposed it", h)
	}
	if fs := c.Findings(); len(fs) != 1 || fs[0].Known != upstreamsecret.KnownNone || !fs[0].Refused {
		t.Fatalf("findings = %+v", fs)
	}
	var st []upstream.NodeStatus = p.Nodes()
	if !st[1].Refused || st[1].Available || p.Healthy() != 1 {
		t.Errorf("status = %+v healthy=%d", st, p.Healthy())
	}

	// Only mismatched nodes: fail closed.
	_, p2, _, _, _ := setup(t, true, "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET")
	if _, err := get(p2, http.MethodGet, "/login/"); !errors.Is(err, upstream.ErrNodesRefused) {
		t.Fatalf("first answer: err = %v, want ErrNodesRefused", err)
	}
	if _, err := get(p2, http.MethodGet, "/static/x.js"); !errors.Is(err, upstream.ErrNodesRefused) {
		t.Fatalf("later request: err = %v, want ErrNodesRefused", err)
	}
	// A POST is not repeated elsewhere: its exposing answer is an error.
	nodes3, p3, _, _, _ := setup(t, true, "TEST_NON_DEV_SECRET", goodKey)
	if _, err := get(p3, http.MethodPost, "/login/"); !errors.Is(err, upstream.ErrNodesRefused) {
		t.Fatalf("POST: err = %v", err)
	}
	if nodes3[1].hits.Load() != 0 {
		t.Error("the POST was replayed on another node")
	}
}

// TestGuestToken: a guest token issued under the default guest secret names
// the node for the guest secret; its body still reaches the client whole.
func TestGuestToken(t *testing.T) {
	_, p, c, _, _ := setup(t, false, "test-guest-secret-change-me")
	body, err := get(p, http.MethodPost, "/api/v1/security/guest_token/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, `{"token": "ey`) {
		t.Errorf("client got %q", body)
	}
	fs := c.Findings()
	if len(fs) != 1 || fs[0].Secret != upstreamsecret.GuestSecret || fs[0].Known != "superset-guest-default" {
		t.Fatalf("findings = %+v", fs)
	}
}

// TestOncePerNode: concurrent first answers settle the node once.
func TestOncePerNode(t *testing.T) {
	_, p, c, _, a := setup(t, false, "thisISaSECRET_1234")
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() { _, _ = get(p, http.MethodGet, "/") })
	}
	wg.Wait()
	if len(c.Findings()) != 1 || len(a.fs) != 1 {
		t.Errorf("findings %d, audit events %d; want 1 and 1", len(c.Findings()), len(a.fs))
	}
}

func BenchmarkInspectSettled(b *testing.B) {
	c := upstreamsecret.New(upstreamsecret.Options{SecretKey: []byte(goodKey)})
	v := c.Node("http://n")
	good, _ := flaskcookie.Encode(flaskcookie.Session{}, goodKey, time.Now())
	resp := &http.Response{Header: http.Header{"Set-Cookie": {"session=" + good}}, Request: httptest.NewRequest("GET", "/", nil)}
	_ = v.Inspect(resp)
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Inspect(resp)
	}
}

// TestProbedBeforeTraffic: a passing health check shows the checker the
// node's login page, so a node on a default key is refused before any
// user request reaches it, and a settled node is not probed again.
func TestProbedBeforeTraffic(t *testing.T) {
	nodes, p, c, _, _ := setup(t, true, goodKey, "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY")
	p.Check(context.Background())
	if fs := c.Findings(); len(fs) != 1 || fs[0].Index != 1 || fs[0].Known != "superset-docs-example" || !fs[0].Refused {
		t.Fatalf("findings after one health round = %+v", fs)
	}
	if p.Healthy() != 1 {
		t.Errorf("healthy = %d, want 1", p.Healthy())
	}
	h0, h1 := nodes[0].hits.Load(), nodes[1].hits.Load()
	p.Check(context.Background())
	// Settled nodes get their /health check only, no second probe.
	if d0, d1 := nodes[0].hits.Load()-h0, nodes[1].hits.Load()-h1; d0 != 1 || d1 != 1 {
		t.Errorf("second health round: %d and %d requests, want 1 each (no probe)", d0, d1)
	}
	for range 4 {
		if body, err := get(p, http.MethodGet, "/"); err != nil || !strings.HasPrefix(body, "hello from kU4n") {
			t.Fatalf("got %q, %v", body, err)
		}
	}
}

// vetter is the gateway's adapter (gateway/upstreamsecret.go), repeated so
// these tests run the checker under a real pool.
type vetter struct{ c *upstreamsecret.Checker }

func (v vetter) Vet(node string) upstream.NodeVet { return v.c.Node(node) }
func (v vetter) ProbePath() string                { return v.c.ProbePath() }

// TestProbeBounded: a node whose answers never carry a signed session
// cookie (server-side sessions) is probed a bounded number of times, not on
// every health check.
func TestProbeBounded(t *testing.T) {
	var logins atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login/" {
			logins.Add(1)
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "server-side-id.sig"})
		}
	}))
	defer srv.Close()
	c := upstreamsecret.New(upstreamsecret.Options{Nodes: []string{srv.URL}, SecretKey: []byte(goodKey), Refuse: true})
	p, err := upstream.New(upstream.Options{Nodes: []string{srv.URL}, Vetter: vetter{c}})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		p.Check(context.Background())
	}
	if n := logins.Load(); n != 3 {
		t.Errorf("%d probes in 10 health rounds, want 3", n)
	}
	if p.Healthy() != 1 || len(c.Findings()) != 0 {
		t.Errorf("an unjudgeable node must stay in: healthy %d findings %v", p.Healthy(), c.Findings())
	}
}

// TestRefuseConcurrentFirstAnswers: while one answer is being judged,
// every other answer of the node already in flight is refused too, none
// slips through (found by e2e: a user request raced the health probe).
func TestRefuseConcurrentFirstAnswers(t *testing.T) {
	for range 20 {
		_, p, _, _, _ := setup(t, true, "thisISaSECRET_1234")
		var wg sync.WaitGroup
		var passed atomic.Int64
		for range 16 {
			wg.Go(func() {
				if _, err := get(p, http.MethodGet, "/"); err == nil {
					passed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := passed.Load(); n != 0 {
			t.Fatalf("%d answers of a refused node reached the client", n)
		}
	}
}
