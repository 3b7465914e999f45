package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/ratelimit"
)

type fakeLimits struct {
	tr  *trace
	ref *ratelimit.Refusal
}

func (f fakeLimits) Check(context.Context, *http.Request, *principal.Exchange) *ratelimit.Refusal {
	f.tr.add("ratelimit")
	return f.ref
}
func (f fakeLimits) ModifyResponse(*http.Response) error { f.tr.add("hook:ratelimit"); return nil }

func limitedPipeline(t *testing.T, tr *trace, ref *ratelimit.Refusal, p principal.Principal) *Pipeline {
	t.Helper()
	pl, err := NewPipeline(Parts{
		Tokens:     fakeTokens{fakeAuth{"token", tr, p, allow, nil}},
		Sessions:   fakeSessions{tr, principal.Principal{}},
		Epochs:     fakeEpochs{tr, allow, nil},
		RateLimits: fakeLimits{tr, ref},
		Refusals:   NewRefuser(RefuserOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// The rate limits run after the token's scopes and before any credential
// is injected; their hook runs after the vault's (which strips every
// Set-Cookie, and the known-device cookie must survive it).
func TestRateLimitStageOrder(t *testing.T) {
	tr := &trace{}
	pl := limitedPipeline(t, tr, nil, principal.Principal{Kind: principal.AccessToken, UserID: "3", IssuedAt: time.Unix(1_900_000_000, 0)})
	serve(t, pl, tr, httptest.NewRequest("GET", "/api/v1/dashboard/", nil))
	want := []string{"authenticate:token", "revocation:epochs", "authorize:token", "ratelimit", "inject:token", "proxy",
		"hook:token", "hook:session", "hook:ratelimit"}
	if !slices.Equal(tr.calls, want) {
		t.Fatalf("stages ran as\n%v\nwant\n%v", tr.calls, want)
	}
}

// A limited request never reaches Superset; it gets 429 with the limit's
// headers, JSON on /api/ and a small page for a browser.
func TestRateLimitRefusal(t *testing.T) {
	h := http.Header{}
	h.Set("Retry-After", "7")
	h.Set("RateLimit-Policy", `"api";q=5;w=60`)
	h.Set("RateLimit", `"api";r=0;t=7`)
	ref := &ratelimit.Refusal{Reason: policy.ReasonRateLimited, Header: h}
	for _, c := range []struct{ path, accept, ctype string }{
		{"/api/v1/chart/", "text/html", "application/json"},
		{"/superset/dashboard/1/", "text/html,application/xhtml+xml", "text/html"},
		{"/superset/dashboard/1/", "*/*", "application/json"},
	} {
		tr := &trace{}
		pl := limitedPipeline(t, tr, ref, principal.Principal{})
		r := httptest.NewRequest("GET", c.path, nil)
		r.Header.Set("Accept", c.accept)
		w, seen := serve(t, pl, tr, r)
		if seen != nil || slices.Contains(tr.calls, "proxy") {
			t.Fatalf("%s: a limited request reached Superset", c.path)
		}
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "7" ||
			w.Header().Get("RateLimit-Policy") == "" || w.Header().Get("RateLimit") == "" {
			t.Fatalf("%s: %d %v", c.path, w.Code, w.Header())
		}
		if !strings.HasPrefix(w.Header().Get("Content-Type"), c.ctype) {
			t.Fatalf("%s Accept %s: Content-Type %q, want %s", c.path, c.accept, w.Header().Get("Content-Type"), c.ctype)
		}
		if c.ctype == "text/html" && !strings.Contains(w.Body.String(), "Retry in 7 seconds") {
			t.Fatalf("page %q", w.Body.String())
		}
	}
}
