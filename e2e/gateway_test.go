//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// buildGateway compiles ./cmd/superset-gateway into a temp dir.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "superset-gateway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/superset-gateway")
	cmd.Dir = ".." // the module root, from e2e/
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/superset-gateway: %v\n%s", err, out)
	}
	return bin
}

// startGateway runs the real gateway binary in front of the shared
// Superset's nodes, with the embedded store in a temp dir.
func startGateway(t *testing.T, e *env) *harness.Gateway {
	t.Helper()
	return gatewayFor(t, e.s, nodeURLs(e))
}

// gatewayFor starts a gateway in front of upstreams of s, with extra
// config lines; it stops when t ends and shows its log if t failed.
func gatewayFor(t *testing.T, s *harness.Superset, upstreams []string, extra ...string) *harness.Gateway {
	t.Helper()
	return startGatewayT(t, harness.GatewayOptions{
		Binary: buildGateway(t), Superset: s, Upstreams: upstreams, DataDir: t.TempDir(), Extra: extra,
	})
}

// startGatewayT starts the gateway o describes, failing tb if it does not
// come up within two minutes; it stops when tb ends and shows its log if
// tb failed.
func startGatewayT(tb testing.TB, o harness.GatewayOptions) *harness.Gateway {
	tb.Helper()
	return startGatewayOn(tb, tb, o)
}

// startGatewayOn is startGatewayT failing tb but living as long as owner
// (a parent test that outlives tb).
func startGatewayOn(tb, owner testing.TB, o harness.GatewayOptions) *harness.Gateway {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := harness.StartGateway(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(func() {
		g.Stop()
		if owner.Failed() {
			owner.Log(g.LogTail())
		}
	})
	return g
}

// nodeURLs are the URLs of e's Superset nodes.
func nodeURLs(e *env) []string {
	var ups []string
	for _, n := range e.c.Nodes {
		ups = append(ups, n.URL)
	}
	return ups
}

// ownSuperset bootstraps and starts a one-node Superset for t alone, for
// a configuration the shared one cannot have (o.Log and, when empty,
// o.Venv are filled in); it goes when t ends and shows its logs if t failed.
func ownSuperset(t *testing.T, o harness.Options) (*harness.Superset, *harness.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if o.Venv == "" {
		o.Venv = os.Getenv("SUPERSET_VENV")
	}
	o.Log = os.Stderr
	s, err := harness.Bootstrap(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := s.Start(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		c.Stop()
	})
	return s, c
}

// TestGatewayPassThrough: Superset's /health and login page reach the
// client through the gateway.
func TestGatewayPassThrough(t *testing.T) {
	g := startGateway(t, shared(t))
	get := func(path string) (*http.Response, string) {
		t.Helper()
		c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Get(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/health"); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "OK" {
		t.Errorf("GET /health through the gateway: %d %q, want 200 OK", resp.StatusCode, body)
	}
	resp, body := get("/login/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /login/ through the gateway: %d", resp.StatusCode)
	}
	if !regexp.MustCompile(`name="csrf_token"`).MatchString(body) {
		t.Errorf("GET /login/ through the gateway: no csrf_token input")
	}
}
