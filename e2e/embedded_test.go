//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/metrics"
)

// sdkBundle is Superset's embedded SDK as e2e/embedded/install.sh installs
// it from npm (npm ci against e2e/embedded/package-lock.json).
const sdkBundle = "embedded/node_modules/@superset-ui/embedded-sdk/bundle/index.js"

// hostPage is the embedding app's page: it loads the SDK from its own
// origin and embeds the dashboard served by the gateway (another site).
// window.embed() (re-)embeds; the host's backend mints each guest token.
var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>embedding host</title>
<script src="/sdk.js"></script>
<style>#mount iframe { width: 1200px; height: 800px; border: 0; }</style>
</head><body>
<h1>host</h1>
<div id="mount"></div>
<script>
window.embedErrors = [];
window.embeds = 0;
window.embed = async function () {
  try {
    window.dash = await supersetEmbeddedSdk.embedDashboard({
      id: {{.UUID}},
      supersetDomain: {{.Gateway}},
      mountPoint: document.getElementById("mount"),
      fetchGuestToken: async () => {
        const r = await fetch("/guest-token");
        if (!r.ok) { throw new Error("guest-token: " + r.status); }
        return (await r.json()).token;
      },
      dashboardUiConfig: { hideTitle: false },
    });
    window.embeds++;
  } catch (e) {
    window.embedErrors.push(String(e));
  }
};
window.embed();
</script>
</body></html>`))

// embedHost serves the host page on its own loopback port, addressed as
// http://localhost:<port> while the gateway is http://127.0.0.1:<port>:
// another site, so the iframe is a cross-site (third-party) context.
type embedHost struct {
	URL  string
	srv  *http.Server
	mu   sync.Mutex
	page struct{ UUID, Gateway string }
	// mint answers /guest-token; set by the test.
	mint func() (string, error)
	// gate, when not nil, holds /guest-token answers until it is closed:
	// the embedded page makes no API call before it has its token, so the
	// test can attach to the iframe first and miss none of its calls.
	gate chan struct{}
}

func startEmbedHost(t *testing.T) *embedHost {
	t.Helper()
	sdk, err := os.ReadFile(sdkBundle)
	if err != nil {
		t.Fatalf("Superset's embedded SDK is not installed (%v): run e2e/embedded/install.sh (npm ci) first", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &embedHost{URL: "http://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		p := h.page
		h.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = hostPage.Execute(w, p)
	})
	mux.HandleFunc("GET /sdk.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(sdk)
	})
	mux.HandleFunc("GET /guest-token", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		mint, gate := h.mint, h.gate
		h.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			case <-time.After(60 * time.Second):
			}
		}
		tok, err := mint()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { _ = h.srv.Close() })
	return h
}

func (h *embedHost) set(uuid, gateway string, mint func() (string, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.page.UUID, h.page.Gateway, h.mint = uuid, gateway, mint
}

// hold makes /guest-token wait until release.
func (h *embedHost) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gate = make(chan struct{})
}

// release lets the held /guest-token answers go.
func (h *embedHost) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

func (h *embedHost) setMint(mint func() (string, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mint = mint
}

// apiCall is one request the embedded page made, as its Resource Timing
// entry reports it (the status is visible: the calls are same-origin to
// the iframe).
type apiCall struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
}

// frame is the embedded dashboard's iframe: a cross-site iframe runs in its
// own renderer, so chromedp reaches it by attaching to its target. From
// then on it records the /api/v1/ requests the page makes (CDP network
// events: unlike Resource Timing, they include error answers whose body
// the app never reads).
type frame struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	open   map[network.RequestID]*netCall
	calls  []netCall // answered, in order
}

// netCall is one /api/v1/ request of the embedded page and its answer.
type netCall struct {
	Method, URL string
	Status      int
	// GuestToken: the request carried X-GuestToken.
	GuestToken bool
}

func (c netCall) String() string {
	u, _, _ := strings.Cut(c.URL, "?")
	return fmt.Sprintf("%s %s → %d (X-GuestToken: %v)", c.Method, u, c.Status, c.GuestToken)
}

// waitFrame attaches to the first iframe target on gwURL/embedded/ whose id
// is not in seen, and starts recording its API calls.
func waitFrame(t *testing.T, b *browser.Browser, gwURL string, seen map[target.ID]bool) *frame {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		infos, err := chromedp.Targets(b.Context())
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, in := range infos {
			types = append(types, in.Type+" "+in.URL)
			if in.Type == "iframe" && strings.HasPrefix(in.URL, gwURL+"/embedded/") && !seen[in.TargetID] {
				seen[in.TargetID] = true
				f := &frame{open: map[network.RequestID]*netCall{}}
				f.ctx, f.cancel = chromedp.NewContext(b.Context(), chromedp.WithTargetID(in.TargetID), chromedp.WithListener(f.record))
				t.Cleanup(f.cancel)
				if err := chromedp.Do(f.ctx); err != nil {
					t.Fatalf("attach to the embedded iframe: %v", err)
				}
				if _, err := chromedp.Call(f.ctx, network.Enable, network.EnableParams{}); err != nil {
					t.Fatalf("network events of the embedded iframe: %v", err)
				}
				return f
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cross-site iframe target for %s/embedded/ (targets: %v)", gwURL, types)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// record is the target's event listener: it must return fast.
func (f *frame) record(ev any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Request == nil || !strings.Contains(ev.Request.URL, "/api/v1/") {
			return
		}
		c := &netCall{Method: ev.Request.Method, URL: ev.Request.URL}
		for k := range ev.Request.Headers {
			c.GuestToken = c.GuestToken || strings.EqualFold(k, "X-GuestToken")
		}
		f.open[ev.RequestID] = c
	case *network.EventResponseReceived:
		c, ok := f.open[ev.RequestID]
		if !ok || ev.Response == nil {
			return
		}
		delete(f.open, ev.RequestID)
		c.Status = int(ev.Response.Status)
		f.calls = append(f.calls, *c)
	}
}

// answered returns the recorded API calls from index from on.
func (f *frame) answered(from int) []netCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from > len(f.calls) {
		return nil
	}
	return append([]netCall(nil), f.calls[from:]...)
}

// waitCall waits until an API call from index from on whose URL contains
// sub is answered.
func (f *frame) waitCall(from int, sub string, within time.Duration) (netCall, []netCall, bool) {
	deadline := time.Now().Add(within)
	for {
		calls := f.answered(from)
		for _, c := range calls {
			if strings.Contains(c.URL, sub) {
				return c, calls, true
			}
		}
		if time.Now().After(deadline) {
			return netCall{}, calls, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval runs expr in the iframe and decodes its JSON-able value into out.
func (f *frame) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(v, out)
}

// apiCalls lists the /api/v1/ requests the iframe's page has completed so
// far, from its Resource Timing entries: they cover the requests made
// before the test attached, but only those whose body was read (the app
// reads successful answers; an error answer may never show up here).
func (f *frame) apiCalls(t *testing.T) []apiCall {
	t.Helper()
	var calls []apiCall
	if err := f.eval(`performance.getEntriesByType("resource")
		.filter(e => e.name.includes("/api/v1/"))
		.map(e => ({url: e.name, status: e.responseStatus}))`, &calls); err != nil {
		t.Fatalf("read the iframe's resource timings: %v", err)
	}
	return calls
}

// waitText polls the iframe's rendered text until it contains s.
func (f *frame) waitText(s string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for {
		var txt string
		if err := f.eval(`document.body ? document.body.innerText : ""`, &txt); err == nil {
			last = txt
			if strings.Contains(txt, s) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%q not in the embedded page after %s; its text: %.400q", s, within, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// hostEval runs expr in the host page.
func hostEval[T any](t *testing.T, b *browser.Browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("host page: %s: %v", expr, err)
	}
	return v
}

// TestEmbeddedDashboardRevocation (issue 7, test 1): a host page on another
// site embeds a dashboard through the gateway with Superset's own embedded
// SDK from npm, in headless Chromium. The dashboard renders with a token the
// host minted through the gateway. After the dashboard's guest tokens are
// revoked through the admin API, the embedded page's next API calls are
// refused (401), and a token minted after the revocation works again.
func TestEmbeddedDashboardRevocation(t *testing.T) {
	e := shared(t)
	host := startEmbedHost(t)
	adminTok, adminYAML := adminToken(t)
	g := startGatewayWith(t, e, buildGateway(t), t.TempDir(), "", "", adminYAML,
		// /embedded/ may be framed by the host page's origin.
		"headers: {frame_ancestors: \"'self' "+host.URL+"\"}")

	dash := createEmbeddedDashboard(t, mustSupersetAPI(t, e.c.Target.BaseURL, e.c.Target.Admin), "sdk")
	// The host's backend mints tokens through the gateway, as admin.
	minter := mustSupersetAPI(t, g.URL, e.c.Target.Admin)
	fresh := func() (string, error) { return minter.guestToken(dash.UUID) }
	host.set(dash.UUID, g.URL, fresh)
	sessionsBefore := metric(t, g, metrics.NameSessionsCreatedTotal)

	b := browser.ForTest(t, browser.Options{})
	host.hold()
	if err := b.Navigate(host.URL + "/"); err != nil {
		t.Fatal(err)
	}
	seen := map[target.ID]bool{}
	f := waitFrame(t, b, g.URL, seen)
	host.release()
	if err := f.waitText(dash.Marker, 90*time.Second); err != nil {
		t.Fatalf("the embedded dashboard did not render: %v (host errors: %v)", err,
			hostEval[[]string](t, b, "window.embedErrors"))
	}
	calls := f.apiCalls(t)
	var dashRead bool
	for _, c := range f.answered(0) {
		if c.Status/100 != 2 || !c.GuestToken {
			t.Errorf("embedded page, before revocation: %v", c)
		}
	}
	for _, c := range calls {
		if c.Status/100 != 2 {
			t.Errorf("embedded page, before revocation: %s → %d", c.URL, c.Status)
		}
		if strings.Contains(c.URL, "/api/v1/dashboard/") {
			dashRead = true
		}
	}
	if !dashRead {
		t.Errorf("the embedded page read no /api/v1/dashboard/ endpoint: %v", calls)
	}
	checked := metric(t, g, metrics.NameGuestTokensCheckedTotal)
	if checked == 0 {
		t.Errorf("the gateway checked no guest token while the embedded dashboard loaded")
	}
	t.Logf("embedded page rendered; %d API calls, %v guest tokens checked", len(calls), checked)
	reportEmbeddedSessions(t, b, g, sessionsBefore)

	// The live page's next API call: the SDK asks the iframe for a
	// permalink, which it creates with POST /api/v1/dashboard/<id>/permalink
	// under the token it holds. Once before the revocation, once after.
	permalink := func() (netCall, string) {
		t.Helper()
		n := len(f.answered(0))
		sdkErr := hostEval[string](t, b, `window.dash.getDashboardPermalink("e2e").then(() => "", e => String(e || "rejected"))`)
		c, calls, ok := f.waitCall(n, "/permalink", 20*time.Second)
		if !ok {
			t.Fatalf("the embedded page made no permalink call for getDashboardPermalink (SDK: %q; calls: %v)", sdkErr, calls)
		}
		if !c.GuestToken {
			t.Errorf("the embedded page's %v carried no X-GuestToken", c)
		}
		return c, sdkErr
	}
	c, sdkErr := permalink()
	t.Logf("live page before the revocation: %v (SDK error: %q)", c, sdkErr)
	if c.Status == http.StatusUnauthorized {
		t.Fatalf("live page before the revocation: %v, want it to reach Superset", c)
	}

	// The token the live page holds, for the "stale host" re-embed below.
	stale, err := fresh()
	if err != nil {
		t.Fatal(err)
	}
	out := mustRevoke(t, g.URL, adminTok, strconv.Itoa(dash.ID))
	t.Logf("revoked dashboard %d: %v", dash.ID, out)

	c, sdkErr = permalink()
	t.Logf("live page after the revocation: %v (SDK error: %q)", c, sdkErr)
	if c.Status != http.StatusUnauthorized {
		t.Errorf("REVOKED: the live embedded page's %v, want 401", c)
	}
	if sdkErr == "" {
		t.Errorf("getDashboardPermalink succeeded after the revocation")
	}

	// A host that keeps serving the revoked token: a fresh embed with it
	// reads nothing; the gateway refuses its calls as revoked.
	revoked0 := metric(t, g, metrics.NameRefusalsTotal, `credential="guest_token",reason="revoked"`)
	host.setMint(func() (string, error) { return stale, nil })
	host.hold()
	hostEval[any](t, b, "void window.embed()") // not awaited: attach before its API calls
	f2 := waitFrame(t, b, g.URL, seen)
	host.release()
	if c, calls, ok := f2.waitCall(0, "/api/v1/", 60*time.Second); !ok || c.Status != http.StatusUnauthorized {
		t.Errorf("re-embedded with the revoked token: first API call %v (seen: %v), want 401", c, calls)
	}
	time.Sleep(3 * time.Second) // room for the page to render, which it must not
	if err := f2.waitText(dash.Marker, time.Second); err == nil {
		t.Errorf("REVOKED: the dashboard rendered with a token minted before the revocation")
	}
	for _, c := range f2.answered(0) {
		if c.Status/100 == 2 {
			t.Errorf("REVOKED: %v with the revoked token", c)
		}
	}
	if n := metric(t, g, metrics.NameRefusalsTotal, `credential="guest_token",reason="revoked"`) - revoked0; n == 0 {
		t.Errorf("the re-embed with the revoked token: %s{credential=\"guest_token\",reason=\"revoked\"} did not grow", metrics.NameRefusalsTotal)
	}
	t.Logf("re-embedded with the revoked token: %v", f2.answered(0))

	// A token minted after the revocation works again.
	host.setMint(fresh)
	host.hold()
	hostEval[any](t, b, "void window.embed()") // not awaited: attach before its API calls
	f3 := waitFrame(t, b, g.URL, seen)
	host.release()
	if err := f3.waitText(dash.Marker, 90*time.Second); err != nil {
		t.Fatalf("a token minted after the revocation: %v", err)
	}
	for _, c := range f3.apiCalls(t) {
		if c.Status/100 != 2 {
			t.Errorf("embedded page with a fresh token: %s → %d", c.URL, c.Status)
		}
	}
	for _, c := range f3.answered(0) {
		if c.Status/100 != 2 || !c.GuestToken {
			t.Errorf("embedded page with a fresh token: %v", c)
		}
	}
}

// reportEmbeddedSessions logs what loading /embedded/<uuid> in a cross-site
// iframe did to gateway sessions (issue 5/7 question): Superset sets its
// session cookie on that page, which carries no guest token.
func reportEmbeddedSessions(t *testing.T, b *browser.Browser, g *harness.Gateway, before float64) {
	t.Helper()
	created := metric(t, g, metrics.NameSessionsCreatedTotal) - before
	cookies, err := b.Cookies(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, c := range cookies {
		held = append(held, fmt.Sprintf("%s(SameSite=%s)", c.Name, c.SameSite))
	}
	t.Logf("FINDING: one cross-site embed created %v gateway session(s); the browser holds for the gateway: %v", created, held)
}

// TestGuestTokenRevocationScopes (issue 7, test 2), plain HTTP: revoking
// dashboard A leaves B's tokens working; revoking A by slug refuses A's
// tokens whether they name its embed uuid, numeric id or slug; a global
// revocation refuses every token; tokens minted afterwards work. No
// guest-token request creates a gateway session (test 4).
func TestGuestTokenRevocationScopes(t *testing.T) {
	e := shared(t)
	adminTok, adminYAML := adminToken(t)
	g := startGatewayWith(t, e, buildGateway(t), t.TempDir(), "", "", adminYAML)
	direct := mustSupersetAPI(t, e.c.Target.BaseURL, e.c.Target.Admin)
	a := createEmbeddedDashboard(t, direct, "a")
	bd := createEmbeddedDashboard(t, direct, "b")
	api := mustSupersetAPI(t, g.URL, e.c.Target.Admin)
	sessions0 := metric(t, g, metrics.NameSessionsCreatedTotal)

	byUUID := api.mustGuestToken(t, a.UUID)
	byID := api.mustGuestToken(t, strconv.Itoa(a.ID))
	bySlug := api.mustGuestToken(t, a.Slug)
	tokB := api.mustGuestToken(t, bd.UUID)
	for name, tok := range map[string]string{"A by uuid": byUUID, "A by id": byID} {
		wantGuest(t, g.URL, tok, a.ID, http.StatusOK, name+", before any revocation")
	}
	// Superset issues a token naming the slug but grants it nothing: its
	// guest access matches the resource id against the dashboard's numeric
	// id and embed uuid only (docs/superset-6.1.md). The 404 is Superset's
	// own answer, so the token did reach it.
	wantGuest(t, g.URL, bySlug, a.ID, http.StatusNotFound, "A by slug, before any revocation")
	wantGuest(t, g.URL, tokB, bd.ID, http.StatusOK, "B, before any revocation")

	out := mustRevoke(t, g.URL, adminTok, a.Slug)
	aliases := fmt.Sprint(out)
	for _, want := range []string{a.Slug, a.UUID, strconv.Itoa(a.ID)} {
		if !strings.Contains(aliases, want) {
			t.Errorf("revoke by slug answered %v: alias %s not stamped", out, want)
		}
	}
	for name, tok := range map[string]string{"A by uuid": byUUID, "A by id": byID, "A by slug": bySlug} {
		wantGuest(t, g.URL, tok, a.ID, http.StatusUnauthorized, name+", after A was revoked by slug")
	}
	wantGuest(t, g.URL, tokB, bd.ID, http.StatusOK, "B, after A was revoked")
	r := guestGet(t, g.URL, byUUID, "/api/v1/dashboard/"+strconv.Itoa(a.ID))
	var body map[string]any
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Errorf("refusal body is not JSON like Superset's: %.200q", r.body)
	}
	newA := api.mustGuestToken(t, a.UUID)
	wantGuest(t, g.URL, newA, a.ID, http.StatusOK, "A, token minted after its revocation")

	mustRevoke(t, g.URL, adminTok, "")
	wantGuest(t, g.URL, tokB, bd.ID, http.StatusUnauthorized, "B, after the global revocation")
	wantGuest(t, g.URL, newA, a.ID, http.StatusUnauthorized, "A's newer token, after the global revocation")
	wantGuest(t, g.URL, api.mustGuestToken(t, bd.UUID), bd.ID, http.StatusOK, "B, token minted after the global revocation")

	if n := metric(t, g, metrics.NameSessionsCreatedTotal) - sessions0; n != 0 {
		t.Errorf("guest-token requests created %v gateway sessions, want 0", n)
	}
}

// TestGuestTokenRevocationDurable (issue 7, test 3): a revocation answered
// 200 survives a restart of the gateway on the embedded store, and a
// Redis restart (AOF, appendfsync always; killed, not stopped) seen by a
// gateway with a cold cache.
func TestGuestTokenRevocationDurable(t *testing.T) {
	e := shared(t)
	bin := buildGateway(t)
	adminTok, adminYAML := adminToken(t)
	dash := createEmbeddedDashboard(t, mustSupersetAPI(t, e.c.Target.BaseURL, e.c.Target.Admin), "durable")

	t.Run("embedded store, gateway restart", func(t *testing.T) {
		data := t.TempDir()
		g := startGatewayWith(t, e, bin, data, "", "", adminYAML)
		tok := mustSupersetAPI(t, g.URL, e.c.Target.Admin).mustGuestToken(t, dash.UUID)
		wantGuest(t, g.URL, tok, dash.ID, http.StatusOK, "before the revocation")
		mustRevoke(t, g.URL, adminTok, dash.UUID)
		wantGuest(t, g.URL, tok, dash.ID, http.StatusUnauthorized, "after the revocation")
		g.Stop()

		g2 := startGatewayWith(t, e, bin, data, "", "", adminYAML)
		wantGuest(t, g2.URL, tok, dash.ID, http.StatusUnauthorized, "REVOCATION LOST: after a gateway restart")
		tok2 := mustSupersetAPI(t, g2.URL, e.c.Target.Admin).mustGuestToken(t, dash.UUID)
		wantGuest(t, g2.URL, tok2, dash.ID, http.StatusOK, "a token minted after the revocation, after the restart")
	})

	t.Run("redis restart", func(t *testing.T) {
		rd := redistest.Start(t, redistest.Options{AppendOnly: true})
		keys := writeCookieKeys(t)
		g := startGatewayWith(t, e, bin, t.TempDir(), rd.URL(), keys, adminYAML)
		tok := mustSupersetAPI(t, g.URL, e.c.Target.Admin).mustGuestToken(t, dash.UUID)
		wantGuest(t, g.URL, tok, dash.ID, http.StatusOK, "before the revocation")
		mustRevoke(t, g.URL, adminTok, strconv.Itoa(dash.ID))

		rd.Kill()
		rd.Restart(t)
		// A second gateway on the same Redis has nothing cached: what it
		// refuses, the store kept.
		g2 := startGatewayWith(t, e, bin, t.TempDir(), rd.URL(), keys, adminYAML)
		wantGuest(t, g2.URL, tok, dash.ID, http.StatusUnauthorized, "REVOCATION LOST: a cold gateway after a Redis restart")
		// The first one, past its cache TTL, reads the restarted store.
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := guestGet(t, g.URL, tok, "/api/v1/dashboard/"+strconv.Itoa(dash.ID))
			if r.code == http.StatusUnauthorized {
				break
			}
			if r.code == http.StatusOK {
				t.Fatalf("REVOCATION LOST: the first gateway lets the revoked token through after the Redis restart")
			}
			if time.Now().After(deadline) {
				t.Fatalf("first gateway after the Redis restart: %d %.200s", r.code, r.body)
			}
			time.Sleep(200 * time.Millisecond) // 503 while it reconnects
		}
		tok2 := mustSupersetAPI(t, g2.URL, e.c.Target.Admin).mustGuestToken(t, dash.UUID)
		wantGuest(t, g2.URL, tok2, dash.ID, http.StatusOK, "a token minted after the revocation")
	})
}

// TestEmbeddedPageSessions (issue 7, test 4, the page load): loading
// /embedded/<uuid> carries no guest token, and Superset sets its session
// cookie there; the gateway keeps embedded traffic stateless and creates
// no session for it (cross-site, the browser would drop the cookie and
// every iframe load would leave a record behind).
func TestEmbeddedPageSessions(t *testing.T) {
	e := shared(t)
	g := startGatewayWith(t, e, buildGateway(t), t.TempDir(), "", "")
	before := metric(t, g, metrics.NameSessionsCreatedTotal)
	const loads = 3
	var setCookie []string
	for range loads {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(g.URL + "/embedded/" + e.c.Target.EmbedUUID)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /embedded/<uuid> through the gateway: %d", resp.StatusCode)
		}
		setCookie = resp.Header.Values("Set-Cookie")
		for _, c := range setCookie {
			for _, name := range supersetCookies {
				if strings.HasPrefix(c, name+"=") {
					t.Errorf("/embedded/ handed the client Superset's %q cookie", name)
				}
			}
		}
	}
	created := metric(t, g, metrics.NameSessionsCreatedTotal) - before
	if created != 0 {
		t.Errorf("%d loads of /embedded/<uuid> created %v gateway sessions, want 0", loads, created)
	}
	for _, c := range setCookie {
		if strings.HasPrefix(c, gatewayCookie+"=") {
			t.Errorf("/embedded/ set the gateway cookie: %v", redactCookies(setCookie))
		}
	}
}

// redactCookies keeps a Set-Cookie's name and attributes, not its value.
func redactCookies(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		name, rest, _ := strings.Cut(c, "=")
		_, attrs, _ := strings.Cut(rest, ";")
		out = append(out, name+"=…;"+attrs)
	}
	return out
}

// TestEmbeddedCookieSameSite (issue 7, cookie attributes): the host page is
// on another site than the gateway. Embedded traffic is stateless at the
// gateway (guest-token calls and the /embedded/ page load create no
// session), so the dashboard renders cross-site whatever SameSite and the
// browser's third-party-cookie setting say, and no embed leaves a gateway
// cookie or a session record behind. session.cookie_samesite still shapes
// the cookie of first-party use: none (with an https public_url) gives
// __Host-sg_session with SameSite=None and Secure, lax the default.
func TestEmbeddedCookieSameSite(t *testing.T) {
	e := shared(t)
	bin := buildGateway(t)
	dash := createEmbeddedDashboard(t, mustSupersetAPI(t, e.c.Target.BaseURL, e.c.Target.Admin), "samesite")
	for _, tc := range []struct {
		mode        string
		https       bool
		restrict3PC bool
	}{{"lax", false, false}, {"none", true, false}, {"none", true, true}} {
		t.Run(fmt.Sprintf("%s/3pc_restricted=%v", tc.mode, tc.restrict3PC), func(t *testing.T) {
			host := startEmbedHost(t)
			o := harness.GatewayOptions{Binary: bin, DataDir: t.TempDir(), Extra: []string{
				"headers: {frame_ancestors: \"'self' " + host.URL + "\"}",
				"session: {cookie_samesite: " + tc.mode + "}",
			}}
			if tc.https {
				o.TLSCertFile, o.TLSKeyFile = writeTestCert(t)
			}
			g := startGatewayOpts(t, e, o)
			minter := mustSupersetAPI(t, g.URL, e.c.Target.Admin)
			host.set(dash.UUID, g.URL, func() (string, error) { return minter.guestToken(dash.UUID) })
			sessions0 := metric(t, g, metrics.NameSessionsCreatedTotal)

			b := browser.ForTest(t, browser.Options{IgnoreCertificateErrors: tc.https, AllowThirdPartyCookies: !tc.restrict3PC})
			if err := b.Navigate(host.URL + "/"); err != nil {
				t.Fatal(err)
			}
			seen := map[target.ID]bool{}
			if err := waitFrame(t, b, g.URL, seen).waitText(dash.Marker, 90*time.Second); err != nil {
				t.Fatalf("the embedded dashboard did not render: %v", err)
			}
			first := metric(t, g, metrics.NameSessionsCreatedTotal) - sessions0
			cookies, err := b.Cookies(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			var held []string
			var gw *network.Cookie
			for _, c := range cookies {
				held = append(held, fmt.Sprintf("%s(SameSite=%s Secure=%v)", c.Name, c.SameSite, c.Secure))
				if strings.HasSuffix(c.Name, gatewayCookie) {
					gw = c
				}
				for _, name := range supersetCookies {
					if c.Name == name {
						t.Errorf("the browser holds Superset's %q cookie", name)
					}
				}
			}
			if gw != nil {
				t.Errorf("cookie_samesite %s: an embed left the gateway cookie %s in the browser", tc.mode, gw.Name)
			}
			if first != 0 {
				t.Errorf("cookie_samesite %s: the embed created %v gateway session(s), want 0 (held: %v)", tc.mode, first, held)
			}

			// A second embed in the same browser: still nothing stored.
			hostEval[any](t, b, "void window.embed()")
			if err := waitFrame(t, b, g.URL, seen).waitText(dash.Marker, 90*time.Second); err != nil {
				t.Fatalf("second embed: %v", err)
			}
			if both := metric(t, g, metrics.NameSessionsCreatedTotal) - sessions0; both != 0 {
				t.Errorf("cookie_samesite %s: two embeds created %v gateway session(s), want 0", tc.mode, both)
			}

			// First party, the configured attributes apply.
			if err := b.Navigate(g.URL + "/login/"); err != nil {
				t.Fatal(err)
			}
			cookies, err = b.Cookies(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			gw = nil
			for _, c := range cookies {
				if strings.HasSuffix(c.Name, gatewayCookie) {
					gw = c
				}
			}
			wantName, wantSS, wantSecure := gatewayCookie, network.CookieSameSiteLax, false
			if tc.mode == "none" {
				wantName, wantSS, wantSecure = "__Host-"+gatewayCookie, network.CookieSameSiteNone, true
			}
			if gw == nil || gw.Name != wantName || gw.SameSite != wantSS || gw.Secure != wantSecure || !gw.HTTPOnly {
				t.Errorf("cookie_samesite %s, first party: got %+v, want %s SameSite=%s Secure=%v HttpOnly", tc.mode, gw, wantName, wantSS, wantSecure)
			}
		})
	}
}
