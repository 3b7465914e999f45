//go:build e2e

package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

// meID is the Superset user id and name /api/v1/me/ answers for cookie.
func meID(t *testing.T, base, cookie string) (code int, id, username string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: cookie})
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Result struct {
			ID       int    `json:"id"`
			Username string `json:"username"`
		} `json:"result"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&me)
	return resp.StatusCode, strconv.Itoa(me.Result.ID), me.Result.Username
}

// sessionsOf is the admin API's list of a user's gateway sessions.
func sessionsOf(t *testing.T, base, token, id string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/-/admin/api/v1/users/"+id+"/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("GET users/%s/sessions: %d", id, resp.StatusCode)
	}
	return len(out.Sessions)
}

// TestServerSideRemoteUserLogin (issue 12, finding 4): REMOTE_USER with
// SESSION_SERVER_SIDE. FAB signs the user in on a GET and keeps the sid, so
// nothing on the wire but the identity behind the session changes. An id
// planted before the victim's sign-in must not become hers, her session
// must be listed for admins, and a revoke must end it.
func TestServerSideRemoteUserLogin(t *testing.T) {
	rd := redistest.Start(t, redistest.Options{})
	s, c := ownSuperset(t, harness.Options{RemoteUserHeader: remoteUserHeader, RedisURL: rd.URL()})
	tok, adminYAML := adminToken(t)
	g := gatewayFor(t, s, []string{c.Target.BaseURL}, "trusted_proxies: [127.0.0.1/32]",
		"trusted_headers: ["+remoteUserHeader+"]", adminYAML)

	attacker := newGWClient(t, g.URL)
	attacker.get("/login/")
	planted := attacker.session()
	if planted == "" {
		t.Fatal("GET /login/ without the header left no anonymous gateway session to plant")
	}
	victim := newGWClient(t, g.URL)
	victim.plant(planted)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/login/", nil)
	req.Header.Set(remoteUserHeader, c.Target.Alpha.Username)
	if resp, _ := victim.do(req); resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /login/ with %s: %d", remoteUserHeader, resp.StatusCode)
	}
	fresh := victim.session()
	if fresh == "" || fresh == planted {
		t.Fatalf("the sign-in did not rotate the gateway session (changed: %v)", fresh != planted)
	}
	if code, user := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("the planted id after the victim's sign-in: %d as %q, want 401 (fixation)", code, user)
	}
	code, id, user := meID(t, g.URL, fresh)
	if code != http.StatusOK || user != c.Target.Alpha.Username {
		t.Fatalf("the victim's session: %d as %q", code, user)
	}
	if n := sessionsOf(t, g.URL, tok, id); n != 1 {
		t.Fatalf("the admin API lists %d sessions of %s, want 1", n, user)
	}
	if code, b := adminPost(t, g.URL, tok, "users/"+id+"/revoke"); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, b)
	}
	if code, _ := meAs(t, g.URL, fresh); code != http.StatusUnauthorized {
		t.Fatalf("her copied cookie after the revoke: %d, want 401", code)
	}
}

// TestServerSideScriptNameLogin (issue 12, finding 3): with server-side
// sessions the login form posted to /x/login/ with Script_Name: /x signed
// the user in at Superset while the gateway kept the session anonymous in
// its books. Whoever Superset now takes the session for must be whom the
// gateway has booked, or no one.
func TestServerSideScriptNameLogin(t *testing.T) {
	rd := redistest.Start(t, redistest.Options{})
	s, c := ownSuperset(t, harness.Options{RedisURL: rd.URL()})
	tok, adminYAML := adminToken(t)
	g := gatewayFor(t, s, []string{c.Target.BaseURL}, adminYAML)

	b := newGWClient(t, g.URL)
	_, body := b.get("/login/")
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	form := url.Values{"username": {c.Target.Alpha.Username}, "password": {c.Target.Alpha.Password}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/x/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header["Script_Name"] = []string{"/x"}
	b.do(req)

	code, id, user := meID(t, g.URL, b.session())
	switch code {
	case http.StatusUnauthorized:
		// No one: the header never reached gunicorn, Superset routed
		// /x/login/ nowhere.
	case http.StatusOK:
		// Someone: then the gateway must have booked them.
		if n := sessionsOf(t, g.URL, tok, id); n != 1 {
			t.Fatalf("Superset takes the session for %s, the gateway lists %d sessions of them", user, n)
		}
	default:
		t.Fatalf("/api/v1/me/: %d", code)
	}
	// Either way a revoke of alpha leaves nothing signed in.
	if code, b := adminPost(t, g.URL, tok, "users/"+url.PathEscape(c.Target.Alpha.Username)+"/revoke"); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, b)
	}
	if code, user := meAs(t, g.URL, b.session()); code != http.StatusUnauthorized {
		t.Fatalf("after the revoke the session is still %q (%d)", user, code)
	}
}

// slowLogin is Superset behind a proxy that holds the answer to POST
// /login/ for delay after Superset sent it: Superset checked the password
// before whatever happens meanwhile.
func slowLogin(t *testing.T, target string, delay time.Duration) string {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodPost && strings.TrimSuffix(resp.Request.URL.Path, "/") == "/login" {
			time.Sleep(delay)
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLoginInFlightAcrossRevocation (issue 12, finding 6): a login that
// Superset checked before the user was revoked, but answered after, must
// not outlive the revocation: the login time is when the request was sent.
func TestLoginInFlightAcrossRevocation(t *testing.T) {
	e := shared(t)
	tok, adminYAML := adminToken(t)
	g := gatewayFor(t, e.s, []string{slowLogin(t, e.c.Target.BaseURL, 2*time.Second)}, adminYAML)
	cr := e.c.Target.Alpha
	b := newGWClient(t, g.URL)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.login(cr)
	}()
	time.Sleep(time.Second) // Superset has answered; the proxy holds it
	if code, out := adminPost(t, g.URL, tok, "users/"+url.PathEscape(cr.Username)+"/revoke"); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, out)
	}
	<-done
	if code, user := meAs(t, g.URL, b.session()); code != http.StatusUnauthorized {
		t.Fatalf("a login answered after the revoke is signed in as %q (%d), want 401", user, code)
	}
	// A login sent after the revoke works.
	time.Sleep(10 * time.Millisecond)
	again := newGWClient(t, g.URL)
	again.login(cr)
	if code, _ := meAs(t, g.URL, again.session()); code != http.StatusOK {
		t.Fatalf("a login after the revoke: %d", code)
	}
}

// TestRevokedSessionPages (issue 12, finding 5) against the real
// Superset: a session revoked by an admin opens no gateway page and cannot
// end the user's new sessions.
func TestRevokedSessionPages(t *testing.T) {
	e := shared(t)
	tok, adminYAML := adminToken(t)
	g := gatewayFor(t, e.s, []string{e.c.Target.BaseURL}, adminYAML)
	cr := e.c.Target.Gamma
	old := newGWClient(t, g.URL)
	old.login(cr)
	if code, out := adminPost(t, g.URL, tok, "users/"+url.PathEscape(cr.Username)+"/revoke"); code != http.StatusOK {
		t.Fatalf("revoke: %d %v", code, out)
	}
	time.Sleep(10 * time.Millisecond)
	fresh := newGWClient(t, g.URL)
	fresh.login(cr)
	for _, c := range []struct{ method, path string }{{"GET", "/-/sessions"}, {"POST", "/-/sessions/end-others"}} {
		req, _ := http.NewRequest(c.method, g.URL+c.path, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: old.session()})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || strings.Contains(string(body), cr.Username) {
			t.Fatalf("%s %s with the revoked cookie: %d %.200s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if code, _ := meAs(t, g.URL, fresh.session()); code != http.StatusOK {
		t.Fatalf("the user's new session after the revoked one tried the page: %d", code)
	}
}
