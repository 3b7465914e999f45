package ui_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/ui"
)

func TestErrorPageEscapesAndSaysWhatToDo(t *testing.T) {
	e, err := ui.NewErrors()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.Write(rec, ui.ErrorPage{Status: http.StatusServiceUnavailable, What: "Down <script>x</script>",
		Do: "Retry.", RetryAfter: "5", RequestID: `"><img src=x onerror=alert(1)>`})
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("error page must be no-store")
	}
	for _, bad := range []string{"<script>x", "<img src=x"} {
		if strings.Contains(body, bad) {
			t.Fatalf("unescaped %q in page:\n%s", bad, body)
		}
	}
	for _, want := range []string{"Service Unavailable", "What to do", "Retry in 5 seconds", "Request id", "gateway.css", `lang="en"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("page lacks %q:\n%s", want, body)
		}
	}
}

// TestAnswerFitsTheClient: the same refusal is the styled page for a
// browser and Superset's {"msg": …} JSON for anything else, with the
// caller's headers kept and the message JSON-escaped.
func TestAnswerFitsTheClient(t *testing.T) {
	e, err := ui.NewErrors()
	if err != nil {
		t.Fatal(err)
	}
	p := ui.ErrorPage{Status: http.StatusMethodNotAllowed, What: `Use "the" buttons <b>.`, Do: "Go back."}
	for _, c := range []struct{ path, accept, ct, body string }{
		{"/-/tokens", "text/html", "text/html; charset=utf-8", "Use &#34;the&#34; buttons &lt;b&gt;."},
		{"/-/tokens", "application/json", "application/json", `{"msg": "Use \"the\" buttons <b>."}` + "\n"},
		{"/api/v1/x", "text/html", "application/json", `{"msg": "Use \"the\" buttons <b>."}` + "\n"},
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Allow", "GET, POST")
		r := httptest.NewRequest(http.MethodDelete, c.path, nil)
		r.Header.Set("Accept", c.accept)
		e.Answer(rec, r, p)
		body := rec.Body.String()
		if rec.Code != p.Status || rec.Header().Get("Content-Type") != c.ct || rec.Header().Get("Allow") != "GET, POST" ||
			rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s Accept %s: %d %v", c.path, c.accept, rec.Code, rec.Header())
		}
		if c.ct == "application/json" && body != c.body || c.ct != "application/json" && !strings.Contains(body, c.body) {
			t.Errorf("%s Accept %s: body %.300s, want %s", c.path, c.accept, body, c.body)
		}
	}
}

func TestWantsHTML(t *testing.T) {
	cases := []struct {
		path, accept string
		want         bool
	}{
		{"/superset/dashboard/1/", "text/html,application/xhtml+xml,*/*;q=0.8", true},
		{"/superset/dashboard/1/", "TEXT/HTML ; q=0.9", true},
		{"/api/v1/chart/", "text/html", false},
		{"/-/admin/api/v1/status", "text/html", false},
		{"/superset/dashboard/1/", "application/json", false},
		{"/superset/dashboard/1/", "*/*", false},
		{"/superset/dashboard/1/", "", false},
		{"/superset/dashboard/1/", "text/htmlx", false},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		if got := ui.WantsHTML(r); got != c.want {
			t.Errorf("WantsHTML(%s, %q) = %v, want %v", c.path, c.accept, got, c.want)
		}
	}
}

func TestStaticServesAssetsOnly(t *testing.T) {
	h := ui.Static()
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	for path, ct := range map[string]string{
		"/-/static/gateway.css":                 "text/css",
		"/-/static/copy.js":                     "javascript",
		"/-/static/fonts/inter-latin-400.woff2": "font/woff2",
		"/-/static/fonts/OFL.txt":               "text/plain",
	} {
		rec := get(http.MethodGet, path)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Type"), ct) {
			t.Errorf("GET %s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	for _, path := range []string{"/-/static/", "/-/static/fonts/", "/-/static/../templates/layout.html",
		"/-/templates/layout.html", "/-/static/nope.css"} {
		if rec := get(http.MethodGet, path); rec.Code == http.StatusOK {
			t.Errorf("GET %s served:\n%s", path, rec.Body.String())
		}
	}
	if rec := get(http.MethodPost, "/-/static/gateway.css"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestNavLinksAdminSlot(t *testing.T) {
	extra := ui.Link{Href: "/-/admin/overview", Label: "Overview"}
	user := ui.NavLinks(ui.NavSessions, false, extra)
	if len(user) != 2 || !user[1].Current || user[0].Current {
		t.Fatalf("user nav %+v", user)
	}
	adm := ui.NavLinks(ui.NavAdmin, true, extra)
	if len(adm) != 4 || !adm[2].Current || adm[3] != extra {
		t.Fatalf("admin nav %+v", adm)
	}
}
