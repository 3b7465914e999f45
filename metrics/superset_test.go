package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/superset"
)

// supersetGateway is a real proxy.Gateway and upstream.Pool in front of a
// real HTTP backend, with the gateway's metrics, as an attacker meets it.
func supersetGateway(t *testing.T, slow time.Duration, backend http.HandlerFunc) (http.Handler, *prometheus.Registry, *observer.ObservedLogs) {
	t.Helper()
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	pool, err := upstream.New(upstream.Options{Nodes: []string{be.URL}, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	gw, err := proxy.New(proxy.Options{Upstream: pool, Observer: m, Logger: zap.New(core),
		Classify: superset.Classify, SlowThreshold: slow})
	if err != nil {
		t.Fatal(err)
	}
	return gw, reg, logs
}

func TestSupersetSeriesStayFlatUnderPathFlood(t *testing.T) {
	gw, reg, _ := supersetGateway(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	})
	methods := []string{"GET", "POST", "PUT", "DELETE", "PROPFIND", "BREW", "X-EVIL"}
	send := func(i int) {
		paths := []string{
			fmt.Sprintf("/api/v1/dashboard/%d", i),
			fmt.Sprintf("/superset/dashboard/%d/", i),
			fmt.Sprintf("/random/%d/%x", i, i*7919),
			fmt.Sprintf("/static/assets/%d.js", i),
		}
		r := httptest.NewRequest(methods[i%len(methods)], paths[i%len(paths)], nil)
		gw.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Warm every shape up, then count; then flood 10,000 distinct paths.
	for i := range 1000 {
		send(i)
	}
	before := seriesCount(t, reg)
	for i := 1000; i < 11000; i++ {
		send(i)
	}
	if after := seriesCount(t, reg); after != before {
		t.Fatalf("series grew from %d to %d under 10,000 distinct paths", before, after)
	}
	// Unknown methods went somewhere bounded: the other endpoint class.
	if n, err := testutil.GatherAndCount(reg, metrics.NameSupersetRequestsTotal); err != nil || n == 0 {
		t.Fatal("no superset_requests_total series at all: the flood was not observed")
	}
	if c := counterValue(t, reg, metrics.NameSupersetRequestsTotal, "endpoint", "other", "code", "2xx", "caller", "anonymous"); c == 0 {
		t.Fatal("unknown methods and paths were not counted under endpoint=other")
	}
}

func TestSlowSupersetRequestCountedAndLoggedWithRequestID(t *testing.T) {
	gw, reg, logs := supersetGateway(t, 20*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v1/chart/data") {
			time.Sleep(40 * time.Millisecond)
		}
		_, _ = w.Write([]byte("hello"))
	})
	fast := httptest.NewRecorder()
	gw.ServeHTTP(fast, httptest.NewRequest("GET", "/api/v1/dashboard/", nil))
	slow := httptest.NewRecorder()
	gw.ServeHTTP(slow, httptest.NewRequest("POST", "/api/v1/chart/data", strings.NewReader("{}")))

	if c := counterValue(t, reg, metrics.NameSupersetSlowRequestsTotal, "endpoint", "chart_data", "caller", "anonymous"); c != 1 {
		t.Fatalf("slow chart_data = %v, want 1", c)
	}
	if c := counterValue(t, reg, metrics.NameSupersetSlowRequestsTotal, "endpoint", "api_read", "caller", "anonymous"); c != 0 {
		t.Fatalf("slow api_read = %v, want 0", c)
	}
	entries := logs.FilterMessage("slow superset request").All()
	if len(entries) != 1 {
		t.Fatalf("slow log entries = %d, want 1", len(entries))
	}
	id := slow.Header().Get("X-Request-Id")
	if got := entries[0].ContextMap()["request_id"]; id == "" || got != id {
		t.Fatalf("slow log request_id = %v, want the response's %q", got, id)
	}
	if got := histCount(t, reg, metrics.NameSupersetTTFB, "endpoint", "chart_data"); got != 1 {
		t.Fatalf("chart_data ttfb count = %d, want 1", got)
	}
	if got := histCount(t, reg, metrics.NameSupersetResponseBytes, "endpoint", "api_read"); got != 1 {
		t.Fatalf("api_read response bytes count = %d, want 1", got)
	}
}

func TestObserveSupersetFoldsUnknownLabels(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveSuperset(proxy.SupersetSample{Endpoint: "/etc/passwd", Node: "n1", Caller: "root", Status: 200})
	if c := counterValue(t, reg, metrics.NameSupersetRequestsTotal, "endpoint", "other", "node", "n1", "caller", "other", "code", "2xx"); c != 1 {
		t.Fatalf("folded count = %v, want 1", c)
	}
}

// seriesCount is the number of series the registry exposes.
func seriesCount(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}
