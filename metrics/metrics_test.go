package metrics_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/store"
)

func newMetrics(t testing.TB) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return metrics.New(reg), reg
}

func TestObserveRequestCountsByClassAndStatusClass(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveRequest("api", 200, 10*time.Millisecond)
	m.ObserveRequest("api", 204, 10*time.Millisecond)
	m.ObserveRequest("api", 404, time.Millisecond)
	m.ObserveRequest("static", 304, time.Millisecond)
	m.ObserveRequest("api", 499, time.Millisecond)
	m.ObserveRequest("api", 0, time.Millisecond) // never a valid status: "other"

	want := `
# HELP superset_gateway_requests_total Requests answered by the gateway, by route class and status class (2xx, 4xx, …).
# TYPE superset_gateway_requests_total counter
superset_gateway_requests_total{class="api",code="1xx"} 0
superset_gateway_requests_total{class="api",code="2xx"} 2
superset_gateway_requests_total{class="api",code="3xx"} 0
superset_gateway_requests_total{class="api",code="4xx"} 2
superset_gateway_requests_total{class="api",code="5xx"} 0
superset_gateway_requests_total{class="api",code="other"} 1
superset_gateway_requests_total{class="static",code="1xx"} 0
superset_gateway_requests_total{class="static",code="2xx"} 0
superset_gateway_requests_total{class="static",code="3xx"} 1
superset_gateway_requests_total{class="static",code="4xx"} 0
superset_gateway_requests_total{class="static",code="5xx"} 0
superset_gateway_requests_total{class="static",code="other"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameRequestsTotal); err != nil {
		t.Fatal(err)
	}
	// Both classes have a histogram; api saw five observations.
	if n, err := testutil.GatherAndCount(reg, metrics.NameRequestDuration); err != nil || n != 2 {
		t.Fatalf("duration series = %d, want 2", n)
	}
	if got := histCount(t, reg, metrics.NameRequestDuration, "class", "api"); got != 5 {
		t.Fatalf("api duration count = %d, want 5", got)
	}
}

func TestInFlight(t *testing.T) {
	m, reg := newMetrics(t)
	m.InFlight(1)
	m.InFlight(1)
	m.InFlight(-1)
	if got := gaugeValue(t, reg, metrics.NameInFlight); got != 1 {
		t.Fatalf("in flight = %v, want 1", got)
	}
}

func TestRefusalsByReason(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveRefusal("session_revoked")
	m.ObserveRefusal("session_revoked")
	m.ObserveRefusal("header_too_large")
	m.ObserveCredentialRefusal("access_jwt", "revoked_user")
	want := `
# HELP superset_gateway_refusals_total Requests the gateway refused itself, by reason and by the kind of credential refused (none for request hygiene and upstream failures; session, access_jwt, refresh_jwt, access_token, guest_token, fab_api_key).
# TYPE superset_gateway_refusals_total counter
superset_gateway_refusals_total{credential="access_jwt",reason="revoked_user"} 1
superset_gateway_refusals_total{credential="none",reason="header_too_large"} 1
superset_gateway_refusals_total{credential="none",reason="session_revoked"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameRefusalsTotal); err != nil {
		t.Fatal(err)
	}
}

func TestLabelCardinalityIsCapped(t *testing.T) {
	m, reg := newMetrics(t)
	// A bug feeding request data into a label must not grow series without bound.
	for i := range 1000 {
		m.ObserveRefusal(fmt.Sprintf("reason-%d", i))
	}
	n, err := testutil.GatherAndCount(reg, metrics.NameRefusalsTotal)
	if err != nil {
		t.Fatal(err)
	}
	if n > 200 {
		t.Fatalf("%d refusal series after 1000 distinct reasons; the cap did not hold", n)
	}
	if got := counterValue(t, reg, metrics.NameRefusalsTotal, "reason", "other"); got != float64(1000-(n-1)) {
		t.Fatalf("other = %v, want %d", got, 1000-(n-1))
	}
}

func TestObserveUpstream(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveUpstream("http://10.0.0.1:8088", "api", 200, 20*time.Millisecond)
	m.ObserveUpstream("http://10.0.0.1:8088", "api", 502, 20*time.Millisecond)
	m.ObserveUpstream("http://10.0.0.1:8088", "api", 0, 5*time.Second) // transport error
	m.ObserveUpstream("http://10.0.0.2:8088", "static", 200, time.Millisecond)

	if got := histCount(t, reg, metrics.NameUpstreamDuration, "node", "http://10.0.0.1:8088"); got != 2 {
		t.Fatalf("node 1 latency observations = %d, want 2 (transport errors are not latencies)", got)
	}
	want := `
# HELP superset_gateway_upstream_errors_total Upstream round trips that got no response (connect failure, timeout, reset), by node and route class.
# TYPE superset_gateway_upstream_errors_total counter
superset_gateway_upstream_errors_total{class="api",node="http://10.0.0.1:8088"} 1
superset_gateway_upstream_errors_total{class="static",node="http://10.0.0.2:8088"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameUpstreamErrorsTotal); err != nil {
		t.Fatal(err)
	}
}

func TestNodeHealth(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetNodeHealthy("a", true)
	m.SetNodeHealthy("b", true)
	m.SetNodeHealthy("b", false)
	want := `
# HELP superset_gateway_upstream_healthy 1 if the upstream node is in rotation, 0 if health checks or passive ejection took it out.
# TYPE superset_gateway_upstream_healthy gauge
superset_gateway_upstream_healthy{node="a"} 1
superset_gateway_upstream_healthy{node="b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameUpstreamHealthy); err != nil {
		t.Fatal(err)
	}
	// A reload removed b and added c: b's last state must not linger.
	m.RetainNodes([]string{"a", "c"})
	m.SetNodeHealthy("c", true)
	want = `
# HELP superset_gateway_upstream_healthy 1 if the upstream node is in rotation, 0 if health checks or passive ejection took it out.
# TYPE superset_gateway_upstream_healthy gauge
superset_gateway_upstream_healthy{node="a"} 1
superset_gateway_upstream_healthy{node="c"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameUpstreamHealthy); err != nil {
		t.Fatal(err)
	}
}

func TestObserveStoreOpNotFoundIsSuccess(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveStoreOp("get", time.Millisecond, nil)
	m.ObserveStoreOp("get", time.Millisecond, fmt.Errorf("session %q: %w", "x", store.ErrNotFound))
	m.ObserveStoreOp("get", time.Millisecond, fmt.Errorf("dial: %w", store.ErrUnavailable))
	m.ObserveStoreOp("set", time.Millisecond, errors.New("boom"))

	if got := histCount(t, reg, metrics.NameStoreOperationDuration, "op", "get"); got != 3 {
		t.Fatalf("get observations = %d, want 3", got)
	}
	want := `
# HELP superset_gateway_store_operation_errors_total Store operations that failed (not-found is not a failure), by operation.
# TYPE superset_gateway_store_operation_errors_total counter
superset_gateway_store_operation_errors_total{op="get"} 1
superset_gateway_store_operation_errors_total{op="set"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameStoreOperationErrorsTotal); err != nil {
		t.Fatal(err)
	}
}

func TestStoreDurableReplacesBackend(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetStoreDurability("bolt", true)
	m.SetStoreDurability("redis", false)
	want := `
# HELP superset_gateway_store_durable 1 if an acknowledged store write survives a crash of the backend (bolt, or Redis with appendfsync always), 0 otherwise.
# TYPE superset_gateway_store_durable gauge
superset_gateway_store_durable{backend="redis"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), metrics.NameStoreDurable); err != nil {
		t.Fatal(err)
	}
}

func TestBuildInfo(t *testing.T) {
	m, reg := newMetrics(t)
	if n, _ := testutil.GatherAndCount(reg, metrics.NameBuildInfo); n != 1 {
		t.Fatalf("build info series = %d, want 1 from New", n)
	}
	m.SetBuildInfo("v1.2.3", "abc123")
	if got := gaugeValue(t, reg, metrics.NameBuildInfo, "version", "v1.2.3", "revision", "abc123"); got != 1 {
		t.Fatalf("build info = %v, want 1", got)
	}
	if n, _ := testutil.GatherAndCount(reg, metrics.NameBuildInfo); n != 1 {
		t.Fatalf("build info series = %d after SetBuildInfo, want 1", n)
	}
}

func TestEveryNameIsNamespaced(t *testing.T) {
	m, reg := newMetrics(t)
	// Touch every vector so each family is gathered.
	m.ObserveRequest("api", 200, 0)
	m.ObserveRefusal("r")
	m.ObserveUpstream("n", "api", 200, 0)
	m.SetNodeHealthy("n", true)
	m.ObserveStoreOp("get", 0, nil)
	m.SetStoreDurability("bolt", true)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 11 {
		t.Fatalf("gathered %d families, want 11", len(mfs))
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "superset_gateway_") {
			t.Errorf("metric %q is not under superset_gateway_", mf.GetName())
		}
	}
}

func TestTwoMetricsOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	metrics.New(reg)
}

func TestHandlerServesGatheredMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	m := metrics.New(reg)
	m.ObserveRequest("api", 200, time.Millisecond)
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`superset_gateway_requests_total{class="api",code="2xx"} 1`,
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics page lacks %q", want)
		}
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	m, reg := newMetrics(t)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				m.ObserveRequest(fmt.Sprintf("c%d", i%10), 200+g, 0)
				m.ObserveUpstream("n", fmt.Sprintf("c%d", i%10), 200, 0)
				m.ObserveStoreOp(fmt.Sprintf("op%d", i%5), 0, nil)
			}
		}()
	}
	for range 8 {
		<-done
	}
	var total float64
	for i := range 10 {
		total += counterValue(t, reg, metrics.NameRequestsTotal, "class", fmt.Sprintf("c%d", i), "code", "2xx")
	}
	if total != 800 {
		t.Fatalf("requests = %v, want 800", total)
	}
}

// --- helpers reading the gathered families ---

func find(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mm := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range mm.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			out = append(out, mm)
		}
	}
	return out
}

func one(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) *dto.Metric {
	t.Helper()
	ms := find(t, reg, name, labels...)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, labels, len(ms))
	}
	return ms[0]
}

func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	return one(t, reg, name, labels...).GetCounter().GetValue()
}

func gaugeValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	return one(t, reg, name, labels...).GetGauge().GetValue()
}

func histCount(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) uint64 {
	t.Helper()
	var n uint64
	for _, m := range find(t, reg, name, labels...) {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

func TestFamiliesListsVectorsWithoutSeries(t *testing.T) {
	reg := metrics.NewRegistry()
	metrics.New(reg)
	fams, err := reg.Families()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]metrics.Family{}
	for _, f := range fams {
		got[f.Name] = f
	}
	// No observation was made: a Gather would list none of these.
	f, ok := got[metrics.NameSupersetTTFB]
	if !ok || f.Type != "histogram" || strings.Join(f.Labels, ",") != "endpoint,node,caller" {
		t.Fatalf("ttfb family = %+v, %v", f, ok)
	}
	if f := got[metrics.NameInFlight]; f.Type != "gauge" {
		t.Fatalf("in-flight type = %q, want gauge (a Gauge also satisfies Counter)", f.Type)
	}
	if _, ok := got["go_goroutines"]; ok {
		t.Fatal("runtime collector listed")
	}
}

func TestReconcilerOutcomes(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := metrics.NewReconciler(reg)
	if v := gaugeValue(t, reg, metrics.NameReconcilerLastSuccessTimestamp); v != 0 {
		t.Fatalf("last success before any run = %v, want 0", v)
	}
	r.ObserveReconcile("standby")
	r.ObserveReconcile("error")
	if v := gaugeValue(t, reg, metrics.NameReconcilerLastSuccessTimestamp); v != 0 {
		t.Fatalf("last success after standby and error = %v, want 0", v)
	}
	r.ObserveReconcile("ok")
	if v := gaugeValue(t, reg, metrics.NameReconcilerLastSuccessTimestamp); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last success after ok = %v, want about now", v)
	}
	if c := counterValue(t, reg, metrics.NameReconcilerRunsTotal, "outcome", "error"); c != 1 {
		t.Fatalf("error runs = %v, want 1", c)
	}
}
