package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

// A ~2 KB JSON answer, like a small Superset API response.
var benchJSON = `{"result":[` + strings.Repeat(`{"id":1,"slice_name":"Sales by region"},`, 50) + `{}]}`

func benchBackend(b *testing.B) *httptest.Server {
	b.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchJSON)
	}))
	b.Cleanup(s.Close)
	return s
}

func benchClient(b *testing.B, front *httptest.Server) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(front.URL + "/api/v1/chart/?q=(page:0)")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkBareReverseProxy is the reference: what any Go operator gets from
// httputil.ReverseProxy with a pooled transport and default settings.
func BenchmarkBareReverseProxy(b *testing.B) {
	be := benchBackend(b)
	target, _ := url.Parse(be.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() },
		Transport: tr,
	}
	front := httptest.NewServer(rp)
	b.Cleanup(front.Close)
	benchClient(b, front)
}

// BenchmarkGatewayAnonymous is the full chain for an anonymous request:
// request id, JSON access log, hygiene, security headers, pool.
func BenchmarkGatewayAnonymous(b *testing.B) {
	be := benchBackend(b)
	pool, err := upstream.New(upstream.Options{Nodes: []string{be.URL}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.CloseIdleConnections)
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	gw, err := New(Options{Upstream: pool, Logger: log, Classify: func(*http.Request) string { return "api" }})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(gw)
	b.Cleanup(front.Close)
	benchClient(b, front)
}

func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = CleanPath("/api/v1/chart/data", 4096)
	}
}
