//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

// adminLink is the "Gateway admin" entry of the gateway navigation.
const adminLink = `nav[aria-label="Gateway"] a[href="/-/admin/"]`

// browserAs makes the browser the holder of c's gateway session (signed
// in over HTTP through the gateway), dropping any cookie it had.
func browserAs(t *testing.T, b *browser.Browser, base string, c *gwClient) {
	t.Helper()
	id := c.session()
	if id == "" {
		t.Fatal("the client holds no gateway session")
	}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: gatewayCookie, Value: id, URL: base + "/"}); err != nil {
		t.Fatal(err)
	}
}

// TestPagesAdminLinkAndStoreOutage (issue 19 leftovers), in Chromium
// against the real Superset 6.1.0 and a real redis-server:
//   - the gateway navigation of /-/sessions and /-/tokens shows "Gateway
//     admin" to an admin, who reaches it with Tab and follows it with
//     Enter to the admin page; a gamma user sees no such link (and the
//     admin page refuses them);
//   - with Redis stopped, /-/sessions and /-/tokens answer 503 with
//     Retry-After: the styled error page (axe clean, no internal error
//     text) for a browser, {"msg": …} for an API client; the admin page
//     its own styled 503.
func TestPagesAdminLinkAndStoreOutage(t *testing.T) {
	e := shared(t)
	axe, err := os.ReadFile(axeScript)
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run e2e/axe/install.sh (npm ci) first", err)
	}
	rd := redistest.Start(t, redistest.Options{AppendOnly: true})
	g := startReplica(t, e, rd.URL(), writeCookieKeys(t))
	tg := e.c.Target
	admin, gamma := newGWClient(t, g.URL), newGWClient(t, g.URL)
	admin.login(tg.Admin)
	gamma.login(tg.Gamma)

	b := browser.ForTest(t, browser.Options{WindowWidth: 1280, WindowHeight: 900})
	r := &pagesRig{t: t, b: b, base: g.URL, axe: string(axe), shot: t.TempDir()}
	count := func(sel string) string {
		q, _ := json.Marshal(sel)
		return r.eval(`String(document.querySelectorAll(`+string(q)+`).length)`, false)
	}

	// The admin: the link on both pages, reached and followed by keyboard.
	browserAs(t, b, g.URL, admin)
	for _, page := range []string{"/-/sessions", "/-/tokens"} {
		r.open(page)
		r.waitPath(page)
		if n := count(adminLink); n != "1" {
			t.Fatalf("admin on %s: %s Gateway admin links, want 1", page, n)
		}
		if txt, _ := b.Text(adminLink); txt != "Gateway admin" {
			t.Errorf("admin on %s: the link reads %q", page, txt)
		}
		r.check("nav-admin" + strings.ReplaceAll(page, "/", "-"))
		r.tabTo(adminLink)
		r.press(kb.Enter)
		r.waitPath("/-/admin/")
		if h, _ := b.Text(`h1`); h == "" || strings.Contains(h, "Admins only") {
			t.Errorf("following Gateway admin from %s: the admin page says %q", page, h)
		}
		if cur := count(`nav[aria-label="Gateway"] a[href="/-/admin/"][aria-current="page"]`); cur != "1" {
			t.Errorf("following Gateway admin from %s: the admin page does not mark itself current", page)
		}
	}

	// Gamma: no link, on either page; the admin page refuses them anyway.
	browserAs(t, b, g.URL, gamma)
	for _, page := range []string{"/-/sessions", "/-/tokens"} {
		r.open(page)
		r.waitPath(page)
		if txt, _ := b.Text(`nav[aria-label="Gateway"]`); !strings.Contains(txt, "Sessions") {
			t.Fatalf("gamma on %s: no gateway navigation (%q); not signed in?", page, txt)
		}
		if n := count(`a[href^="/-/admin"]`); n != "0" {
			t.Errorf("gamma on %s: %s links to the admin page, want none", page, n)
		}
		r.check("nav-gamma" + strings.ReplaceAll(page, "/", "-"))
	}
	if resp, _ := gamma.get("/-/admin/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("gamma on /-/admin/: %d, want 403", resp.StatusCode)
	}

	// The store goes away.
	rd.Kill()
	time.Sleep(1500 * time.Millisecond) // past session.cache_ttl: the pages must read the store
	const chromiumAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, page := range []string{"/-/sessions", "/-/tokens", "/-/admin/"} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+page, nil)
		req.Header.Set("Accept", chromiumAccept)
		resp, body := admin.do(req)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("store down, browser on %s: %d Retry-After=%q, want 503 with Retry-After", page, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "<h1") ||
			!strings.Contains(body, "Temporarily unavailable") {
			t.Errorf("store down, browser on %s: %q, not the styled page: %.300s", page, ct, body)
		}
		for _, leak := range []string{"redis", "dial tcp", "connection refused", "goroutine", "store:", "session:"} {
			if strings.Contains(strings.ToLower(body), leak) {
				t.Errorf("store down, browser on %s: the page shows internal text %q", page, leak)
			}
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Errorf("store down on %s: the gateway touched the cookie: %v", page, resp.Header.Values("Set-Cookie"))
		}
	}
	for _, page := range []string{"/-/sessions", "/-/tokens"} {
		req, _ := http.NewRequest(http.MethodGet, g.URL+page, nil)
		req.Header.Set("Accept", "application/json")
		resp, body := admin.do(req)
		var msg struct{ Msg string }
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &msg) != nil || msg.Msg == "" {
			t.Errorf("store down, API client on %s: %d Retry-After=%q %q %.200s, want 503 JSON {\"msg\": …}", page,
				resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
		}
	}
	// And in Chromium: the page a person sees, checked with axe.
	for _, page := range []string{"/-/sessions", "/-/tokens"} {
		r.open(page)
		if err := b.WaitVisible(`main h1`); err != nil {
			t.Fatal(err)
		}
		if h, _ := b.Text(`main h1`); h != "Temporarily unavailable" {
			t.Errorf("store down, Chromium on %s: heading %q", page, h)
		}
		if txt, _ := b.Text(`main`); !strings.Contains(txt, "Retry in") {
			t.Errorf("store down, Chromium on %s: the page does not say when to retry: %q", page, txt)
		}
		r.check("store-down" + strings.ReplaceAll(page, "/", "-"))
	}
}
