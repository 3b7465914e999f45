package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/tracing"
)

var benchBody = `{"result":[` + strings.Repeat(`{"id":1,"slice_name":"Sales by region"},`, 50) + `{}]}`

// memUpstream answers every request at once, in memory, so the
// benchmarks below measure the gateway's own work and not the network.
type memUpstream struct{}

func (memUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: r, ContentLength: int64(len(benchBody)),
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(benchBody))}, nil
}

func benchServe(b *testing.B, h http.Handler, traceparent string) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "http://gw.example/api/v1/chart/?q=(page:0)", nil)
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkTracingBareProxy is the reference: httputil.ReverseProxy over
// the same in-memory upstream.
func BenchmarkTracingBareProxy(b *testing.B) {
	target, _ := url.Parse("http://superset.internal")
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: memUpstream{},
	}
	benchServe(b, rp, "")
}

func benchPipeline(b *testing.B, tr *tracing.Tracer) http.Handler {
	pl, err := NewPipeline(Parts{Epochs: fakeEpochs{tr: &trace{}, d: allow}, Refusals: NewRefuser(RefuserOptions{}), Traced: tr != nil})
	if err != nil {
		b.Fatal(err)
	}
	o := proxy.Options{Upstream: memUpstream{}, ModifyResponse: pl.ModifyResponse, Middleware: []func(http.Handler) http.Handler{pl.Middleware}}
	if tr != nil {
		o.Tracer = tr
	}
	gw, err := proxy.New(o)
	if err != nil {
		b.Fatal(err)
	}
	return gw
}

func benchTracer(b *testing.B, ratio float64) *tracing.Tracer {
	// A collector that takes everything: the export runs in the batch
	// processor's goroutine, off the request path.
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(col.Close)
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: col.URL + "/v1/traces", SampleRatio: ratio})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// BenchmarkTracingOff is the gateway as shipped: tracing.endpoint empty.
func BenchmarkTracingOff(b *testing.B) { benchServe(b, benchPipeline(b, nil), "") }

// BenchmarkTracingOffWithTraceparent: off, a caller's traceparent
// checked and forwarded.
func BenchmarkTracingOffWithTraceparent(b *testing.B) {
	benchServe(b, benchPipeline(b, nil), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
}

// BenchmarkTracingUnsampled: an endpoint configured, ratio 0, no caller
// trace: a span context per request, nothing recorded.
func BenchmarkTracingUnsampled(b *testing.B) { benchServe(b, benchPipeline(b, benchTracer(b, 0)), "") }

// BenchmarkTracingSampled: every request recorded and exported.
func BenchmarkTracingSampled(b *testing.B) { benchServe(b, benchPipeline(b, benchTracer(b, 1)), "") }
