//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// TestConformance states the protocol facts against the real Superset.
func TestConformance(t *testing.T) {
	conformance.Run(t, shared(t).c.Target)
}

// TestConformanceServerSideSessions runs the same facts against a Superset
// with SESSION_SERVER_SIDE=True on a real Redis (flask-session).
func TestConformanceServerSideSessions(t *testing.T) {
	rd := redistest.Start(t, redistest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := harness.Bootstrap(ctx, harness.Options{Venv: os.Getenv("SUPERSET_VENV"), RedisURL: rd.URL(), Log: os.Stderr})
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
	if !c.Target.ServerSideSessions {
		t.Fatal("target does not report server-side sessions")
	}
	conformance.Run(t, c.Target)

	// A1 test 3 with SESSION_SERVER_SIDE: Superset itself keeps the
	// pre-login sid across login, so here the gateway's rotation is all
	// that stands between a planted id and the victim's account.
	t.Run("gateway/fixation", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		g, err := harness.StartGateway(ctx, harness.GatewayOptions{
			Binary: buildGateway(t), Superset: s, Upstreams: []string{c.Target.BaseURL}, DataDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			g.Stop()
			if t.Failed() {
				t.Log(g.LogTail())
			}
		})
		fixationHolds(t, g.URL, c.Target.Alpha)
	})
}

// TestTwoNodes: both nodes share the metadata DB and SECRET_KEY, so a
// session cookie and a JWT from one node work on the other.
func TestTwoNodes(t *testing.T) {
	e := shared(t)
	if len(e.c.Nodes) != 2 {
		t.Fatalf("%d nodes", len(e.c.Nodes))
	}
	tg0, tg1 := e.c.TargetFor(0), e.c.TargetFor(1)
	if tg0.BaseURL == tg1.BaseURL {
		t.Fatal("nodes share a URL")
	}
	cookie := formLogin(t, tg0, tg0.Alpha)
	req, _ := http.NewRequest(http.MethodGet, tg1.BaseURL+"/api/v1/me/", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("node 0's cookie on node 1: %d, want 200", resp.StatusCode)
	}
}
