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
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// Issue 12, findings 3 to 6: a sign-in is recognised by what Superset did,
// not by the route it happened on; the gateway's own pages check the
// epoch like proxied routes; a login's time is when it was sent. All
// against Superset with SESSION_SERVER_SIDE = True, where the sid does not
// change at login (docs/superset-6.1.md §11), so only asking Superset who
// the session is can tell that someone signed in. Finding 4 (FAB's
// REMOTE_USER sign-in is a GET) is TestLoginMatrix's remote_user/redis row.

// TestLoginsServerSide: findings 3, 5 and 6 on one Superset with
// server-side sessions (AUTH_DB), reached through a relay that stands in
// for what the gateway cannot see (a header gunicorn honours) and for a
// slow answer.
func TestLoginsServerSide(t *testing.T) {
	ps := supersetFor(t, poolKey{methodForm, backendRedis}) // checks ServerSideSessions
	s, c := ps.s, ps.c
	rl := newRelay(t, c.Target.BaseURL)
	tok, adminYAML := adminToken(t)
	g := gatewayFor(t, s, []string{rl.srv.URL}, adminYAML)
	alice := c.Target.Alpha
	aliceID := userIDOf(t, g.URL, alice)

	// Finding 3: the login form posted to /x/login/ with SCRIPT_NAME /x
	// signs the user in at Superset on a path that is no login route to
	// the gateway. The gateway drops a client's Script_Name itself; the
	// relay re-creates it from X-E2e-Script-Name, standing for any way a
	// header the gateway does not see reaches gunicorn. Whoever Superset
	// then takes the session for must be whom the gateway has it booked
	// as (listed among the user's sessions, ended by a revoke), or no one.
	t.Run("script-name-login", func(t *testing.T) {
		bob := c.Target.Gamma
		cl := newGWClient(t, g.URL)
		resp, body := cl.get("/login/")
		m := csrfInput.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("GET /login/: %d, csrf input %v", resp.StatusCode, m != nil)
		}
		form := url.Values{"username": {bob.Username}, "password": {bob.Password}, "csrf_token": {m[1]}}
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/x/login/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-E2e-Script-Name", "/x")
		resp, _ = cl.do(req)
		t.Logf("POST /x/login/ with SCRIPT_NAME /x: %d %q", resp.StatusCode, resp.Header.Get("Location"))

		cookie := cl.session()
		code, id, user := meID(t, g.URL, cookie)
		if code != http.StatusOK {
			t.Logf("Superset takes the session for no one (%d)", code)
			return
		}
		if user != bob.Username {
			t.Fatalf("Superset takes the session for %q, want %s or no one", user, bob.Username)
		}
		if list := adminSessions(t, g.URL, tok, id); len(list) == 0 {
			t.Errorf("Superset has the session signed in as %s, the gateway lists none of %s's sessions", user, user)
		}
		if code, out := adminPost(t, g.URL, tok, "users/"+id+"/revoke"); code != http.StatusOK {
			t.Fatalf("revoke %s: %d %v", id, code, out)
		}
		if code, user := meAs(t, g.URL, cookie); code != http.StatusUnauthorized {
			t.Errorf("after an admin's revoke of %s: /api/v1/me/ %d as %q, want 401", bob.Username, code, user)
		}
	})

	// Finding 6: a login Superset checked before a revocation and
	// answered after it is issued before the epoch: refused on its next
	// request.
	t.Run("login-in-flight-across-revoke", func(t *testing.T) {
		id := aliceID
		cl := newGWClient(t, g.URL)
		resp, body := cl.get("/login/")
		m := csrfInput.FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("GET /login/: %d, csrf input %v", resp.StatusCode, m != nil)
		}
		held, release := rl.holdLogin()
		done := make(chan *http.Response, 1)
		go func() {
			form := url.Values{"username": {alice.Username}, "password": {alice.Password}, "csrf_token": {m[1]}}
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/login/", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := cl.c.Do(req)
			if err != nil {
				t.Error(err)
				done <- nil
				return
			}
			resp.Body.Close()
			done <- resp
		}()
		select {
		case <-held:
		case <-time.After(60 * time.Second):
			t.Fatal("the login's answer never reached the relay")
		}
		if code, out := adminPost(t, g.URL, tok, "users/"+id+"/revoke"); code != http.StatusOK {
			release()
			t.Fatalf("revoke %s: %d %v", id, code, out)
		}
		time.Sleep(2 * time.Second) // the answer arrives well after the revocation
		release()
		resp = <-done
		if resp == nil || resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
			t.Fatalf("the delayed login: %v", resp)
		}
		if code, user := meAs(t, g.URL, cl.session()); code != http.StatusUnauthorized {
			t.Errorf("a login sent before the revoke and answered after it: /api/v1/me/ %d as %q, want 401", code, user)
		}
	})

	// Finding 5: a session revoked by an admin, used on /-/sessions:
	// no listing, it cannot end the user's new sessions, and its record
	// is destroyed on sight, not extended.
	t.Run("revoked-session-on-sessions-page", func(t *testing.T) {
		id := aliceID
		before := map[string]bool{}
		for _, s := range adminSessions(t, g.URL, tok, id) {
			before[s.Handle] = true
		}
		var old []*gwClient
		for range 3 {
			cl := newGWClient(t, g.URL)
			cl.login(alice)
			old = append(old, cl)
		}
		revoked := map[string]bool{}
		for _, s := range adminSessions(t, g.URL, tok, id) {
			if !before[s.Handle] {
				revoked[s.Handle] = true
			}
		}
		if len(revoked) != 3 {
			t.Fatalf("alice's three sessions: %d listed", len(revoked))
		}
		time.Sleep(5 * time.Millisecond)
		code, out := adminPost(t, g.URL, tok, "users/"+id+"/revoke")
		if code != http.StatusOK {
			t.Fatalf("revoke %s: %d %v", id, code, out)
		}
		epoch, _ := out["epoch"].(float64)
		time.Sleep(5 * time.Millisecond)
		fresh := newGWClient(t, g.URL)
		fresh.login(alice)
		if code, _ := meAs(t, g.URL, fresh.session()); code != http.StatusOK {
			t.Fatalf("alice's session after the revoke: %d", code)
		}
		var freshHandle string
		for _, s := range adminSessions(t, g.URL, tok, id) {
			if s.LoginAt.UnixMilli() > int64(epoch) {
				freshHandle = s.Handle
			}
		}
		if freshHandle == "" {
			t.Fatal("alice's new session is not listed")
		}

		post := func(cl *gwClient, path string, form url.Values) *http.Response {
			req, _ := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, _ := cl.do(req)
			return resp
		}
		resp := post(old[0], "/-/sessions/end-others", url.Values{})
		t.Logf("revoked session: POST /-/sessions/end-others → %d %q", resp.StatusCode, resp.Header.Get("Location"))
		resp = post(old[1], "/-/sessions/end", url.Values{"session": {freshHandle}})
		t.Logf("revoked session: POST /-/sessions/end → %d %q", resp.StatusCode, resp.Header.Get("Location"))
		if code, _ := meAs(t, g.URL, fresh.session()); code != http.StatusOK {
			t.Errorf("a revoked session ended alice's new one: /api/v1/me/ %d", code)
		}
		resp, body := old[2].get("/-/sessions")
		if resp.StatusCode == http.StatusOK || strings.Contains(body, freshHandle[:8]) {
			t.Errorf("a revoked session opened /-/sessions: %d, lists the new session: %v", resp.StatusCode, strings.Contains(body, freshHandle[:8]))
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/login/") {
			t.Errorf("a revoked session on /-/sessions: %d %q, want the answer for no session (302 /login/…)", resp.StatusCode, loc)
		}
		for _, s := range adminSessions(t, g.URL, tok, id) {
			if revoked[s.Handle] {
				t.Errorf("a revoked session's record outlived its visit to the sessions page: %+v", s)
			}
		}
	})
}

// relay is a reverse proxy between the gateway and a Superset node. It
// turns X-E2e-Script-Name into the Script_Name header gunicorn honours
// from a loopback peer, and can hold the answer to POST /login/.
type relay struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hold chan struct{} // non-nil: the next POST /login/ answer waits on it
	held chan struct{} // closed when that answer is being held
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rl := &relay{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			if v := pr.In.Header.Get("X-E2e-Script-Name"); v != "" {
				pr.Out.Header.Del("X-E2e-Script-Name")
				pr.Out.Header["Script_Name"] = []string{v}
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method != http.MethodPost || resp.Request.URL.Path != "/login/" {
				return nil
			}
			rl.mu.Lock()
			hold, held := rl.hold, rl.held
			rl.hold, rl.held = nil, nil
			rl.mu.Unlock()
			if hold != nil {
				close(held)
				select {
				case <-hold:
				case <-time.After(60 * time.Second):
				}
			}
			return nil
		},
	}
	rl.srv = httptest.NewServer(rp)
	t.Cleanup(rl.srv.Close)
	return rl
}

// holdLogin makes the relay hold the next answer to POST /login/: held is
// closed once Superset has answered and the answer waits; release lets it
// go on to the gateway.
func (rl *relay) holdLogin() (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	rl.mu.Lock()
	rl.hold, rl.held = r, h
	rl.mu.Unlock()
	var once sync.Once
	return h, func() { once.Do(func() { close(r) }) }
}

// sessionInfo is one entry of the admin API's user sessions list.
type sessionInfo struct {
	Handle     string    `json:"handle"`
	UserID     string    `json:"user_id"`
	AuthMethod string    `json:"auth_method"`
	LoginAt    time.Time `json:"login_at"`
}

// adminSessions lists a user's sessions through the admin API.
func adminSessions(t *testing.T, base, token, userID string) []sessionInfo {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/-/admin/api/v1/users/"+userID+"/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Sessions []sessionInfo `json:"sessions"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("admin API sessions of user %s: %d %.200s", userID, resp.StatusCode, b)
	}
	return out.Sessions
}

// meID is meAs with the user id.
func meID(t *testing.T, base, cookie string) (code int, id, username string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: cookie})
	}
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

// userIDOf signs cr in through the gateway once and returns the user id.
func userIDOf(t *testing.T, base string, cr conformance.Credentials) string {
	t.Helper()
	cl := newGWClient(t, base)
	cl.login(cr)
	code, id, _ := meID(t, base, cl.session())
	if code != http.StatusOK {
		t.Fatalf("%s: /api/v1/me/ %d", cr.Username, code)
	}
	return id
}
