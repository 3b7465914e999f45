package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/ui"
)

// FuzzWantsHTML: any Accept header and path (both the client's) gives an
// answer without panicking, and "HTML" only for a request that names
// text/html and is not an API call, so an API client is never handed a
// page instead of its JSON.
func FuzzWantsHTML(f *testing.F) {
	f.Add("/superset/welcome/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	f.Add("/api/v1/chart/", "text/html")
	f.Add("/x", ";;,,text/html;q=0")
	f.Add("/x", "TEXT/HTML")
	f.Fuzz(func(t *testing.T, path, accept string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Header: http.Header{"Accept": {accept}}}
		got := ui.WantsHTML(r)
		if got && (!strings.Contains(strings.ToLower(accept), "text/html") || strings.HasPrefix(path, "/api/") || strings.Contains(path, "/api/v1/")) {
			t.Fatalf("WantsHTML(%q, %q) = true", path, accept)
		}
	})
}
