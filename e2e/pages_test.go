//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/policy"
)

// axeScript is axe-core as e2e/axe/install.sh installs it from npm.
const axeScript = "axe/node_modules/axe-core/axe.min.js"

// screenshotsEnv, set to 1, makes TestPages write its screenshots into
// docs/img/ (committed); otherwise they go to a temporary directory.
const screenshotsEnv = "SGW_SCREENSHOTS"

// pagesRig is a browser on one gateway page at a time, checking each
// with axe and screenshotting it.
type pagesRig struct {
	t    *testing.T
	b    *browser.Browser
	base string
	axe  string
	shot string
}

func (r *pagesRig) eval(expr string, await bool) string {
	r.t.Helper()
	var opts []chromedp.EvaluateOption
	if await {
		opts = append(opts, chromedp.EvalAwaitPromise)
	}
	v, err := browser.Eval[string](r.b, expr, opts...)
	if err != nil {
		r.t.Fatalf("evaluate %.60s: %v", expr, err)
	}
	return v
}

func (r *pagesRig) open(path string) {
	r.t.Helper()
	if err := r.b.Navigate(r.base + path); err != nil {
		r.t.Fatal(err)
	}
}

// check runs axe-core over the page shown and fails on any serious or
// critical violation, then screenshots it as name.
func (r *pagesRig) check(name string) {
	r.t.Helper()
	if r.eval(`typeof axe`, false) != "object" {
		r.eval(r.axe+";'ok'", false)
	}
	out := r.eval(`axe.run(document, {resultTypes: ['violations']}).then(function (res) {
		return JSON.stringify(res.violations.map(function (v) {
			return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) { return n.html; }).slice(0, 3)};
		}));
	})`, true)
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		r.t.Fatalf("%s: axe answer %.200s: %v", name, out, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			r.t.Errorf("%s: axe %s violation %s (%s): %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			r.t.Logf("%s: axe %s violation %s (%s)", name, v.Impact, v.ID, v.Help)
		}
	}
	// The shared look is there: Inter loaded from the gateway, the header
	// leads back to Superset.
	if font := r.eval(`getComputedStyle(document.body).fontFamily`, false); !strings.HasPrefix(font, "Inter") {
		r.t.Errorf("%s: body font %q, want Inter first", name, font)
	}
	// Quality 100 makes Chromium encode PNG (browser.Screenshot's 90 is
	// JPEG).
	ctx, cancel := context.WithTimeout(r.b.Context(), 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(filepath.Join(r.shot, name+".png"), png, 0o644)
	}
	if err != nil {
		r.t.Errorf("%s: screenshot: %v", name, err)
	}
}

// tabTo presses Tab until the focused element matches the CSS selector,
// checks the focus is visible (an outline), and returns.
func (r *pagesRig) tabTo(sel string) {
	r.t.Helper()
	q, _ := json.Marshal(sel)
	for range 80 {
		if r.eval(fmt.Sprintf(`String(!!document.activeElement && document.activeElement.matches(%s))`, q), false) == "true" {
			outline := r.eval(`getComputedStyle(document.activeElement).outlineStyle`, false)
			if outline == "none" || outline == "" {
				r.t.Errorf("focus on %s is not visible (outline %q)", sel, outline)
			}
			return
		}
		r.press(kb.Tab)
	}
	r.t.Fatalf("Tab never reached %s on %s", sel, r.location())
}

func (r *pagesRig) press(keys string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.b.Context(), 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.KeyEvent(keys)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *pagesRig) location() string {
	u, _ := r.b.Location()
	return u
}

// waitPath waits until the browser shows a page whose path starts with
// prefix.
func (r *pagesRig) waitPath(prefix string) {
	r.t.Helper()
	if _, err := r.b.WaitURLPrefix(r.base + prefix); err != nil {
		r.t.Fatal(err)
	}
	if err := r.b.WaitVisible(`main`); err != nil {
		r.t.Fatal(err)
	}
}

// keyboardConfirm follows the link matching sel with the keyboard (Tab
// to it, Enter), then confirms on the confirmation page with Enter (the
// button has the focus; a reason is typed first when one is asked), and
// returns the page's success message.
func (r *pagesRig) keyboardConfirm(sel, reason string) string {
	r.t.Helper()
	r.tabTo(sel)
	r.press(kb.Enter)
	r.waitPath("/-/admin/confirm")
	r.check("admin-confirm")
	if reason != "" {
		r.tabTo("#reason")
		r.press(reason)
	}
	r.tabTo(`form button[type=submit]`)
	r.press(kb.Enter)
	if err := r.b.WaitVisible(`.alert.success`); err != nil {
		r.t.Fatalf("no success message after confirming %s: %v (at %s)", sel, err, r.location())
	}
	msg, err := r.b.Text(`.alert.success`)
	if err != nil {
		r.t.Fatal(err)
	}
	return msg
}

// TestPagesAccessibleAndUsableWithoutIds (issue 19): every gateway page in
// Chromium, in the shared Superset-like layout, with no serious or
// critical axe-core violation; an admin finds a user by name and, with the
// keyboard alone (and the mouse for one), ends a session, all sessions,
// revokes a token, a dashboard's guest tokens and the user, never typing
// an id; each action is refused by the gateway afterwards. Browsers get
// the error page, API clients the JSON. Screenshots go to docs/img/ with
// SGW_SCREENSHOTS=1.
func TestPagesAccessibleAndUsableWithoutIds(t *testing.T) {
	e := shared(t)
	axe, err := os.ReadFile(axeScript)
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run e2e/axe/install.sh (npm ci) first", err)
	}
	shot := t.TempDir()
	if os.Getenv(screenshotsEnv) == "1" {
		shot = filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(shot, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := startGatewayOpts(t, e, harness.GatewayOptions{Binary: buildGateway(t), DataDir: t.TempDir()})
	tg := e.c.Target
	dash := createEmbeddedDashboard(t, mustSupersetAPI(t, tg.BaseURL, tg.Admin), "pages")
	guest := mustSupersetAPI(t, g.URL, tg.Admin).mustGuestToken(t, dash.UUID)
	wantGuest(t, g.URL, guest, dash.ID, http.StatusOK, "guest token before revocation")

	// The user the admin acts on: two gateway sessions and a token.
	laptop, phone := newGWClient(t, g.URL), newGWClient(t, g.URL)
	laptop.login(tg.Alpha)
	phone.login(tg.Alpha)
	tok := formCreate(t, laptop, "nightly export", []string{policy.ScopeAPIRead}, 24*time.Hour, "")
	stillIn := func(c *gwClient) bool {
		resp, _ := c.get("/-/sessions")
		return resp.StatusCode == http.StatusOK
	}
	tokenWorks := func() int {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/me/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, _ := newGWClient(t, g.URL).do(req)
		return resp.StatusCode
	}
	if !stillIn(laptop) || !stillIn(phone) || tokenWorks() != http.StatusOK {
		t.Fatal("alpha's sessions or token do not work to begin with")
	}

	// The user's own pages, in the admin's browser first (the admin is a
	// user too).
	b := browser.ForTest(t, browser.Options{WindowWidth: 1280, WindowHeight: 900})
	r := &pagesRig{t: t, b: b, base: g.URL, axe: string(axe), shot: shot}
	browserLogin(t, b, g.URL, tg.Admin)
	pageCreate(t, b, g.URL, "dashboard sync", []string{policy.ScopeDashboardsRead})
	copyButtonWorks(t, r)
	r.open("/-/tokens")
	r.check("tokens")
	r.open("/-/sessions")
	r.check("sessions")

	// Find alpha by part of the username, with the mouse.
	r.open("/-/admin/")
	r.check("admin")
	if err := b.Fill(`#q`, tg.Alpha.Username[:len(tg.Alpha.Username)-1]); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`form[role=search] button[type=submit]`); err != nil {
		t.Fatal(err)
	}
	r.waitPath("/-/admin/?q=")
	r.check("admin-search")
	if err := b.Click(`table a[href^="/-/admin/users/"]`); err != nil {
		t.Fatal(err)
	}
	r.waitPath("/-/admin/users/")
	userPage := strings.TrimPrefix(r.location(), g.URL)
	if !regexp.MustCompile(`^/-/admin/users/[1-9][0-9]*$`).MatchString(userPage) {
		t.Fatalf("the search result led to %s", userPage)
	}
	if h, _ := b.Text(`h1`); h != tg.Alpha.Username {
		t.Errorf("the user page is titled %q, want the username %q", h, tg.Alpha.Username)
	}
	r.check("admin-user")

	// Keyboard: end one session.
	if msg := r.keyboardConfirm(`a[href*="action=session&"]`, ""); !strings.Contains(msg, "Session ended") {
		t.Errorf("after ending a session: %q", msg)
	}
	if stillIn(laptop) == stillIn(phone) {
		t.Errorf("ending one session: laptop in %v, phone in %v; want exactly one ended", stillIn(laptop), stillIn(phone))
	}
	// Mouse: end all the others.
	if err := b.Click(`a[href*="action=sessions&"]`); err != nil {
		t.Fatal(err)
	}
	r.waitPath("/-/admin/confirm")
	if err := b.Click(`form button[type=submit]`); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVisible(`.alert.success`); err != nil {
		t.Fatal(err)
	}
	if stillIn(laptop) || stillIn(phone) {
		t.Error("a session survived End all sessions")
	}
	// Keyboard: revoke the token.
	if msg := r.keyboardConfirm(`a[href*="action=token&"]`, ""); !strings.Contains(msg, "revoked") {
		t.Errorf("after revoking the token: %q", msg)
	}
	if code := tokenWorks(); code != http.StatusUnauthorized {
		t.Errorf("the revoked token still gets %d", code)
	}
	// Keyboard: revoke the user (a reason is typed, never an id).
	again := newGWClient(t, g.URL)
	again.login(tg.Alpha)
	time.Sleep(1100 * time.Millisecond) // epochs compare in ms; the login must be before the stamp
	if msg := r.keyboardConfirm(`a[href*="action=user&"]`, "e2e: laptop stolen"); !strings.Contains(msg, "revoked") {
		t.Errorf("after revoking the user: %q", msg)
	}
	if stillIn(again) {
		t.Error("the revoked user's session still works")
	}
	r.check("admin-user-revoked")

	// Keyboard: the dashboard's guest tokens, chosen from the list.
	r.open("/-/admin/")
	if msg := r.keyboardConfirm(`a[href*="dashboard=`+dash.UUID+`"]`, ""); !strings.Contains(msg, dash.UUID) {
		t.Errorf("after revoking the dashboard's guest tokens: %q", msg)
	}
	wantGuest(t, g.URL, guest, dash.ID, http.StatusUnauthorized, "guest token after its dashboard's revocation")
	r.check("admin-done")

	// Error pages: a browser refused by the gateway gets the page (status,
	// what to do, request id); an API client keeps the JSON.
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer not-a-token"}}); err != nil {
		t.Fatal(err)
	}
	r.open("/superset/welcome/")
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{}}); err != nil {
		t.Fatal(err)
	}
	if txt, _ := b.Text(`main`); !strings.Contains(txt, "What to do") || !strings.Contains(txt, "Request id") {
		t.Errorf("refused browser page: %q", txt)
	}
	r.check("error-401")
	// Superset unreachable: the proxy's 503 page, with when to retry.
	down := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: e.s,
		Upstreams: []string{"http://127.0.0.1:1"}, DataDir: t.TempDir()})
	r.base = down.URL
	// Until the health check marks it down: 502 for each attempt.
	r.open("/superset/welcome/")
	if txt, _ := b.Text(`main`); !strings.Contains(txt, "502") || !strings.Contains(txt, "What to do") || !strings.Contains(txt, "Request id") {
		t.Errorf("Superset unreachable, browser page: %q", txt)
	}
	r.check("error-502")
	// Then 503 at once, saying when to retry.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.open("/superset/welcome/")
		txt, _ := b.Text(`main`)
		if strings.Contains(txt, "Retry in") && strings.Contains(txt, "503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 page once the upstream is marked down: %q", txt)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r.check("error-503")
	r.base = g.URL

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	req.Header.Set("Accept", "text/html")
	resp, body := newGWClient(t, g.URL).do(req)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(body, `{"msg": `) {
		t.Errorf("API client refused: %d %.200s, want the JSON", resp.StatusCode, body)
	}
}

// copyButtonWorks creates a token with the mouse and copies it with the
// page's Copy button: the clipboard then holds exactly the token shown.
func copyButtonWorks(t *testing.T, r *pagesRig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(r.b.Context(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: r.base,
		}); err != nil {
			t.Fatalf("grant %s: %v", name, err)
		}
	}
	r.open("/-/tokens")
	if err := r.b.Fill(`#name`, "copied"); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Click(`input[id="scope-api:read"]`); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Click(`form[action="/-/tokens/create"] button[type=submit]`); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Click(`button[data-copy="new-token"]`); err != nil {
		t.Fatalf("the copy button is not shown: %v", err)
	}
	if err := r.b.WaitVisible(`#new-token-copied`); err != nil {
		t.Fatal(err)
	}
	shown := r.eval(`document.getElementById('new-token').value`, false)
	copied := r.eval(`navigator.clipboard.readText()`, true)
	if !tokenPattern.MatchString(shown) || copied != shown {
		t.Errorf("copy button: clipboard %q, token shown %q", copied, shown)
	}
	if status := r.eval(`document.getElementById('new-token-copied').textContent`, false); status != "Copied to the clipboard." {
		t.Errorf("copy status %q", status)
	}
	r.check("tokens-new")
}
