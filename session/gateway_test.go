package session_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

func forBackends(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{boltBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) { f(t, b) })
	}
}

// Login rotates the id; the pre-login id is anonymous afterwards; Superset
// never sees the gateway cookie and the client never sees Superset's.
func TestLoginRotatesAndPlantedCookieIsWorthless(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		for _, serverSide := range []bool{false, true} {
			t.Run(map[bool]string{false: "cookie-sessions", true: "server-side-sessions"}[serverSide], func(t *testing.T) {
				clk := newClock()
				ss := startSuperset(t, clk, serverSide)
				g := startGateway(t, ss, openStore(t, b, clk), clk, gwOpts{})

				// The attacker opens the login page and plants the
				// anonymous cookie in the victim's browser.
				planted, csrf := g.anonymous()
				if got := g.me(planted); got != http.StatusUnauthorized {
					t.Fatalf("anonymous /me: %d", got)
				}
				victim := g.login(planted, csrf, "alice", fakesuperset.AlicePassword)
				if victim == planted {
					t.Fatal("login did not rotate the gateway session id")
				}
				if got := g.me(victim); got != http.StatusOK {
					t.Fatalf("victim /me: %d", got)
				}
				r := g.do("GET", "/api/v1/me/", g.cookieHeader(planted), nil)
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("planted cookie after login: /me %d, want 401", r.StatusCode)
				}
				// Just rotated away: worthless, but the answer leaves the
				// cookie alone (a browser's in-flight requests must not
				// undo its login); past the grace it is cleared.
				if v, ok := r.gwCookie(g.vault.CookieName()); ok {
					t.Fatalf("just-rotated cookie: Set-Cookie %q within the grace", v)
				}
				clk.Advance(session.RotatedGrace)
				r = g.do("GET", "/api/v1/me/", g.cookieHeader(planted), nil)
				if r.StatusCode != http.StatusUnauthorized {
					t.Fatalf("planted cookie after the grace: /me %d, want 401", r.StatusCode)
				}
				if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" {
					t.Fatalf("dead cookie not cleared after the grace: %q %v", v, ok)
				}
				if got := g.me(victim); got != http.StatusOK {
					t.Fatalf("victim /me after the grace: %d", got)
				}
				if g.obs.get("rotated") != 1 {
					t.Fatalf("rotations: %d", g.obs.get("rotated"))
				}
				for _, c := range ss.seen.all() {
					if strings.Contains(c, "sg_session") {
						t.Fatalf("gateway cookie reached Superset: %q", c)
					}
				}
				list, err := g.vault.ListUserSessions(context.Background(), "2")
				if err != nil || len(list) != 1 || list[0].AuthMethod != "form" || list[0].Username != "alice" {
					t.Fatalf("ListUserSessions: %+v %v", list, err)
				}
			})
		}
	})
}

// A browser signing in has other requests in flight with its anonymous
// id (Superset's login page posts its event log as the form submits).
// One looked up before the login rotated the id and answered after it,
// with a cookie from Superset, must not clear the new cookie nor set
// another: the user would land back on the login page. Seen with the real
// Superset and Chromium.
func TestInFlightRequestDoesNotUndoLogin(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		clk := newClock()
		ss := &superset{seen: &upstreamSeen{}}
		entered, release := make(chan struct{}), make(chan struct{})
		ss.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now, Observe: func(r *http.Request) {
			ss.seen.observe(r)
			if r.URL.Query().Get("slow") == "1" {
				close(entered)
				<-release
			}
		}})
		ss.srv = httptest.NewServer(ss.fake)
		t.Cleanup(ss.srv.Close)
		g := startGateway(t, ss, openStore(t, b, clk), clk, gwOpts{})

		anon, csrf := g.anonymous()
		done := make(chan reply, 1)
		// An anonymous visit to a protected page: Superset flashes "Access
		// is Denied" into its session cookie and redirects to the login.
		go func() { done <- g.do("GET", "/users/list/?slow=1", g.cookieHeader(anon), nil) }()
		<-entered // looked up with the anonymous id, now at Superset
		fresh := g.login(anon, csrf, "alice", fakesuperset.AlicePassword)
		close(release)
		late := <-done
		if late.StatusCode != http.StatusFound {
			t.Fatalf("in-flight /users/list/: %d, want 302", late.StatusCode)
		}
		if v, ok := late.gwCookie(g.vault.CookieName()); ok {
			t.Fatalf("the in-flight answer set the gateway cookie to %q after the login", v)
		}
		if got := g.me(fresh); got != http.StatusOK {
			t.Fatalf("signed-in id after the in-flight answer: /me %d", got)
		}
		if got := g.me(anon); got != http.StatusUnauthorized {
			t.Fatalf("the rotated-away id: /me %d, want 401", got)
		}
	})
}

func TestCopiedCookieDeadAfterLogout(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		clk := newClock()
		ss := startSuperset(t, clk, false)
		g := startGateway(t, ss, openStore(t, b, clk), clk, gwOpts{})
		c := g.signIn("bob", fakesuperset.BobPassword)
		copied := c
		r := g.do("GET", "/logout/", g.cookieHeader(c), nil)
		if r.StatusCode != http.StatusFound {
			t.Fatalf("logout: %d", r.StatusCode)
		}
		if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" {
			t.Fatal("logout did not clear the gateway cookie")
		}
		if got := g.me(copied); got != http.StatusUnauthorized {
			t.Fatalf("copied cookie after logout: %d", got)
		}
		if g.obs.get("destroyed:logout") != 1 {
			t.Fatal("logout not counted")
		}
	})
}

// Whatever Superset-looking cookie the client sends — even a genuine,
// validly signed admin session cookie — never reaches Superset.
func TestInboundSupersetCookiesNeverReachSuperset(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	stolen, err := flaskcookie.Encode(flaskcookie.Session{"_user_id": "1", "_fresh": true}, secretKey, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	evil := "session=" + stolen + "; remember_token=1|abc; async-token=x; other=1"
	if got := g.do("GET", "/api/v1/me/", evil, nil).StatusCode; got != http.StatusUnauthorized {
		t.Fatalf("stolen Superset cookie accepted: %d", got)
	}
	if c := ss.seen.last(); c != "" {
		t.Fatalf("Superset received cookies %q", c)
	}
	// With a live gateway session too, only the jar's cookies go up.
	a, _ := g.anonymous()
	g.do("GET", "/api/v1/me/", g.cookieHeader(a)+"; "+evil, nil)
	got := ss.seen.last()
	if strings.Contains(got, stolen) || strings.Contains(got, "remember_token") || strings.Contains(got, "async-token") ||
		strings.Contains(got, "other=") || strings.Contains(got, "sg_session") || !strings.HasPrefix(got, "session=") {
		t.Fatalf("Superset received %q", got)
	}
}

func TestTimeouts(t *testing.T) {
	forBackends(t, testTimeouts)
}

// testTimeouts runs on both stores: bolt expires keys on the fake clock
// itself, Redis does not, so there the vault's own checks are what ends
// the session.
func testTimeouts(t *testing.T, b backend) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, b, clk), clk, gwOpts{})

	t.Run("idle", func(t *testing.T) {
		c := g.signIn("alice", fakesuperset.AlicePassword)
		clk.Advance(59 * time.Minute)
		if got := g.me(c); got != http.StatusOK {
			t.Fatalf("within idle: %d", got)
		}
		clk.Advance(59 * time.Minute) // idle measured from the last use
		if got := g.me(c); got != http.StatusOK {
			t.Fatalf("within idle after use: %d", got)
		}
		clk.Advance(61 * time.Minute)
		r := g.do("GET", "/api/v1/me/", g.cookieHeader(c), nil)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after idle: %d", r.StatusCode)
		}
		if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" {
			t.Fatal("idle-expired cookie not cleared")
		}
		if b == redisBackend && g.obs.get("destroyed:idle") != 1 {
			t.Fatal("idle expiry not counted")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		c := g.signIn("alice", fakesuperset.AlicePassword)
		for range 7 {
			clk.Advance(30 * time.Minute)
			if got := g.me(c); got != http.StatusOK {
				t.Fatalf("before absolute: %d", got)
			}
		}
		clk.Advance(31 * time.Minute)
		if got := g.me(c); got != http.StatusUnauthorized {
			t.Fatalf("after absolute: %d", got)
		}
	})
	t.Run("anonymous-idle-is-shorter", func(t *testing.T) {
		a, _ := g.anonymous()
		clk.Advance(11 * time.Minute)
		r := g.do("GET", "/health", g.cookieHeader(a), nil)
		if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" {
			t.Fatal("expired anonymous cookie not cleared")
		}
	})
}

// Two replicas on one Redis: a logout on one is enforced on the other by
// pub/sub, and by the cache TTL alone when the message is lost.
func TestReplicas(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	srv := redistest.Start(t, redistest.Options{})
	g1 := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{})
	g2 := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{})
	deaf := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{noStart: true})

	c := g1.signIn("alice", fakesuperset.AlicePassword)
	for _, g := range []*tgw{g2, deaf} {
		if got := g.me(c); got != http.StatusOK {
			t.Fatalf("other replica: %d", got) // now cached there
		}
	}
	g1.do("GET", "/logout/", g1.cookieHeader(c), nil)

	// The fake clock does not move, so only the invalidation message can
	// evict g2's cached copy.
	start := time.Now()
	for g2.me(c) != http.StatusUnauthorized {
		if time.Since(start) > 10*time.Second {
			t.Fatal("logout on g1 not enforced on g2")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("logout propagated to the other replica in %v", time.Since(start))

	// The replica that missed the message serves its cached copy at most
	// until the cache TTL has passed.
	if got := deaf.me(c); got != http.StatusOK {
		t.Fatalf("deaf replica before cache TTL: %d (the cache was expected to hold)", got)
	}
	clk.Advance(time.Minute)
	if got := deaf.me(c); got != http.StatusUnauthorized {
		t.Fatalf("deaf replica after cache TTL: %d", got)
	}

	// A rotation is enforced on the other replica as well.
	a, csrf := g1.anonymous()
	if got := g2.me(a); got != http.StatusUnauthorized {
		t.Fatal(got)
	}
	if r := g2.do("GET", "/health", g2.cookieHeader(a), nil); r.Header.Get("Set-Cookie") != "" {
		t.Fatal("live anonymous cookie cleared on g2")
	}
	g2.login(a, csrf, "bob", fakesuperset.BobPassword)
	// Past the grace, a dead id's cookie is cleared: that shows g1 no
	// longer holds a's session (its cache TTL has not passed).
	clk.Advance(session.RotatedGrace)
	start = time.Now()
	for {
		r := g1.do("GET", "/health", g1.cookieHeader(a), nil)
		if v, ok := r.gwCookie(g1.vault.CookieName()); ok && v == "" {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("rotation on g2 not enforced on g1")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Store down: 503 with Retry-After and the cookie kept; store back: the
// same session works.
func TestStoreDown(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	g := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{modify: func(o *session.Options) {
		o.StoreTimeout = 500 * time.Millisecond
	}})
	c := g.signIn("alice", fakesuperset.AlicePassword)
	srv.Kill()
	clk.Advance(2 * time.Minute) // past the cache TTL, within the idle timeout
	for _, req := range []struct{ method, path, cookie string }{
		{"GET", "/api/v1/me/", g.cookieHeader(c)},
		{"GET", "/login/", ""}, // would create an anonymous session
	} {
		r := g.do(req.method, req.path, req.cookie, nil)
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s with store down: %d Retry-After=%q", req.path, r.StatusCode, r.Header.Get("Retry-After"))
		}
		if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("%s with store down set cookies %q", req.path, sc)
		}
	}
	srv.Restart(t)
	start := time.Now()
	for g.me(c) != http.StatusOK {
		if time.Since(start) > 10*time.Second {
			t.Fatal("session not usable after the store came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The raw store value holds no Superset cookie bytes.
func TestStoreValueHoldsNoSupersetCookie(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		clk := newClock()
		ss := startSuperset(t, clk, false)
		st := openStore(t, b, clk)
		g := startGateway(t, ss, st, clk, gwOpts{})
		c := g.signIn("alice", fakesuperset.AlicePassword)
		g.me(c)
		sent := ss.seen.last() // "session=<flask cookie>", injected from the jar
		flask, ok := strings.CutPrefix(sent, "session=")
		if !ok || len(flask) < 40 {
			t.Fatalf("no Flask cookie injected: %q", sent)
		}
		id, err := mustCodec(t, g).Decode(c)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.Get(context.Background(), "session:"+handleOf(id))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(flask, ".")
		for _, p := range append(parts, flask) {
			if len(p) >= 8 && strings.Contains(string(raw), p) {
				t.Fatalf("store value contains Superset cookie bytes %q", p)
			}
		}
		var rec map[string]any
		if err := json.Unmarshal(raw, &rec); err != nil || rec["uid"] != "2" {
			t.Fatalf("record %s: %v", raw, err)
		}
	})
}

func TestCookieKeyRotation(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	st := openStore(t, boltBackend, clk)
	old := startGateway(t, ss, st, clk, gwOpts{keys: []session.KeyPair{gatewaytest.KeyPair(1)}})
	c := old.signIn("alice", fakesuperset.AlicePassword)

	rotated := startGateway(t, ss, st, clk, gwOpts{keys: []session.KeyPair{gatewaytest.KeyPair(2), gatewaytest.KeyPair(1)}})
	if got := rotated.me(c); got != http.StatusOK {
		t.Fatalf("old-key cookie after rotation: %d", got)
	}
	fresh := rotated.signIn("bob", fakesuperset.BobPassword)
	if _, err := mustCodec(t, old).Decode(fresh); err == nil {
		t.Fatal("new cookies are still signed with the old key")
	}

	unknown := startGateway(t, ss, st, clk, gwOpts{keys: []session.KeyPair{gatewaytest.KeyPair(3)}})
	r := unknown.do("GET", "/api/v1/me/", unknown.cookieHeader(c), nil)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown-key cookie: %d", r.StatusCode)
	}
	if v, ok := r.gwCookie(unknown.vault.CookieName()); !ok || v != "" {
		t.Fatal("unknown-key cookie not cleared")
	}
}

// Forged, malformed and oversized cookies are no session, never a 500.
func TestBadCookies(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	good, _ := g.anonymous()
	other, err := session.NewCookieCodec([]session.KeyPair{gatewaytest.KeyPair(9)}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Encode(make([]byte, session.IDLen))
	unknownID, _ := mustCodec(t, g).Encode(make([]byte, session.IDLen))
	for name, v := range map[string]string{
		"garbage":    "not-a-cookie",
		"truncated":  good[:len(good)-5],
		"bitflip":    flip(good),
		"oversized":  strings.Repeat("A", 6000),
		"forged-key": forged,
		"unknown-id": unknownID,
		"pipes":      "a|b|c|d",
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			r := g.do("GET", "/api/v1/me/", g.vault.CookieName()+"="+v, nil)
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", r.StatusCode)
			}
			if c, ok := r.gwCookie(g.vault.CookieName()); !ok || c != "" {
				t.Fatal("bad cookie not cleared")
			}
			if c := ss.seen.last(); c != "" {
				t.Fatalf("Superset received %q", c)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// Pass-through requests and guest-token requests never create a record.
func TestNoRecordWithoutReason(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	uuid := ss.fake.Dashboard().EmbedUUID
	for _, req := range []struct {
		path string
		hdr  []string
	}{
		{"/health", nil},
		{"/static/assets/images/favicon.png", nil},
		{"/superset/welcome/", nil},
		{"/embedded/" + uuid, []string{"X-GuestToken", "x.y.z"}},
		{"/embedded/" + uuid + "?guest_token=x.y.z", nil},
		{"/embedded/" + uuid, nil}, // the page load itself: stateless too
	} {
		for range 3 {
			r := g.do("GET", req.path, "", nil, req.hdr...)
			if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Fatalf("%s set %q", req.path, sc)
			}
		}
	}
	if n := g.obs.get("created:anonymous") + g.obs.get("created:user"); n != 0 {
		t.Fatalf("%d records created", n)
	}
	// The login page does create one (Superset set a cookie), which shows
	// the test above tests something.
	if _, ok := g.do("GET", "/login/", "", nil).gwCookie(g.vault.CookieName()); !ok {
		t.Fatal("the login page set no gateway cookie")
	}
}

func TestAnonymousCreationRateLimited(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) {
		o.AnonymousRate, o.AnonymousBurst = 0.1, 3
	}})
	for i := range 3 {
		if r := g.do("GET", "/login/", "", nil); r.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d", i, r.StatusCode)
		}
	}
	r := g.do("GET", "/login/", "", nil)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th cookie-less request: %d", r.StatusCode)
	}
	if g.obs.get("created:anonymous") != 3 || g.obs.get("rate_limited") != 1 {
		t.Fatalf("counts: created %d, rate limited %d", g.obs.get("created:anonymous"), g.obs.get("rate_limited"))
	}
	clk.Advance(10 * time.Second)
	if r := g.do("GET", "/login/", "", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("after refill: %d", r.StatusCode)
	}
}

// An API script with a Bearer JWT fetches a CSRF token and posts with it;
// its cookie jar holds the gateway cookie instead of Superset's.
func TestAPIScriptWithCSRF(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	login := postJSON(t, g, "/api/v1/security/login", "", "", `{"username":"admin","password":"`+fakesuperset.AdminPassword+`","provider":"db"}`, "")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(login.body), &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("api login: %d %s", login.StatusCode, login.body)
	}
	bearer := "Bearer " + tok.AccessToken
	cr := g.do("GET", "/api/v1/security/csrf_token/", "", nil, "Authorization", bearer)
	var csrf struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal([]byte(cr.body), &csrf); err != nil || csrf.Result == "" {
		t.Fatalf("csrf_token: %d %s", cr.StatusCode, cr.body)
	}
	jar, ok := cr.gwCookie(g.vault.CookieName())
	if !ok || jar == "" {
		t.Fatal("csrf_token response set no gateway cookie")
	}
	body := `{"dashboard_title":"from a script"}`
	if r := postJSON(t, g, "/api/v1/dashboard/", g.cookieHeader(jar), bearer, body, csrf.Result); r.StatusCode != http.StatusCreated {
		t.Fatalf("POST with CSRF through the gateway: %d %s", r.StatusCode, r.body)
	}
	if r := postJSON(t, g, "/api/v1/dashboard/", "", bearer, body, csrf.Result); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST without the gateway cookie: %d (CSRF session expected to be missing)", r.StatusCode)
	}
}

func postJSON(t *testing.T, g *tgw, path, cookie, bearer, body, csrf string) reply {
	t.Helper()
	req, err := http.NewRequest("POST", g.front.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	if csrf != "" {
		req.Header.Set("X-CSRFToken", csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = sbReadFrom(&sb, resp)
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(sc, g.vault.CookieName()+"=") {
			t.Fatalf("Superset cookie reached the client: %q", sc)
		}
	}
	return reply{resp, sb.String()}
}

func sbReadFrom(sb *strings.Builder, resp *http.Response) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		sb.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestSessionsPage(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	laptop := g.signIn("alice", fakesuperset.AlicePassword)
	phone := g.signIn("alice", fakesuperset.AlicePassword)
	bob := g.signIn("bob", fakesuperset.BobPassword)

	page := g.do("GET", "/-/sessions", g.cookieHeader(laptop), nil, "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
	if page.StatusCode != http.StatusOK || strings.Count(page.body, `name="session"`) != 2 || !strings.Contains(page.body, `<span class="tag active">this session</span>`) {
		t.Fatalf("page: %d %s", page.StatusCode, page.body)
	}
	// Device, place and time of each session, in the shared layout.
	for _, want := range []string{"Go HTTP client", "Place (IP address)", " UTC</td>", `href="/-/tokens"`, `aria-current="page"`, "Signed in as <strong>alice</strong>"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("sessions page lacks %q", want)
		}
	}
	if r := g.do("GET", "/-/sessions", "", nil); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
		t.Fatalf("anonymous visitor: %d %q", r.StatusCode, r.Header.Get("Location"))
	}

	// Another method: the styled page for a browser, Superset's JSON for a
	// script, Allow on both; nothing ends.
	for accept, want := range map[string]string{"text/html": "gateway.css", "": `{"msg": "This address takes only the sessions page`} {
		r := g.do("DELETE", "/-/sessions", g.cookieHeader(laptop), nil, "Accept", accept)
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, POST" || !strings.Contains(r.body, want) {
			t.Errorf("DELETE with Accept %q: %d Allow=%q %.200s, want 405 with %q", accept, r.StatusCode, r.Header.Get("Allow"), r.body, want)
		}
	}
	if g.me(laptop) != http.StatusOK || g.me(phone) != http.StatusOK {
		t.Fatal("a refused method ended a session")
	}

	// A cross-site form post is refused.
	cross := g.do("POST", "/-/sessions/end-others", g.cookieHeader(laptop), url.Values{}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
	if cross.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d", cross.StatusCode)
	}
	if g.me(phone) != http.StatusOK {
		t.Fatal("cross-origin POST ended a session")
	}

	// Alice cannot end Bob's session by its handle.
	bobID, _ := mustCodec(t, g).Decode(bob)
	g.do("POST", "/-/sessions/end", g.cookieHeader(laptop), url.Values{"session": {handleOf(bobID)}}, "Sec-Fetch-Site", "same-origin")
	if g.me(bob) != http.StatusOK {
		t.Fatal("alice ended bob's session")
	}

	r := g.do("POST", "/-/sessions/end-others", g.cookieHeader(laptop), url.Values{}, "Sec-Fetch-Site", "same-origin")
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("end others: %d %s", r.StatusCode, r.body)
	}
	if g.me(phone) != http.StatusUnauthorized || g.me(laptop) != http.StatusOK {
		t.Fatal("end-others ended the wrong sessions")
	}
	laptopID, _ := mustCodec(t, g).Decode(laptop)
	r = g.do("POST", "/-/sessions/end", g.cookieHeader(laptop), url.Values{"session": {handleOf(laptopID)}}, "Sec-Fetch-Site", "same-origin")
	if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" || g.me(laptop) != http.StatusUnauthorized {
		t.Fatal("ending the current session did not sign out")
	}
}

// last_seen is written at most once a minute.
func TestLastSeenThrottled(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	st := &countingStore{Store: openStore(t, boltBackend, clk)}
	g := startGateway(t, ss, st, clk, gwOpts{})
	c := g.signIn("alice", fakesuperset.AlicePassword)
	before := st.sets.Load()
	for range 20 {
		clk.Advance(2 * time.Second)
		g.me(c)
	}
	if got := st.sets.Load() - before; got != 0 {
		t.Fatalf("%d writes within 40s", got)
	}
	clk.Advance(30 * time.Second)
	g.me(c)
	g.me(c)
	if got := st.sets.Load() - before; got != 1 {
		t.Fatalf("%d writes after a minute, want 1", got)
	}
	if g.obs.get("lookup:hit") < 15 || g.obs.get("lookup:miss") == 0 {
		t.Fatalf("lookups: %d hits, %d misses", g.obs.get("lookup:hit"), g.obs.get("lookup:miss"))
	}
	list, _ := g.vault.ListUserSessions(context.Background(), "2")
	if len(list) != 1 || !list[0].LastSeen.Equal(clk.Now().Truncate(time.Millisecond)) {
		t.Fatalf("last seen not stored: %+v (now %v)", list, clk.Now())
	}
}

var _ store.Store = (*countingStore)(nil)

// Superset re-issuing its cookie on an ordinary request (a failed login
// queues a flash message) updates the jar under the same id; the session
// keeps working and a later login still rotates.
func TestJarUpdatesKeepTheSession(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		clk := newClock()
		ss := startSuperset(t, clk, false)
		g := startGateway(t, ss, openStore(t, b, clk), clk, gwOpts{})
		a, csrf := g.anonymous()
		r := g.do("POST", "/login/", g.cookieHeader(a), url.Values{"username": {"alice"}, "password": {"wrong"}, "csrf_token": {csrf}})
		if r.StatusCode != http.StatusFound || strings.Contains(r.Header.Get("Set-Cookie"), "sg_session=") {
			t.Fatalf("failed login: %d, cookies %q", r.StatusCode, r.Header.Values("Set-Cookie"))
		}
		clk.Advance(2 * time.Minute) // past the cache TTL: the next read comes from the store
		page := g.do("GET", "/login/", g.cookieHeader(a), nil)
		if !strings.Contains(page.body, "Invalid login") {
			t.Fatalf("flash lost: the updated jar was not kept: %s", page.body)
		}
		c := g.login(a, page.csrf(t), "alice", fakesuperset.AlicePassword)
		clk.Advance(2 * time.Minute)
		if g.me(c) != http.StatusOK || g.me(a) != http.StatusUnauthorized {
			t.Fatal("login after jar updates")
		}
	})
}

// Concurrent requests on one session while it is logged out elsewhere:
// for the race detector, and to check that nothing resurrects the record.
func TestConcurrentUseAndLogout(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	srv := redistest.Start(t, redistest.Options{})
	g1 := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{})
	g2 := startGateway(t, ss, redisStore(t, srv), clk, gwOpts{})
	c := g1.signIn("alice", fakesuperset.AlicePassword)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := []*tgw{g1, g2}[i%2]
			for {
				select {
				case <-done:
					return
				default:
				}
				clk.Advance(20 * time.Second) // last_seen writes fall due
				g.do("GET", "/api/v1/me/", g.cookieHeader(c), nil)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	g2.do("GET", "/logout/", g2.cookieHeader(c), nil)
	time.Sleep(100 * time.Millisecond)
	close(done)
	wg.Wait()
	clk.Advance(2 * time.Minute) // past the cache TTL
	for _, g := range []*tgw{g1, g2} {
		if got := g.me(c); got != http.StatusUnauthorized {
			t.Fatalf("session alive after logout: %d", got)
		}
	}
}

// Embedded store: sessions survive a gateway restart.
func TestBoltSessionsSurviveRestart(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	path := filepath.Join(t.TempDir(), "gw.db")
	st1, err := bolt.Open(path, bolt.Options{Now: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	g1 := startGateway(t, ss, st1, clk, gwOpts{})
	c := g1.signIn("alice", fakesuperset.AlicePassword)
	g1.front.Close()
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := bolt.Open(path, bolt.Options{Now: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st2.Close() })
	g2 := startGateway(t, ss, st2, clk, gwOpts{})
	if got := g2.me(c); got != http.StatusOK {
		t.Fatalf("after restart: %d", got)
	}
}
