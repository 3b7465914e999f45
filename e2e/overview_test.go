//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// lockedBuf collects the gateway's output (access log) for the test.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// jsonLines decodes the JSON lines of s that decode.
func jsonLines(s string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestOverviewCorrelationAndPicture runs traffic through the real gateway
// in front of the shared Superset 6.1.0 and checks (1) what Superset
// itself does with a request id and a traceparent, (2) that a request's
// id is in the access log and its refusal's audit event, and (3) that an
// admin sees that traffic on /-/admin/overview in Chromium, saving the
// screenshot for docs/.
func TestOverviewCorrelationAndPicture(t *testing.T) {
	e := shared(t)
	dir := t.TempDir()
	out := &lockedBuf{}
	auditPath := filepath.Join(dir, "audit.jsonl")
	col := newCollector(t)
	g := startGatewayT(t, harness.GatewayOptions{
		Binary: buildGateway(t), Superset: e.s, Upstreams: nodeURLs(e), DataDir: filepath.Join(dir, "gw"),
		Output: out, AuditOutput: auditPath,
		// Sample nothing new: only the callers' sampled traces are kept.
		Extra: []string{"tracing: {endpoint: " + col.URL + "/v1/traces, sample_ratio: 0, service_name: sgw-e2e}"},
	})
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(base, path string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	// (1) Superset 6.1.0 on its own neither echoes a request id nor
	// answers with trace headers: correlation is the gateway's to give.
	direct := do(e.c.Nodes[0].URL, "/api/v1/chart/", "X-Request-Id", "probe-direct-1", "Traceparent", tp)
	for _, h := range []string{"X-Request-Id", "Traceparent", "Tracestate", "Traceresponse"} {
		if v := direct.Header.Get(h); v != "" {
			t.Errorf("Superset itself answered %s: %q; docs/superset-6.1.md says it does not", h, v)
		}
	}

	// (2) Through the gateway: anonymous API reads (Superset answers
	// 401) and refusals of the gateway's own (a malformed Bearer JWT).
	// Refusal events are throttled per reason, so not every one of
	// these is audited; each audited one must carry its request's id.
	refused := map[string]bool{}
	for i := 0; i < 24; i++ {
		resp := do(g.URL, "/api/v1/chart/", "Traceparent", tp)
		if resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("no X-Request-Id on the gateway's answer: %v", resp.Header)
		}
	}
	for i := 0; i < 6; i++ {
		resp := do(g.URL, "/api/v1/dashboard/", "Authorization", "Bearer not.a.jwt", "Traceparent", "not-a-traceparent")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("malformed JWT: %d", resp.StatusCode)
		}
		refused[resp.Header.Get("X-Request-Id")] = true
	}
	deadline := time.Now().Add(10 * time.Second)
	var logged bool
	var reason, refusedID string
	for time.Now().Before(deadline) && !logged {
		b, _ := os.ReadFile(auditPath)
		for _, ev := range jsonLines(string(b)) {
			if id, _ := ev["request_id"].(string); ev["outcome"] == "denied" && ev["event"] == "jwt.refused" {
				if !refused[id] {
					t.Fatalf("refusal audited with request id %q, not one of the refused requests' %v", id, refused)
				}
				refusedID, reason = id, ev["reason"].(string)
			}
		}
		for _, l := range jsonLines(out.String()) {
			if refusedID != "" && l["msg"] == "request" && l["request_id"] == refusedID && l["status"] == float64(401) {
				logged = true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if refusedID == "" || !logged {
		t.Fatalf("refused requests %v: audited as %q, in the access log %v", refused, refusedID, logged)
	}

	// The real binary exported a span per sampled request, in the
	// caller's trace, with the stages and the caller kind; the refused
	// ones carry the audited reason.
	col.check(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 24)

	// (3) The admin's picture of that traffic, without JavaScript of its
	// own: the browser only reads what the server drew.
	b := browser.ForTest(t, browser.Options{})
	browserLogin(t, b, g.URL, e.c.Target.Admin)
	if err := b.Navigate(g.URL + "/-/admin/overview"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVisible(`svg#requests`); err != nil {
		t.Fatal(err)
	}
	type overviewSeen struct {
		Bars     int      `json:"bars"`
		Refusals []string `json:"refusals"`
		Classes  []string `json:"classes"`
		Nodes    []string `json:"nodes"`
		Alt      string   `json:"alt"`
		Scripts  int      `json:"scripts"`
	}
	js := `(function(){
		var sum = 0;
		document.querySelectorAll('svg#requests rect.bar').forEach(function(r){ sum += +r.getAttribute('data-value') });
		var cells = function(sel){ return Array.from(document.querySelectorAll(sel + ' tbody tr')).map(function(r){ return Array.from(r.cells).map(function(c){ return c.textContent.trim() }).join('=') }) };
		return {bars: sum, refusals: cells('#refusals-table'), classes: cells('#latency-table'), nodes: cells('#nodes-table'),
			alt: document.querySelector('svg#requests desc').textContent, scripts: document.scripts.length};
	})()`
	ctx, cancel := context.WithTimeout(b.Context(), 20*time.Second)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[overviewSeen](js))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overview: %+v", got)
	// 24 + 6 requests, the login's and the overview's own at least.
	if got.Bars < 30 || !strings.Contains(got.Alt, "requests in the last hour") {
		t.Errorf("requests chart sums to %d (%q), want at least 30", got.Bars, got.Alt)
	}
	found := false
	for _, r := range got.Refusals {
		found = found || r == reason+"=6"
	}
	if !found {
		t.Errorf("refusals table %q lacks the audited reason %q", got.Refusals, reason)
	}
	if len(got.Classes) == 0 {
		t.Error("no endpoint class in the latency table after traffic to Superset")
	}
	if len(got.Nodes) != len(e.c.Nodes) {
		t.Errorf("nodes table %q, want %d nodes", got.Nodes, len(e.c.Nodes))
	}
	for _, n := range got.Nodes {
		if !strings.HasSuffix(n, "=healthy=0") {
			t.Errorf("node %q not healthy throughout", n)
		}
	}
	if got.Scripts != 0 {
		t.Errorf("the overview carries %d scripts; it must need none", got.Scripts)
	}
	// Quality 100 is what makes chromedp write PNG (below it, JPEG).
	sctx, scancel := context.WithTimeout(b.Context(), 30*time.Second)
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	scancel()
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "img", "overview.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// collector is an OTLP/HTTP receiver for the gateway binary's spans.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// check waits (the exporter batches every 5s) for want spans of the
// trace under parent, each with the six stages, and no other span.
func (c *collector) check(t *testing.T, trace, parent string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.spans)
		c.mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.spans) != want {
		t.Fatalf("collector got %d spans, want %d (one per sampled request, none for unsampled ones)", len(c.spans), want)
	}
	for _, s := range c.spans {
		if hex.EncodeToString(s.TraceId) != trace || hex.EncodeToString(s.ParentSpanId) != parent {
			t.Fatalf("span in trace %x under %x", s.TraceId, s.ParentSpanId)
		}
		var stages []string
		for _, e := range s.Events {
			stages = append(stages, e.Name)
		}
		if strings.Join(stages, ",") != "authenticate,revocation,authorise,inject,upstream,hooks" {
			t.Fatalf("stages %v", stages)
		}
		kind := ""
		for _, a := range s.Attributes {
			if a.Key == "sgw.caller.kind" {
				kind = a.Value.GetStringValue()
			}
		}
		if kind != "none" {
			t.Fatalf("caller kind %q", kind)
		}
	}
}
