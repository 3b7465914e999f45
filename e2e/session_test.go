//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// gatewayCookie is the gateway's session cookie name under an http public URL.
const gatewayCookie = "sg_session"

// supersetCookies are the cookies Superset sets; none may ever reach a
// browser through the gateway.
var supersetCookies = []string{"session", "remember_token", "async-token"}

// gwClient is a browser-like HTTP client for the gateway: it keeps cookies,
// does not follow redirects, and fails the test on any response that would
// hand the client one of Superset's own cookies.
type gwClient struct {
	t    *testing.T
	base string
	jar  http.CookieJar
	c    *http.Client
}

func newGWClient(t *testing.T, base string) *gwClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &gwClient{t: t, base: base, jar: jar, c: &http.Client{
		Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *gwClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		for _, name := range supersetCookies {
			if ck.Name == name {
				c.t.Errorf("%s %s: the gateway handed the client Superset's %q cookie", req.Method, req.URL.Path, name)
			}
		}
	}
	return resp, string(b)
}

func (c *gwClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// login signs in through the gateway the way Superset's login page does:
// GET /login/ for the CSRF token, then the form POST.
func (c *gwClient) login(cr conformance.Credentials) {
	c.t.Helper()
	resp, body := c.get("/login/")
	m := csrfInput.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		c.t.Fatalf("GET /login/ through the gateway: %d, csrf input found: %v", resp.StatusCode, m != nil)
	}
	form := url.Values{"username": {cr.Username}, "password": {cr.Password}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = c.do(req)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		c.t.Fatalf("POST /login/ as %s through the gateway: %d %q", cr.Username, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// session returns the gateway cookie's value ("" if none).
func (c *gwClient) session() string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == gatewayCookie {
			return ck.Value
		}
	}
	return ""
}

// plant replaces the client's gateway cookie with value.
func (c *gwClient) plant(value string) {
	u, _ := url.Parse(c.base)
	c.jar.SetCookies(u, []*http.Cookie{{Name: gatewayCookie, Value: value, Path: "/"}})
}

// meAs asks GET /api/v1/me/ through the gateway with only the given gateway
// cookie value and returns the status and the username (if 200).
func meAs(t *testing.T, base, cookie string) (int, string) {
	t.Helper()
	code, _, user := meID(t, base, cookie)
	return code, user
}

// TestSupersetCookiesNeverCross (A1 test 1): a valid Superset session cookie
// sent by the client never reaches Superset, and no response carries one
// (gwClient fails the test on any).
func TestSupersetCookiesNeverCross(t *testing.T) {
	e := shared(t)
	g := startGateway(t, e)
	tg := e.c.Target
	// A real, signed-in Superset cookie, obtained from Superset directly.
	stolen := formLogin(t, tg, tg.Admin)

	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/me/", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: stolen.Value})
	req.AddCookie(&http.Cookie{Name: "remember_token", Value: "1|deadbeef"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Superset's own cookie sent through the gateway: /api/v1/me/ %d, want 401 (stripped)", resp.StatusCode)
	}

	// A whole signed-in browsing round: no Superset cookie comes back.
	c := newGWClient(t, g.URL)
	c.login(tg.Alpha)
	for _, p := range []string{"/", "/superset/welcome/", "/api/v1/me/", "/logout/"} {
		c.get(p)
	}
}

// TestBrowserLoginThroughGateway (A1 test 2): Chromium signs in on
// Superset's real login page through the gateway, lands on the welcome
// page, opens the dashboard; it never holds a Superset cookie, its gateway
// cookie changed at login, and the pre-login id is anonymous afterwards.
func TestBrowserLoginThroughGateway(t *testing.T) {
	e := shared(t)
	g := startGateway(t, e)
	tg := e.c.Target
	b := browser.ForTest(t, browser.Options{})
	if err := b.Navigate(g.URL + "/login/"); err != nil {
		t.Fatal(err)
	}
	before := browserCookie(t, b, g.URL, gatewayCookie)
	if before == "" {
		t.Fatal("no gateway cookie on the login page")
	}
	if err := b.Fill(`input[data-test="username-input"]`, tg.Admin.Username); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="password-input"]`, tg.Admin.Password); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`[data-test="login-button"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitURLPrefix(g.URL + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
	after := browserCookie(t, b, g.URL, gatewayCookie)
	if after == "" || after == before {
		t.Fatalf("gateway cookie after login: changed=%v present=%v", after != before, after != "")
	}
	dash := g.URL + "/superset/dashboard/" + tg.DashboardSlug + "/"
	if tg.DashboardSlug == "" {
		dash = g.URL + "/superset/dashboard/" + strconv.Itoa(tg.DashboardID) + "/"
	}
	if err := b.Navigate(dash); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVisible(`#app`); err != nil {
		t.Fatal(err)
	}
	if u, _ := b.Location(); strings.Contains(u, "/login/") {
		t.Fatalf("dashboard page sent the signed-in browser to %s", u)
	}
	for _, name := range supersetCookies {
		if v := browserCookie(t, b, g.URL, name); v != "" {
			t.Errorf("the browser holds Superset's %q cookie", name)
		}
	}
	if code, user := meAs(t, g.URL, after); code != http.StatusOK || user != tg.Admin.Username {
		t.Errorf("browser's session from a script: /api/v1/me/ %d %q", code, user)
	}
	if code, _ := meAs(t, g.URL, before); code != http.StatusUnauthorized {
		t.Errorf("the pre-login gateway id still works after login: %d", code)
	}
}

func browserCookie(t *testing.T, b *browser.Browser, base, name string) string {
	t.Helper()
	cookies, err := b.Cookies(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// writeCookieKeys writes one generation of gateway cookie keys (hash key
// and encryption key, base64) for replicas to share.
func writeCookieKeys(t *testing.T) string {
	t.Helper()
	hash, block := make([]byte, 64), make([]byte, 32)
	_, _ = rand.Read(hash)
	_, _ = rand.Read(block)
	p := filepath.Join(t.TempDir(), "cookie-keys")
	line := base64.StdEncoding.EncodeToString(hash) + " " + base64.StdEncoding.EncodeToString(block) + "\n"
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startReplica runs one gateway on the shared Redis with shared cookie keys.
func startReplica(t *testing.T, e *env, redisURL, keys string) *harness.Gateway {
	t.Helper()
	return startGatewayT(t, harness.GatewayOptions{
		Binary: buildGateway(t), Superset: e.s, Upstreams: nodeURLs(e), DataDir: t.TempDir(),
		RedisURL: redisURL, CookieKeysFile: keys,
	})
}

// TestReplicasShareSessions (A1 test 6): two gateways on one Redis. A
// session made on one works on the other; a logout on one is enforced on
// the other within session.cache_ttl (1s by default), the hard bound even
// if a pub/sub message were lost. The measured propagation is logged.
func TestReplicasShareSessions(t *testing.T) {
	e := shared(t)
	rd := redistest.Start(t, redistest.Options{AppendOnly: true})
	keys := writeCookieKeys(t)
	a := startReplica(t, e, rd.URL(), keys)
	b := startReplica(t, e, rd.URL(), keys)

	c := newGWClient(t, a.URL)
	c.login(e.c.Target.Alpha)
	id := c.session()
	if code, user := meAs(t, b.URL, id); code != http.StatusOK || user != e.c.Target.Alpha.Username {
		t.Fatalf("session from replica A on replica B: %d %q", code, user)
	}
	if resp, _ := c.get("/logout/"); resp.StatusCode/100 != 3 {
		t.Fatalf("logout on A: %d", resp.StatusCode)
	}
	start := time.Now()
	const bound = time.Second // session.cache_ttl default
	for {
		code, _ := meAs(t, b.URL, id)
		if code == http.StatusUnauthorized {
			t.Logf("logout on replica A refused on replica B after %s (bound %s)", time.Since(start).Round(time.Millisecond), bound)
			break
		}
		if time.Since(start) > bound+500*time.Millisecond {
			t.Fatalf("logout on A not enforced on B after %s (cache_ttl %s): status %d", time.Since(start), bound, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreOutageFailsClosed (A1 test 7): with Redis stopped the gateway
// answers 503 with Retry-After and leaves the cookie alone; with Redis back
// the same session works again.
func TestStoreOutageFailsClosed(t *testing.T) {
	e := shared(t)
	rd := redistest.Start(t, redistest.Options{AppendOnly: true})
	g := startReplica(t, e, rd.URL(), writeCookieKeys(t))
	c := newGWClient(t, g.URL)
	c.login(e.c.Target.Gamma)
	id := c.session()

	rd.Kill()
	time.Sleep(1500 * time.Millisecond) // past the cache TTL: the next request must read the store
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/me/", nil)
	req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: id})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d Retry-After=%q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("store down: the gateway touched the cookie: %v", resp.Header.Values("Set-Cookie"))
	}

	rd.Restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, user := meAs(t, g.URL, id)
		if code == http.StatusOK && user == e.c.Target.Gamma.Username {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back: the same session still gets %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestEmbeddedStoreSessionsSurviveRestart (A1 test 7, embedded store).
func TestEmbeddedStoreSessionsSurviveRestart(t *testing.T) {
	e := shared(t)
	data := t.TempDir()
	bin := buildGateway(t)
	ups := nodeURLs(e)
	start := func() *harness.Gateway {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		g, err := harness.StartGateway(ctx, harness.GatewayOptions{Binary: bin, Superset: e.s, Upstreams: ups, DataDir: data})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := start()
	c := newGWClient(t, g.URL)
	c.login(e.c.Target.Alpha)
	id := c.session()
	url1 := g.URL
	g.Stop()

	g2 := start()
	t.Cleanup(g2.Stop)
	if g2.URL != url1 {
		// A new port is fine: cookies are not bound to the port.
		t.Logf("restarted on %s (was %s)", g2.URL, url1)
	}
	if code, user := meAs(t, g2.URL, id); code != http.StatusOK || user != e.c.Target.Alpha.Username {
		t.Fatalf("after a gateway restart on the embedded store: %d %q, want 200 %q", code, user, e.c.Target.Alpha.Username)
	}
}
