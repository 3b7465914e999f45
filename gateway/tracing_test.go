package gateway

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/tracing"
)

// otlpReceiver is an in-process OTLP/HTTP collector: it decodes the
// protobuf export requests the gateway sends and keeps their spans.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	o := &otlpReceiver{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					o.svc = append(o.svc, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				o.spans = append(o.spans, ss.Spans...)
			}
		}
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(o.Close)
	return o
}

func attrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range s.Attributes {
		if v := a.Value.GetStringValue(); v != "" {
			m[a.Key] = v
		} else {
			m[a.Key] = strings.TrimSpace(a.Value.String())
		}
	}
	return m
}

// TestTracingExportsOneSpanPerRequest: through a real proxy and pipeline
// with the OTLP exporter pointed at an in-process collector, the caller's
// sampled trace is continued (sample ratio 0 records nothing else), the
// span is Superset's parent, the stages are its events in order, and the
// refusal reason and caller kind are attributes, never the token.
func TestTracingExportsOneSpanPerRequest(t *testing.T) {
	rec := newOTLPReceiver(t)
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: rec.URL + "/v1/traces", SampleRatio: 0, ServiceName: "sgw-test"})
	if err != nil {
		t.Fatal(err)
	}
	var upstreamTP []string
	var mu sync.Mutex
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTP = append(upstreamTP, r.Header.Get("Traceparent"))
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	pool, err := upstream.New(upstream.Options{Nodes: []string{backend.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.CloseIdleConnections()
	const secret = "eyJhbGciOiJIUzI1NiJ9.secret-token.sig"
	jwt := authFunc(func(r *http.Request) (principal.Principal, policy.Decision) {
		if strings.Contains(r.Header.Get("Authorization"), secret) {
			return principal.Principal{Kind: principal.APIJWT, UserID: "7"}, policy.Decision{Reason: policy.ReasonExpired}
		}
		return principal.Principal{}, allow
	})
	pl, err := NewPipeline(Parts{JWT: jwt, Epochs: fakeEpochs{tr: &trace{}, d: allow},
		Refusals: NewRefuser(RefuserOptions{}), Traced: true})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := proxy.New(proxy.Options{Upstream: pool, Tracer: tr, ModifyResponse: pl.ModifyResponse,
		Middleware: []func(http.Handler) http.Handler{pl.Middleware}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(gw)
	defer front.Close()

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	send := func(path, tp, authz string) int {
		req, _ := http.NewRequest("GET", front.URL+path, nil)
		if tp != "" {
			req.Header.Set("Traceparent", tp)
		}
		if authz != "" {
			req.Header.Set("Authorization", "Bearer "+authz)
		}
		resp, err := front.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send("/api/v1/chart/", "00-"+traceID+"-"+parentID+"-01", ""); st != 200 {
		t.Fatalf("allowed request: %d", st)
	}
	if st := send("/api/v1/dashboard/", "00-"+traceID+"-"+parentID+"-01", secret); st != 401 {
		t.Fatalf("refused request: %d", st)
	}
	// Unsampled caller, ratio 0: no span exported, but Superset still
	// gets a well-formed traceparent in the caller's trace.
	send("/api/v1/chart/", "00-"+traceID+"-"+parentID+"-00", "")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.spans) != 2 {
		t.Fatalf("collector got %d spans, want 2", len(rec.spans))
	}
	if len(rec.svc) == 0 || rec.svc[0] != "sgw-test" {
		t.Fatalf("service.name %q", rec.svc)
	}
	byStatus := map[string]*tracepb.Span{}
	for _, s := range rec.spans {
		if hex.EncodeToString(s.TraceId) != traceID || hex.EncodeToString(s.ParentSpanId) != parentID {
			t.Fatalf("span in trace %x under %x", s.TraceId, s.ParentSpanId)
		}
		if s.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Fatalf("span kind %v", s.Kind)
		}
		for _, a := range s.Attributes {
			if strings.Contains(a.Value.String(), "secret-token") || strings.Contains(a.Value.String(), "/api/v1/") {
				t.Fatalf("attribute %s leaks %s", a.Key, a.Value)
			}
		}
		byStatus[attrs(s)["http.response.status_code"]] = s
	}
	ok, refused := byStatus["int_value:200"], byStatus["int_value:401"]
	if ok == nil || refused == nil {
		t.Fatalf("spans by status: %v", byStatus)
	}
	var events []string
	for _, e := range ok.Events {
		events = append(events, e.Name)
	}
	if want := []string{"authenticate", "revocation", "authorise", "inject", "upstream", "hooks"}; !slices.Equal(events, want) {
		t.Fatalf("stages %q, want %q", events, want)
	}
	if a := attrs(ok); a["sgw.caller.kind"] != "none" || a["sgw.refusal.reason"] != "" {
		t.Fatalf("allowed span attributes %v", a)
	}
	if a := attrs(refused); a["sgw.caller.kind"] != principal.APIJWT.String() || a["sgw.refusal.reason"] != string(policy.ReasonExpired) {
		t.Fatalf("refused span attributes %v", a)
	}
	// Superset's parent is the gateway's span, in the caller's trace.
	mu.Lock()
	defer mu.Unlock()
	if len(upstreamTP) != 2 {
		t.Fatalf("upstream saw %q", upstreamTP)
	}
	if want := "00-" + traceID + "-" + hex.EncodeToString(ok.SpanId) + "-01"; upstreamTP[0] != want {
		t.Fatalf("Superset got %q, want %q", upstreamTP[0], want)
	}
	if tc, valid := proxy.ParseTraceparent(upstreamTP[1]); !valid || hex.EncodeToString(tc.TraceID[:]) != traceID || tc.Sampled() {
		t.Fatalf("unsampled request reached Superset with %q", upstreamTP[1])
	}
}

type authFunc func(*http.Request) (principal.Principal, policy.Decision)

func (f authFunc) Authenticate(_ context.Context, r *http.Request, _ *principal.Exchange) (principal.Principal, policy.Decision, error) {
	p, d := f(r)
	return p, d, nil
}
