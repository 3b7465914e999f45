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
	b.Cleanup(front.Close)
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
	benchClient(b, httptest.NewServer(rp))
}

// BenchmarkGatewayAnonymous is the full chain for an anonymous request:
// request id, JSON access log, hygiene, security headers, pool.
func BenchmarkGatewayAnonymous(b *testing.B) {
	benchClient(b, httptest.NewServer(benchGateway(b)))
}

// BenchmarkGatewayAnonymousFramed is BenchmarkGatewayAnonymous behind the
// framing listener the Server uses for plain HTTP: the difference is what
// following every connection's framing costs.
func BenchmarkGatewayAnonymousFramed(b *testing.B) {
	front := httptest.NewUnstartedServer(framingHandler{next: benchGateway(b)})
	front.Listener = framingListener{front.Listener}
	front.Config.ConnContext = framingConnContext
	front.Start()
	benchClient(b, front)
}

// benchGateway is the gateway in front of a benchmark backend, logging
// JSON to nowhere.
func benchGateway(b *testing.B) *Gateway {
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
	return gw
}

// BenchmarkFramingTracker feeds a browser-sized request (about 900 bytes
// of headers) and a small JSON body, as one read.
func BenchmarkFramingTracker(b *testing.B) {
	req := []byte("POST /api/v1/chart/data?form_data=%7B%22slice_id%22%3A2%7D HTTP/1.1\r\n" +
		"Host: superset.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Accept: application/json\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Content-Type: application/json\r\nContent-Length: 2\r\nX-CSRFToken: " + strings.Repeat("c", 90) + "\r\n" +
		"Origin: https://superset.example.com\r\nReferer: https://superset.example.com/explore/?slice_id=2\r\n" +
		"Cookie: __Host-sg_session=" + strings.Repeat("s", 300) + "\r\n" +
		"Sec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n\r\n{}")
	t := newFramingTracker()
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		t.feed(req)
	}
	if t.blocks == 0 || t.bad >= 0 {
		b.Fatalf("tracker lost: %d %d", t.blocks, t.bad)
	}
}

func BenchmarkCleanPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = CleanPath("/api/v1/chart/data", 4096)
	}
}
