package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/gateway"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// runningGateway is a serve run started by startGateway.
type runningGateway struct {
	base   string // http://127.0.0.1:port
	cfg    string // config file path
	stderr *syncBuffer
	stdout *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startGateway runs `serve --config <yaml>` in the background and waits
// until /-/healthz answers.
func startGateway(t *testing.T, dir, yaml string, env []string) *runningGateway {
	t.Helper()
	g := &runningGateway{cfg: writeFile(t, dir, "gw.yaml", yaml), stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan int, 1)}
	var c struct{ Listen string }
	for _, line := range strings.Split(yaml, "\n") {
		if v, ok := strings.CutPrefix(line, "listen: "); ok {
			c.Listen = v
		}
	}
	g.base = "http://" + c.Listen
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go func() { g.done <- run(ctx, []string{"serve", "--config", g.cfg}, env, g.stdout, g.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(g.base + "/-/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case code := <-g.done:
			g.done <- code // for the cleanup
			t.Fatalf("serve exited %d before serving: %s", code, g.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not up: %v\n%s", err, g.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// backend is a stand-in Superset node that records what reached it.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, "OK")
			return
		}
		w.Header().Set("Server", "gunicorn")
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Saw-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(s.Close)
	return s
}

func baseYAML(t *testing.T, listen, metricsListen, upstream, dataDir string) string {
	t.Helper()
	// The session vault needs Superset's SECRET_KEY; any strong value does
	// for a backend that sets no Flask cookie.
	sk := writeFile(t, t.TempDir(), "superset-secret", fmt.Sprintf("%x", sha256.Sum256([]byte(t.Name()))))
	return fmt.Sprintf(`listen: %s
upstreams: [%s]
store: {data_dir: %s}
metrics: {listen: "%s"}
superset: {secret_key_file: "%s"}
health_check: {interval: 200ms, timeout: 100ms}
limits: {shutdown_grace: 2s}
audit: {output: stdout}
log: {level: info}
`, listen, upstream, dataDir, metricsListen, sk)
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	be := backend(t, "node-a")
	metricsAddr := freePort(t)
	g := startGateway(t, dir, baseYAML(t, freePort(t), metricsAddr, be.URL, filepath.Join(dir, "data")), nil)

	// Readiness: embedded store and one healthy node, with JSON details.
	resp, body := get(t, g.base+"/-/readyz")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d: %s", resp.StatusCode, body)
	}
	var env struct {
		Ready   bool
		Details gateway.ReadyDetails
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("readyz body %q: %v", body, err)
	}
	ready := env.Details
	if !env.Ready || !ready.Store.OK || ready.Store.Backend != "bolt" || !ready.Store.Durable || !ready.Store.Fresh ||
		ready.Upstreams.Healthy != 1 || ready.Upstreams.Total != 1 {
		t.Fatalf("readyz details %+v", ready)
	}
	if strings.Contains(body, be.URL) {
		t.Fatal("readyz reveals upstream addresses")
	}

	// Pass-through with the gateway's headers, spoofed X-Forwarded-For
	// replaced, Superset's Server header removed.
	req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/dashboard/?q=1", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusOK || string(b) != "node-a GET /api/v1/dashboard/?q=1" {
		t.Fatalf("pass-through: %d %q", r2.StatusCode, b)
	}
	if xff := r2.Header.Get("X-Saw-Forwarded-For"); xff != "127.0.0.1" {
		t.Fatalf("upstream saw X-Forwarded-For %q, want only the real peer", xff)
	}
	if r2.Header.Get("X-Request-Id") == "" || r2.Header.Get("X-Content-Type-Options") != "nosniff" || r2.Header.Get("Server") != "" {
		t.Fatalf("gateway headers missing: %v", r2.Header)
	}

	// Metrics on their own listener, not on the public one.
	_, m := get(t, "http://"+metricsAddr+"/metrics")
	for _, name := range []string{"superset_gateway_requests_total", "superset_gateway_store_durable", "superset_gateway_upstream_healthy",
		`superset_gateway_store_operation_duration_seconds_count{op="ping"}`} {
		if !strings.Contains(m, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	if resp, _ := get(t, g.base+"/metrics"); strings.Contains(resp.Header.Get("Content-Type"), "openmetrics") {
		t.Fatal("metrics served on the public listener")
	}

	// The fresh store was audited on stdout.
	if !strings.Contains(g.stdout.String(), `"event":"store.generation_created"`) {
		t.Fatalf("no audit event for a fresh store: %q", g.stdout.String())
	}

	// Graceful stop: an in-flight request finishes, then run returns 0.
	g.cancel()
	select {
	case code := <-g.done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, g.stderr.String())
		}
		g.done <- code // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	if _, err := http.Get(g.base + "/-/healthz"); err == nil {
		t.Fatal("still serving after stop")
	}
	logs := g.stderr.String()
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Fatalf("no clean stop in logs: %s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
}

func TestGracefulStopDrainsInFlight(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer be.Close()
	g := startGateway(t, dir, baseYAML(t, freePort(t), "", be.URL, filepath.Join(dir, "data")), nil)
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(g.base + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	g.cancel()
	time.Sleep(200 * time.Millisecond) // shutdown has begun
	select {
	case code := <-g.done:
		t.Fatalf("serve exited %d with a request in flight", code)
	default:
	}
	close(release)
	if s := <-got; s != "done" {
		t.Fatalf("in-flight request cut: %q", s)
	}
	select {
	case code := <-g.done:
		g.done <- code
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after draining")
	}
}

func TestCookieKeysReusedAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	be := backend(t, "a")
	y := baseYAML(t, freePort(t), "", be.URL, data)
	g := startGateway(t, dir, y, nil)
	g.cancel()
	<-g.done
	g.done <- 0
	first, err := os.ReadFile(filepath.Join(data, config.CookieKeysFileName))
	if err != nil {
		t.Fatal(err)
	}
	g2 := startGateway(t, dir, y, nil)
	second, _ := os.ReadFile(filepath.Join(data, config.CookieKeysFileName))
	if string(first) != string(second) {
		t.Fatal("cookie keys regenerated on the second start")
	}
	if !strings.Contains(g2.stderr.String(), "cookie keys loaded") {
		t.Fatalf("second start did not reuse the keys: %s", g2.stderr.String())
	}
	// The store remembers its generation across runs: not fresh any more.
	_, body := get(t, g2.base+"/-/readyz")
	if strings.Contains(body, `"fresh_generation":true`) {
		t.Fatalf("second start saw a fresh store: %s", body)
	}
}

func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	a := backend(t, "node-a")
	b := backend(t, "node-b")
	listen, metricsAddr := freePort(t), freePort(t)
	data := filepath.Join(dir, "data")
	g := startGateway(t, dir, baseYAML(t, listen, metricsAddr, a.URL, data), nil)
	hup := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLog := func(msg string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(g.stderr.String(), msg) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in logs:\n%s", msg, g.stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// A bad config is refused and logged; the old one keeps serving.
	if err := os.WriteFile(g.cfg, []byte(baseYAML(t, listen, metricsAddr, "ftp://nope", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	waitLog("reload failed; the running configuration stays", 1)
	if !strings.Contains(g.stderr.String(), `upstreams[0]: \"ftp://nope\" is not an http(s) URL`) {
		t.Fatalf("the reason is not logged: %s", g.stderr.String())
	}
	if _, body := get(t, g.base+"/x"); body != "node-a GET /x" {
		t.Fatalf("after a bad reload: %q", body)
	}

	// A good config is swapped in: traffic moves to node-b.
	if err := os.WriteFile(g.cfg, []byte(baseYAML(t, listen, metricsAddr, b.URL, data)+"headers: {overrides: [{prefix: /x, set: {X-Reloaded: \"yes\"}}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	waitLog("configuration reloaded", 1)
	resp, body := get(t, g.base+"/x")
	if body != "node-b GET /x" || resp.Header.Get("X-Reloaded") != "yes" {
		t.Fatalf("after a good reload: %q %v", body, resp.Header)
	}
	// The health series follow the nodes: node-a's is gone.
	_, exp := get(t, "http://"+metricsAddr+"/metrics")
	if strings.Contains(exp, `upstream_healthy{node="`+a.URL+`"}`) || !strings.Contains(exp, `upstream_healthy{node="`+b.URL+`"} 1`) {
		t.Fatalf("health series after the reload (a %s, b %s):\n%s", a.URL, b.URL, grepLines(exp, "upstream_healthy"))
	}

	// Keys that need a restart are each reported and keep their running
	// value; the rest is applied. limits.max_body_bytes is one (the
	// guest-token form reader is built once): a 100-byte body still
	// passes although the new file says 10.
	if err := os.WriteFile(g.cfg, []byte(strings.Replace(baseYAML(t, listen, metricsAddr, a.URL, filepath.Join(dir, "other")), "limits: {shutdown_grace: 2s}", "limits: {shutdown_grace: 2s, max_body_bytes: 10}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	waitLog("configuration reloaded", 2)
	for _, k := range []string{"store.data_dir", "limits.max_body_bytes"} {
		if !strings.Contains(g.stderr.String(), `"key":"`+k+`"`) {
			t.Fatalf("restart-only change of %s not reported: %s", k, g.stderr.String())
		}
	}
	if _, body := get(t, g.base+"/x"); body != "node-a GET /x" {
		t.Fatalf("after the third reload: %q", body)
	}
	resp, err := http.Post(g.base+"/x", "application/octet-stream", strings.NewReader(strings.Repeat("b", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a restart-only limit was applied by a reload: POST of 100 bytes got %d", resp.StatusCode)
	}
}

func TestReadyzFailsWithoutAHealthyUpstream(t *testing.T) {
	dir := t.TempDir()
	dead := "http://" + freePort(t)
	g := startGateway(t, dir, baseYAML(t, freePort(t), "", dead, filepath.Join(dir, "data")), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := get(t, g.base+"/-/readyz")
		if resp.StatusCode == http.StatusServiceUnavailable {
			if !strings.Contains(body, `"healthy":0`) || !strings.Contains(body, `"ok":true`) {
				t.Fatalf("details %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still ready with a dead upstream: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, _ := get(t, g.base+"/api/v1/chart/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("no healthy node: %d %v", resp.StatusCode, resp.Header)
	}
	// Liveness does not depend on upstreams.
	if resp, _ := get(t, g.base+"/-/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
}

func TestServeWithRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true, Password: "redis-pw-for-test"})
	dir := t.TempDir()
	be := backend(t, "node-a")
	g := startGateway(t, dir, baseYAML(t, freePort(t), "", be.URL, filepath.Join(dir, "data")), []string{"SG_STORE_REDIS_URL=" + rs.URL()})
	resp, body := get(t, g.base+"/-/readyz")
	if resp.StatusCode != http.StatusOK ||
		!strings.Contains(body, `"backend":"redis"`) || !strings.Contains(body, `"appendonly":true`) ||
		!strings.Contains(body, `"appendfsync":"always"`) || !strings.Contains(body, `"durable":true`) {
		t.Fatalf("readyz %d %s", resp.StatusCode, body)
	}
	if _, body := get(t, g.base+"/x"); body != "node-a GET /x" {
		t.Fatalf("pass-through %q", body)
	}
	if strings.Contains(g.stderr.String(), "redis-pw-for-test") {
		t.Fatal("the Redis password was logged")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", gateway.BoltFileName)); err == nil {
		t.Fatal("the embedded store was opened although Redis is configured")
	}
	// Redis going away makes the gateway unready, not dead.
	rs.Stop()
	resp, _ = get(t, g.base+"/-/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis down: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g.base+"/-/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with Redis down: %d", resp.StatusCode)
	}
}

func TestListenAddressInUseExits1(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := writeFile(t, dir, "gw.yaml", baseYAML(t, ln.Addr().String(), "", "http://127.0.0.1:1", filepath.Join(dir, "data")))
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() { done <- run(context.Background(), []string{"serve", "--config", p}, nil, io.Discard, &stderr) }()
	select {
	case code := <-done:
		if code != exitFailure || !strings.Contains(stderr.String(), "superset-gateway: proxy: listen "+ln.Addr().String()) {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve hangs when its port is taken")
	}
}

// TestWipeWhileRunningRecreatesTheGenerationMarker: a FLUSHALL under a
// running gateway is answered with a new global stamp and a new generation
// marker, so the next start does not take the same wipe for a new one.
func TestWipeWhileRunningRecreatesTheGenerationMarker(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	dir := t.TempDir()
	be := backend(t, "node-a")
	g := startGateway(t, dir, baseYAML(t, freePort(t), "", be.URL, filepath.Join(dir, "data")), []string{"SG_STORE_REDIS_URL=" + rs.URL()})
	if v, err := rs.Do("GET", "meta:generation"); err != nil || v == "" {
		t.Fatalf("no generation marker after start: %q %v", v, err)
	}
	// JWTs must be issued after the start's global stamp (whole seconds).
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	secret := fmt.Sprintf("%x", sha256.Sum256([]byte(t.Name()))) // baseYAML's Superset secret
	call := func() int {
		tok, err := apijwt.Mint([]byte(secret), apijwt.MintOptions{Subject: "7", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, g.base+"/api/v1/chart/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(); code != http.StatusOK {
		t.Fatalf("a fresh JWT before the wipe: %d", code)
	}
	if _, err := rs.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past session.cache_ttl (1s)
	call()                              // reads the vanished global epoch: restamp
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := rs.Do("GET", "meta:generation")
		if err == nil && v != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation marker not re-created after the wipe: %q %v\n%s", v, err, g.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g, err := rs.Do("GET", "epoch:global"); err != nil || g == "" {
		t.Fatalf("global epoch not re-stamped after the wipe: %q %v", g, err)
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
