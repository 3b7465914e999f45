//go:build !race

// The race detector instruments memory accesses and may allocate, so the
// allocation guarantee is checked only in ordinary builds.

package metrics_test

import (
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/proxy"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	m, _ := newMetrics(t)
	m.ObserveRequest("api", 200, time.Millisecond) // first use builds the children
	m.ObserveUpstream("n1", "api", 200, time.Millisecond)
	m.ObserveStoreOp("get", time.Millisecond, nil)
	m.ObserveRefusal("r")
	sample := proxy.SupersetSample{Endpoint: "chart_data", Node: "n1", Caller: "browser_session", Status: 200,
		TTFB: time.Millisecond, Total: 2 * time.Millisecond, ReqBytes: 100, RespBytes: 5000}
	m.ObserveSuperset(sample)
	allocs := testing.AllocsPerRun(1000, func() {
		m.InFlight(1)
		m.ObserveRequest("api", 200, time.Millisecond)
		m.ObserveUpstream("n1", "api", 200, time.Millisecond)
		m.ObserveStoreOp("get", time.Millisecond, nil)
		m.ObserveRefusal("r")
		m.ObserveSuperset(sample)
		m.InFlight(-1)
	})
	if allocs != 0 {
		t.Fatalf("per-request observers allocate %v times per request, want 0", allocs)
	}
}
