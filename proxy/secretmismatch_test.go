package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

// refuseAll is a Vetter that has found out every node.
type refuseAll struct{}

func (refuseAll) Vet(string) upstream.NodeVet { return refusedNode{} }
func (refuseAll) ProbePath() string           { return "" }

type refusedNode struct{}

func (refusedNode) Refused() bool                { return true }
func (refusedNode) Inspect(*http.Response) error { return nil }
func (refusedNode) Settled() bool                { return true }

// TestEveryNodeRefusedBySecretCheck: with every node taken out by the
// upstream secret check the client gets 503, Retry-After and the
// operator-facing reason (no node, no secret), it is counted under its own
// reason, and nothing reaches the node.
func TestEveryNodeRefusedBySecretCheck(t *testing.T) {
	s := newStack(t, nil, func(_ *Options, po *upstream.Options) { po.Vetter = refuseAll{} })
	resp, body := s.get(t, "/login/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "different SECRET_KEY") || strings.Contains(body, s.backend.URL) {
		t.Errorf("page: %s", body)
	}
	if s.backend.count() != 0 {
		t.Error("a refused node was sent the request")
	}
	_, _, refusals := s.obs.snapshot()
	if len(refusals) != 1 || refusals[0] != "upstream_secret_mismatch" {
		t.Errorf("refusals = %v", refusals)
	}
}
