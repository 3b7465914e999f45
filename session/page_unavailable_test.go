package session_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// TestSessionsPageStoreDown: with Redis stopped, /-/sessions (GET and the
// POST forms) answers 503 with Retry-After and the cookie kept: a browser
// gets the gateway's styled error page, saying nothing of the cause, and
// any other client Superset's {"msg": …} JSON.
func TestSessionsPageStoreDown(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	g := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{modify: func(o *session.Options) {
		o.StoreTimeout = 500 * time.Millisecond
	}})
	c := g.signIn("alice", fakesuperset.AlicePassword)
	if r := g.do("GET", "/-/sessions", g.cookieHeader(c), nil, "Accept", "text/html"); r.StatusCode != http.StatusOK {
		t.Fatalf("store up: /-/sessions %d", r.StatusCode)
	}
	srv.Kill()
	clk.Advance(2 * time.Minute) // past the cache TTL, within the idle timeout

	const accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" // Chromium's
	for _, req := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/-/sessions", nil},
		{"GET", "/-/sessions/", nil},
		{"POST", "/-/sessions/end-others", url.Values{}},
		{"POST", "/-/sessions/end", url.Values{"session": {"x"}}},
	} {
		name := req.method + " " + req.path
		r := g.do(req.method, req.path, g.cookieHeader(c), req.form, "Accept", accept)
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" {
			t.Fatalf("%s, browser: %d Retry-After=%q, want 503 with Retry-After 5", name, r.StatusCode, r.Header.Get("Retry-After"))
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s, browser: Content-Type %q, want the HTML page", name, ct)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s, browser: Cache-Control %q", name, cc)
		}
		for _, want := range []string{"<!doctype html>", `<main`, "<h1", "Temporarily unavailable", "Retry in 5 seconds", "/-/static/"} {
			if !strings.Contains(strings.ToLower(r.body), strings.ToLower(want)) {
				t.Errorf("%s, browser: the page lacks %q:\n%s", name, want, r.body)
			}
		}
		// The cause stays in the log.
		for _, leak := range []string{"redis", "dial", "connection refused", "store:", "session:", "goroutine", "unavailable;"} {
			if strings.Contains(strings.ToLower(r.body), leak) {
				t.Errorf("%s, browser: the page shows internal text %q", name, leak)
			}
		}
		if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s with store down set cookies %q", name, sc)
		}

		r = g.do(req.method, req.path, g.cookieHeader(c), req.form, "Accept", "application/json")
		var msg struct{ Msg string }
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" ||
			r.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(r.body), &msg) != nil || msg.Msg == "" {
			t.Errorf("%s, API client: %d Retry-After=%q %q %q, want 503 JSON {\"msg\": …}", name, r.StatusCode,
				r.Header.Get("Retry-After"), r.Header.Get("Content-Type"), r.body)
		}
	}
}
