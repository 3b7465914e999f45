// Package gatewaytest serves the gateway's request path in tests: the
// stages a test builds (real packages over fakes) in the production order
// (gateway.NewPipeline), behind the real proxy. Every domain package's
// tests use it, so none assembles a partial chain of its own.
package gatewaytest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/session"
)

// AllowEpochs stands for the epochs in tests that stamp none.
type AllowEpochs struct{}

// IssuedAfter allows everything.
func (AllowEpochs) IssuedAfter(context.Context, string, time.Time, time.Duration) (policy.Decision, error) {
	return policy.Decision{Allow: true}, nil
}

// Pipeline is gateway.NewPipeline with the test defaults: AllowEpochs when
// parts has no Epochs, and a refusal writer that audits to nothing when it
// has no Refusals.
func Pipeline(tb testing.TB, parts gateway.Parts) *gateway.Pipeline {
	tb.Helper()
	if parts.Epochs == nil {
		parts.Epochs = AllowEpochs{}
	}
	if parts.Refusals == nil {
		parts.Refusals = gateway.NewRefuser(gateway.RefuserOptions{RequestInfo: RequestInfo})
	}
	pl, err := gateway.NewPipeline(parts)
	if err != nil {
		tb.Fatal(err)
	}
	return pl
}

// RequestInfo is the request id and client address as the proxy decided
// them, for refusal and audit events.
func RequestInfo(r *http.Request) (string, string) {
	return proxy.RequestID(r), proxy.ClientIP(r).String()
}

// Front serves the request path of parts in front of upstream (internal
// serves the gateway's /-/ routes; nil means none) until the test ends.
func Front(tb testing.TB, parts gateway.Parts, upstream http.RoundTripper, internal http.Handler) *httptest.Server {
	tb.Helper()
	pl := Pipeline(tb, parts)
	gw, err := proxy.New(proxy.Options{
		Upstream:       upstream,
		Middleware:     []func(http.Handler) http.Handler{pl.Middleware},
		ModifyResponse: pl.ModifyResponse,
		Internal:       internal,
		Now:            parts.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	tb.Cleanup(srv.Close)
	return srv
}

// KeyPair is one generation of gateway cookie keys, derived from b so
// that tests can make several distinct ones.
func KeyPair(b byte) session.KeyPair {
	h := make([]byte, 64)
	k := make([]byte, 32)
	for i := range h {
		h[i] = b + byte(i)
	}
	for i := range k {
		k[i] = b ^ byte(3*i)
	}
	return session.KeyPair{Hash: h, Block: k}
}

// Do sends req without following redirects and returns the answer with its
// body read; a cookie other than the gateway's (gatewayCookie) reaching
// the client fails tb: Superset's cookies belong in the vault.
func Do(tb testing.TB, req *http.Request, gatewayCookie string) (*http.Response, string) {
	tb.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(sc, gatewayCookie+"=") {
			tb.Fatalf("%s %s: a Superset cookie reached the client: %q", req.Method, req.URL.Path, sc)
		}
	}
	return resp, string(b)
}
