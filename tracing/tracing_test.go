package tracing

import (
	"context"
	"testing"

	"github.com/superset-gateway/superset-gateway/proxy"
)

func TestNewRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Endpoint: ""},
		{Endpoint: "collector:4318"},
		{Endpoint: "ftp://collector/v1/traces"},
		{Endpoint: "http:///v1/traces"},
		{Endpoint: "http://collector:4318/v1/traces", SampleRatio: 1.5},
		{Endpoint: "http://collector:4318/v1/traces", SampleRatio: -0.1},
	} {
		if tr, err := New(context.Background(), o); err == nil {
			_ = tr.Shutdown(context.Background())
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestUnsampledSpanStillParentsUpstream: with nothing sampled, Superset
// still gets a traceparent in the caller's trace, with a span id of the
// gateway's and the caller's (unsampled) flag.
func TestUnsampledSpanStillParentsUpstream(t *testing.T) {
	tr, err := New(context.Background(), Options{Endpoint: "http://127.0.0.1:1/v1/traces"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	parent, _ := proxy.ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	_, sp := tr.Start(context.Background(), parent, "rojo=1", "GET", "rid")
	up, ts := sp.Upstream()
	sp.End("api", 200, "")
	if up.TraceID != parent.TraceID || up.SpanID == parent.SpanID || !up.Valid() || up.Sampled() || ts != "rojo=1" {
		t.Fatalf("upstream %s %q from parent %s", up, ts, parent)
	}
	// No caller trace: a new one.
	_, sp = tr.Start(context.Background(), proxy.TraceContext{}, "", "BREW", "rid")
	up, _ = sp.Upstream()
	sp.End("other", 200, "")
	if !up.Valid() || up.TraceID == parent.TraceID {
		t.Fatalf("new trace %s", up)
	}
}
