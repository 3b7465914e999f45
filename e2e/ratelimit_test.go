//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/ratelimit"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// loginCounter sits between the gateways and one Superset node and counts
// the sign-in attempts on each username that reached Superset.
type loginCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *loginCounter) get(u string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[u]
}

func startLoginCounter(t *testing.T, node string) string {
	t.Helper()
	u, err := url.Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	c := &loginCounter{n: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.TrimRight(r.URL.Path, "/") == "/login" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			v, _ := url.ParseQuery(string(b))
			c.mu.Lock()
			c.n[v.Get("username")]++
			c.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { t.Logf("sign-in attempts that reached Superset: %v", c.n) })
	counters.Store(srv.URL, c)
	return srv.URL
}

var counters sync.Map

// rlClient is one browser-like client of a gateway: a cookie jar, no
// redirects followed, an optional X-Forwarded-For and source address.
type rlClient struct {
	c   *http.Client
	xff string
}

func newRLClient(t *testing.T, jar http.CookieJar, local string) *rlClient {
	t.Helper()
	if jar == nil {
		jar, _ = cookiejar.New(nil)
	}
	tr := &http.Transport{}
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &rlClient{c: &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *rlClient) do(t *testing.T, method, u string, body url.Values) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, _ := http.NewRequest(method, u, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	if c.xff != "" {
		req.Header.Set("X-Forwarded-For", c.xff)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// signIn plays the login page: GET /login/ for the CSRF token, then the
// form POST. It returns the POST's answer.
func (c *rlClient) signIn(t *testing.T, base string, cr conformance.Credentials) *http.Response {
	t.Helper()
	resp, body := c.do(t, http.MethodGet, base+"/login/", nil)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("GET /login/: %d, no csrf_token input", resp.StatusCode)
	}
	resp, _ = c.do(t, http.MethodPost, base+"/login/", url.Values{
		"username": {cr.Username}, "password": {cr.Password}, "csrf_token": {m[1]}})
	return resp
}

func check429(t *testing.T, resp *http.Response, class string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	if p := resp.Header.Get("RateLimit-Policy"); !strings.HasPrefix(p, strconv.Quote(class)+";q=") {
		t.Fatalf("RateLimit-Policy %q, want class %s", p, class)
	}
	if !strings.HasPrefix(resp.Header.Get("RateLimit"), strconv.Quote(class)+";r=") {
		t.Fatalf("RateLimit %q", resp.Header.Get("RateLimit"))
	}
}

// TestRateLimitCredentialStuffing: two gateway replicas on one Redis, a
// trusted proxy (127.0.0.1) forwarding for many client addresses. A brute
// force on one username is cut off after the failure budget on both
// replicas, the limited attempts never reach Superset, and the owner's
// browser that signed in before still signs in. From an untrusted peer a
// spoofed X-Forwarded-For does not move the client to another bucket; an
// API client over its limit gets 429 with the RateLimit headers.
func TestRateLimitCredentialStuffing(t *testing.T) {
	e := shared(t)
	rd := redistest.Start(t, redistest.Options{})
	counted := startLoginCounter(t, nodeURLs(e)[0])
	bin, keys := buildGateway(t), writeCookieKeys(t)
	extra := []string{
		"trusted_proxies: [127.0.0.1/32]",
		"rate_limits: {login_failures: {rate: 3, period: 10m, burst: 3}, login_address: {rate: 5, period: 1m, burst: 5}, api: {rate: 5, period: 1m, burst: 5}}",
	}
	start := func() *harness.Gateway {
		// Not startGatewayOpts: it points the gateway at the nodes, and
		// this one goes through the counter.
		g := startGatewayT(t, harness.GatewayOptions{Binary: bin, Superset: e.s, Upstreams: []string{counted},
			DataDir: t.TempDir(), RedisURL: rd.URL(), CookieKeysFile: keys, Extra: extra, RateLimits: true})
		// A JWT issued within the fresh store's epoch second is refused.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
		return g
	}
	a := start()
	b := start()
	// /-/readyz says the buckets are shared and not on the fallback.
	resp, err := http.Get(a.URL + "/-/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(ready), `"rate_limits":{"shared":true,"fallback":false}`) {
		t.Fatalf("/-/readyz: %s", ready)
	}
	c, _ := counters.Load(counted)
	count := c.(*loginCounter)
	owner := e.c.Target.Gamma

	// The owner's browser signs in once, through replica a.
	ownerJar, _ := cookiejar.New(nil)
	ob := newRLClient(t, ownerJar, "")
	ob.xff = "192.0.2.10"
	if resp := ob.signIn(t, a.URL, owner); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("owner's first sign-in: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	au, _ := url.Parse(a.URL)
	var device *http.Cookie
	for _, ck := range ownerJar.Cookies(au) {
		if ck.Name == ratelimit.DeviceCookie {
			device = ck
		}
	}
	if device == nil {
		t.Fatal("no known-device cookie after a successful sign-in")
	}

	// And in Chromium, on Superset's real login page.
	br := browser.ForTest(t, browser.Options{})
	browserLogin(t, br, a.URL, owner)

	// The attack: wrong passwords from 12 addresses, alternating replicas.
	limited := map[string]int{}
	before := count.get(owner.Username)
	for i := range 12 {
		g := a
		if i%2 == 1 {
			g = b
		}
		ac := newRLClient(t, nil, "")
		ac.xff = fmt.Sprintf("198.51.100.%d", i+1)
		resp := ac.signIn(t, g.URL, conformance.Credentials{Username: owner.Username, Password: "wrong-" + strconv.Itoa(i)})
		switch resp.StatusCode {
		case http.StatusFound:
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
				t.Fatalf("a wrong password signed in? %q", loc)
			}
		case http.StatusTooManyRequests:
			check429(t, resp, ratelimit.ClassLoginFailures)
			limited[g.URL]++
		default:
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	if limited[a.URL] == 0 || limited[b.URL] == 0 || limited[a.URL]+limited[b.URL] != 9 {
		t.Fatalf("limited per replica %v, want 9 of 12 across both", limited)
	}
	if got := count.get(owner.Username) - before; got != 3 {
		t.Fatalf("%d attempts reached Superset, want the 3 of the failure budget", got)
	}

	// A new browser without the cookie is slowed too, even with the
	// right password.
	stranger := newRLClient(t, nil, "")
	stranger.xff = "203.0.113.5"
	if resp := stranger.signIn(t, b.URL, owner); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a browser never seen before: %d, want 429 while the username is under attack", resp.StatusCode)
	}

	// The owner's browser (its gateway session long gone, the known-device
	// cookie kept) still signs in, on the other replica.
	jar2, _ := cookiejar.New(nil)
	bu, _ := url.Parse(b.URL)
	jar2.SetCookies(bu, []*http.Cookie{{Name: device.Name, Value: device.Value, Path: "/"}})
	back := newRLClient(t, jar2, "")
	back.xff = "192.0.2.77"
	if resp := back.signIn(t, b.URL, owner); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("owner with the known-device cookie: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Chromium, its gateway session cookie gone (signed out, expired),
	// the known-device cookie kept, signs in on the other replica.
	cks, err := br.Cookies(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	kept := false
	for _, ck := range cks {
		if ck.Name == ratelimit.DeviceCookie {
			kept = true
			continue
		}
		if _, err := chromedp.Call(br.Context(), network.DeleteCookies, network.DeleteCookiesParams{Name: ck.Name, URL: a.URL}); err != nil {
			t.Fatal(err)
		}
	}
	if !kept {
		t.Fatal("Chromium holds no known-device cookie after signing in")
	}
	browserLogin(t, br, b.URL, owner)

	// Spoofing: from 127.0.0.2 (not a trusted proxy) a changing
	// X-Forwarded-For stays one client: the 6th attempt is refused.
	var last *http.Response
	for i := range 6 {
		sp := newRLClient(t, nil, "127.0.0.2")
		sp.xff = fmt.Sprintf("10.9.9.%d", i+1)
		last, _ = sp.do(t, http.MethodPost, a.URL+"/login/", url.Values{"username": {"nobody-" + strconv.Itoa(i)}, "password": {"x"}})
	}
	check429(t, last, ratelimit.ClassLoginAddress)
	if ct := last.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("a browser's 429 is %q, want the HTML page", ct)
	}

	// An API client over its limit: 429 with the headers, JSON.
	tok := rlAPIToken(t, a.URL, e.c.Target.Alpha)
	var body []byte
	for i := range 6 {
		g := a
		if i%2 == 1 {
			g = b
		}
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/api/v1/me/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if i < 5 && resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
	}
	check429(t, resp, ratelimit.ClassAPI)
	var msg map[string]string
	if json.Unmarshal(body, &msg) != nil || msg["msg"] == "" {
		t.Fatalf("API 429 body %q, want JSON", body)
	}
}

func rlAPIToken(t *testing.T, base string, cr conformance.Credentials) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"username": cr.Username, "password": cr.Password, "provider": "db", "refresh": false})
	resp, err := http.Post(base+"/api/v1/security/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("API login: %d %v", resp.StatusCode, err)
	}
	// The gateway refuses a JWT issued within the second of a fresh
	// store's global epoch; startGatewayOpts already waited past it.
	return out.AccessToken
}

// TestRateLimitSupersetOwnLimiter checks the real Superset 6.1.0's own
// limiter (RATELIMIT_ENABLED as SUPERSET_ENV=production sets it, here 100
// per hour, which the harness's fixtures fit in, so the test is no race
// against the clock) behind the gateway
// (its own limits off). It keys by the address ProxyFix yields: with
// ENABLE_PROXY_FIX two clients have two buckets; without it every client
// is the gateway, and one client's requests exhaust everyone's bucket.
func TestRateLimitSupersetOwnLimiter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noProxyFix bool
		shared     bool
	}{{"proxy_fix", false, false}, {"no_proxy_fix", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := ownSuperset(t, harness.Options{RateLimit: "100 per hour", NoProxyFix: tc.noProxyFix})
			// Clients connect from their own addresses (127.0.0.2 and .3);
			// the gateway forwards X-Forwarded-For as its peer, which
			// ProxyFix (x_for=1) hands to Superset.
			// The gateway's own limits are off (harness default).
			g := gatewayFor(t, s, []string{c.Target.BaseURL})
			get := func(src string) int {
				cl := newRLClient(t, nil, src)
				resp, _ := cl.do(t, http.MethodGet, g.URL+"/api/v1/dashboard/", nil)
				return resp.StatusCode
			}
			n := 0
			for ; n < 150 && get("127.0.0.2") != http.StatusTooManyRequests; n++ {
			}
			if n == 150 {
				t.Fatal("client A never got 429: Superset's limiter is not on")
			}
			other := get("127.0.0.3")
			if tc.shared != (other == http.StatusTooManyRequests) {
				t.Fatalf("client B after A's %d requests: %d (shared bucket expected: %v)", n, other, tc.shared)
			}
			t.Logf("client A limited by Superset after %d requests; client B then got %d", n, other)
		})
	}
}
