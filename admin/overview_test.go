package admin_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/overview"
)

// TestOverviewPage: admins see the last hour drawn inline with its text
// alternatives; everyone else is refused as on the admin page, and the
// view is audited.
func TestOverviewPage(t *testing.T) {
	rec := overview.New(nil)
	for i := 0; i < 12; i++ {
		rec.ObserveRequest("chart_data", 200, time.Millisecond)
	}
	rec.ObserveCredentialRefusal("guest", "revoked_dashboard")
	rec.ObserveUpstream("http://superset-1:8088", "chart_data", 200, 40*time.Millisecond)
	rec.SetNodeHealthy("http://superset-2:8088", false)
	e := newPageEnvWith(t, fakeUsers{}, func(o *admin.PageOptions) { o.Overview = rec })

	r := e.do(http.MethodGet, admin.OverviewPath, "admin", nil)
	if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("admin got %d %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}
	for _, want := range []string{
		`<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="requests"`,
		`id="refusals"`, `id="latency"`, `id="nodes"`,
		"12 requests in the last hour",
		"<td>revoked_dashboard</td><td class=\"n\">1</td>",
		"<td>chart_data</td>",
		`<span class="down">unhealthy</span>`,
		"Signed in as admin",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(r.body, "<script") {
		t.Error("the overview needs no script")
	}
	if ev := e.lastEvent("admin.overview.view"); ev.Actor != "user:1" || ev.Outcome != "success" || ev.RequestID != "req-1" {
		t.Fatalf("audit %+v", ev)
	}

	if r := e.do(http.MethodGet, admin.OverviewPath, "alice", nil); r.StatusCode != http.StatusForbidden || strings.Contains(r.body, "<svg") {
		t.Fatalf("non-admin got %d", r.StatusCode)
	}
	if r := e.do(http.MethodGet, admin.OverviewPath, "", nil); r.StatusCode != http.StatusFound {
		t.Fatalf("anonymous got %d", r.StatusCode)
	}
	if r := e.post(admin.OverviewPath, "admin", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST got %d", r.StatusCode)
	}
}

func TestOverviewPageOffWithoutSource(t *testing.T) {
	e := newPageEnv(t)
	if r := e.do(http.MethodGet, admin.OverviewPath, "admin", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("got %d", r.StatusCode)
	}
}
