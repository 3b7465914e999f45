package session_test

// Superset master (after 6.1.0, unreleased), against the fake only
// (fakesuperset.Options.Master): what the gateway does with the session
// and credential features master adds.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

func startMasterSuperset(t *testing.T, clk *clock, serverSide, master bool) *superset {
	t.Helper()
	s := &superset{seen: &upstreamSeen{}}
	s.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now,
		ServerSideSessions: serverSide, Master: master, Observe: s.seen.observe})
	s.srv = httptest.NewServer(s.fake)
	t.Cleanup(s.srv.Close)
	return s
}

// replica is one gateway with the whole revocation path: the JWT stage,
// real epochs on st, the epoch hook and the session vault.
type replica struct {
	*tgw
	ep *epoch.Epochs
}

func startReplica(t *testing.T, ss *superset, st store.Store, clk *clock) *replica {
	t.Helper()
	ep, err := epoch.New(epoch.Options{Store: st, Now: clk.Now, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hook, err := epoch.NewHook(epoch.HookOptions{Epochs: ep, RequestInfo: func(r *http.Request) (string, string) {
		return proxy.RequestID(r), proxy.ClientIP(r).String()
	}})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, ss, st, clk, gwOpts{stamp: hook, jwt: guard, modify: func(o *session.Options) { o.Epochs = ep }})
	return &replica{tgw: g, ep: ep}
}

// json sends a JSON body (or none) with the cookie and headers given.
func (g *tgw) json(method, path, cookie, body string, hdr ...string) reply {
	g.t.Helper()
	req, err := http.NewRequest(method, g.front.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, b := gatewaytest.Do(g.t, req, g.vault.CookieName())
	return reply{resp, b}
}

// apiLogin returns an API access token for user, through g.
func (g *tgw) apiLogin(user, password string) string {
	g.t.Helper()
	r := g.json("POST", "/api/v1/security/login", "", `{"username":"`+user+`","password":"`+password+`","provider":"db"}`)
	if r.StatusCode != http.StatusOK {
		g.t.Fatalf("API login %s: %d %s", user, r.StatusCode, r.body)
	}
	tok, _ := jsonValue(g.t, r.body, "access_token").(string)
	return tok
}

func (r *replica) epochOf(t *testing.T, id string) int64 {
	t.Helper()
	e, _, err := r.ep.Epoch(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func reachedPath(seen *upstreamSeen, frag string) bool {
	for _, s := range seen.all() {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

// TestMasterEndUserSessions: an admin's DELETE
// /api/v1/security/users/<pk>/sessions answered 2xx by Superset stamps the
// user's epoch: their cookie sessions and API JWTs end on every replica.
// A non-admin (403), an unknown user (404) and a malformed pk (refused by
// the gateway, never reaching Superset) stamp nothing.
func TestMasterEndUserSessions(t *testing.T) {
	for _, serverSide := range []bool{false, true} {
		name := "client-cookie"
		if serverSide {
			name = "server-side"
		}
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			ss := startMasterSuperset(t, clk, serverSide, true)
			srv := redistest.Start(t, redistest.Options{})
			a := startReplica(t, ss, redisStore(t, srv), clk)
			b := startReplica(t, ss, redisStore(t, srv), clk)
			admin := "Bearer " + a.apiLogin("admin", fakesuperset.AdminPassword)
			alice := "Bearer " + a.apiLogin("alice", fakesuperset.AlicePassword)
			bobJWT := "Bearer " + a.apiLogin("bob", fakesuperset.BobPassword)
			bob := a.signIn("bob", fakesuperset.BobPassword)
			if a.me(bob) != 200 || b.me(bob) != 200 {
				t.Fatal("bob's session before")
			}
			if r := b.json("GET", "/api/v1/me/", "", "", "Authorization", bobJWT); r.StatusCode != 200 {
				t.Fatalf("bob's JWT before: %d", r.StatusCode)
			}

			for _, pk := range []string{"abc", "-1", "99999999999999999999", "03", "3.0"} {
				r := a.json("DELETE", "/api/v1/security/users/"+pk+"/sessions", "", "", "Authorization", admin)
				if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "decimal") {
					t.Errorf("pk %q: %d %s, want 400", pk, r.StatusCode, r.body)
				}
				if reachedPath(ss.seen, "/users/"+pk+"/sessions") {
					t.Errorf("pk %q reached Superset", pk)
				}
			}
			if r := a.json("DELETE", "/api/v1/security/users/3/sessions", "", "", "Authorization", alice); r.StatusCode != http.StatusForbidden {
				t.Fatalf("alice (Alpha): %d %s, want Superset's 403", r.StatusCode, r.body)
			}
			if r := a.json("DELETE", "/api/v1/security/users/99/sessions", "", "", "Authorization", admin); r.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown user: %d %s, want 404", r.StatusCode, r.body)
			}
			for _, id := range []string{"3", "99"} {
				if e := a.epochOf(t, id); e != 0 {
					t.Fatalf("user %s stamped (%d) by a refused request", id, e)
				}
			}
			if a.me(bob) != 200 || b.me(bob) != 200 {
				t.Fatal("bob's session ended by a refused request")
			}

			clk.Advance(300 * time.Millisecond)
			if r := a.json("DELETE", "/api/v1/security/users/3/sessions", "", "", "Authorization", admin); r.StatusCode != http.StatusOK {
				t.Fatalf("admin ends bob's sessions: %d %s", r.StatusCode, r.body)
			}
			if e := a.epochOf(t, "3"); e != clk.Now().UnixMilli() {
				t.Fatalf("bob's epoch %d, want %d", e, clk.Now().UnixMilli())
			}
			// B cached "no epoch" for a minute of its clock: pub/sub ends it.
			deadline := time.Now().Add(5 * time.Second)
			for b.me(bob) != http.StatusUnauthorized {
				if time.Now().After(deadline) {
					t.Fatal("bob's session still live on replica B")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code := a.me(bob); code != http.StatusUnauthorized {
				t.Errorf("bob's session on A: %d", code)
			}
			if r := b.json("GET", "/api/v1/me/", "", "", "Authorization", bobJWT); r.StatusCode != 401 || !strings.Contains(r.body, "revoked") {
				t.Errorf("bob's JWT on B: %d %s", r.StatusCode, r.body)
			}
			clk.Advance(time.Second)
			if again := b.signIn("bob", fakesuperset.BobPassword); a.me(again) != 200 {
				t.Error("bob cannot sign in again")
			}
		})
	}
}

// TestMasterEndUserSessionsAbsentOn61: Superset 6.1.0 has no such route:
// 404, nothing stamped.
func TestMasterEndUserSessionsAbsentOn61(t *testing.T) {
	clk := newClock()
	ss := startMasterSuperset(t, clk, false, false)
	a := startReplica(t, ss, openStore(t, boltBackend, clk), clk)
	admin := "Bearer " + a.apiLogin("admin", fakesuperset.AdminPassword)
	if r := a.json("DELETE", "/api/v1/security/users/3/sessions", "", "", "Authorization", admin); r.StatusCode != http.StatusNotFound {
		t.Fatalf("6.1: %d %s, want 404", r.StatusCode, r.body)
	}
	if e := a.epochOf(t, "3"); e != 0 {
		t.Fatalf("a 404 stamped bob: %d", e)
	}
}

// TestMasterOwnPasswordChangeWithCurrentPassword: master's PUT /api/v1/me/
// needs current_password with a new password. A wrong or missing one is
// Superset's 400 and changes nothing; the right one re-issues the caller's
// session as for 6.1.0: the copy of the old cookie and the user's other
// sessions and JWTs are refused, the caller stays signed in.
//
// The same holds for PUT /api/v1/me/password (current_password and
// new_password), where a later master moved the change.
func TestMasterOwnPasswordChangeWithCurrentPassword(t *testing.T) {
	type variant struct {
		name, method, path string
		bad                []string
		good               string
	}
	variants := []variant{
		{"me", "PUT", "/api/v1/me/", []string{`{"password":"bobs-new-pass"}`, `{"password":"bobs-new-pass","current_password":"wrong"}`},
			`{"password":"bobs-new-pass","current_password":"` + fakesuperset.BobPassword + `"}`},
		{"me-password", "PUT", "/api/v1/me/password", []string{`{"new_password":"bobs-new-pass"}`, `{"new_password":"bobs-new-pass","current_password":"wrong"}`},
			`{"new_password":"bobs-new-pass","current_password":"` + fakesuperset.BobPassword + `"}`},
	}
	for _, serverSide := range []bool{false, true} {
		for _, vr := range variants {
			t.Run(map[bool]string{false: "client-cookie", true: "server-side"}[serverSide]+"/"+vr.name, func(t *testing.T) {
				clk := newClock()
				ss := startMasterSuperset(t, clk, serverSide, true)
				a := startReplica(t, ss, openStore(t, boltBackend, clk), clk)
				bobJWT := "Bearer " + a.apiLogin("bob", fakesuperset.BobPassword)
				other := a.signIn("bob", fakesuperset.BobPassword)
				mine := a.signIn("bob", fakesuperset.BobPassword)
				r := a.json("GET", "/api/v1/security/csrf_token/", a.cookieHeader(mine), "")
				if r.StatusCode != 200 {
					t.Fatalf("csrf: %d %s", r.StatusCode, r.body)
				}
				csrf, _ := jsonValue(t, r.body, "result").(string)
				clk.Advance(time.Second)

				for _, body := range vr.bad {
					r := a.json(vr.method, vr.path, a.cookieHeader(mine), body, "X-CSRFToken", csrf)
					if r.StatusCode != http.StatusBadRequest {
						t.Fatalf("%s: %d %s, want 400", body, r.StatusCode, r.body)
					}
					if _, set := r.gwCookie(a.vault.CookieName()); set {
						t.Fatalf("%s: the session was re-issued or cleared", body)
					}
				}
				if e := a.epochOf(t, "3"); e != 0 || a.me(mine) != 200 || a.me(other) != 200 {
					t.Fatalf("a refused change stamped (%d) or ended a session", e)
				}

				r = a.json(vr.method, vr.path, a.cookieHeader(mine), vr.good, "X-CSRFToken", csrf)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("password change: %d %s", r.StatusCode, r.body)
				}
				reissued, ok := r.gwCookie(a.vault.CookieName())
				if !ok || reissued == "" || reissued == mine {
					t.Fatalf("session not re-issued (set=%v)", ok)
				}
				if e := a.epochOf(t, "3"); e == 0 {
					t.Fatal("no epoch stamped")
				}
				if code := a.me(reissued); code != http.StatusOK {
					t.Fatalf("the caller's re-issued session: %d, want 200", code)
				}
				if code := a.me(mine); code != http.StatusUnauthorized {
					t.Errorf("a copy of the old cookie: %d, want 401", code)
				}
				if code := a.me(other); code != http.StatusUnauthorized {
					t.Errorf("bob's other session: %d, want 401", code)
				}
				if r := a.json("GET", "/api/v1/me/", "", "", "Authorization", bobJWT); r.StatusCode != http.StatusUnauthorized {
					t.Errorf("bob's old JWT: %d", r.StatusCode)
				}
			})
		}
	}
}

// TestMasterUpstreamLogoutEndsGatewaySession: Superset ends a session
// itself (master's session epoch, stamped here behind the gateway's back
// as Superset does when a user is disabled by any path): the next request
// is answered as anonymous (401 from the API, a redirect to /login/ from a
// page), and the gateway ends its own session too: record destroyed,
// cookie cleared, so the login page is an ordinary anonymous one. A
// redirect to /login/ for a user Superset still knows (no permission)
// ends nothing.
func TestMasterUpstreamLogoutEndsGatewaySession(t *testing.T) {
	for _, serverSide := range []bool{false, true} {
		t.Run(map[bool]string{false: "client-cookie", true: "server-side"}[serverSide], func(t *testing.T) {
			clk := newClock()
			ss := startMasterSuperset(t, clk, serverSide, true)
			a := startReplica(t, ss, openStore(t, boltBackend, clk), clk)
			ctx := context.Background()

			alice := a.signIn("alice", fakesuperset.AlicePassword)
			r := a.do("GET", "/users/list/", a.cookieHeader(alice), nil)
			if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
				t.Fatalf("alice on an admin page: %d %q", r.StatusCode, r.Header.Get("Location"))
			}
			if v, set := r.gwCookie(a.vault.CookieName()); set && v == "" {
				t.Fatal("a permission redirect cleared alice's cookie")
			}
			if a.me(alice) != 200 {
				t.Fatal("a permission redirect ended alice's session")
			}

			for _, c := range []struct {
				name, path string
				want       int
			}{{"api", "/api/v1/me/", http.StatusUnauthorized}, {"page", "/superset/welcome/", http.StatusFound}} {
				bob := a.signIn("bob", fakesuperset.BobPassword)
				if a.me(bob) != 200 {
					t.Fatalf("%s: bob's session before", c.name)
				}
				clk.Advance(10 * time.Millisecond)
				if !ss.fake.InvalidateSessions(3) {
					t.Fatal("no user 3")
				}
				before, err := a.vault.ListUserSessions(ctx, "3")
				if err != nil {
					t.Fatal(err)
				}
				r := a.do("GET", c.path, a.cookieHeader(bob), nil)
				if r.StatusCode != c.want {
					t.Fatalf("%s: %d, want %d", c.name, r.StatusCode, c.want)
				}
				if c.want == http.StatusFound && !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
					t.Fatalf("%s: redirected to %q", c.name, r.Header.Get("Location"))
				}
				if v, set := r.gwCookie(a.vault.CookieName()); !set || v != "" {
					t.Errorf("%s: gateway cookie not cleared (set=%v)", c.name, set)
				}
				// Only the session that asked is known to be dead; bob's
				// others end when Superset answers them alike.
				if list, err := a.vault.ListUserSessions(ctx, "3"); err != nil || len(list) != len(before)-1 {
					t.Errorf("%s: bob's gateway sessions %d before, %d after (%v)", c.name, len(before), len(list), err)
				}
				if a.obs.get("destroyed:upstream_logout") == 0 {
					t.Errorf("%s: not counted as upstream_logout", c.name)
				}
				// The copy the browser may still send is anonymous now, and
				// the login page is an ordinary one, not a loop.
				r = a.do("GET", "/login/", a.cookieHeader(bob), nil)
				if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "csrf_token") {
					t.Errorf("%s: login page after: %d", c.name, r.StatusCode)
				}
				clk.Advance(time.Second)
				if again := a.signIn("bob", fakesuperset.BobPassword); a.me(again) != 200 {
					t.Errorf("%s: bob cannot sign in again", c.name)
				}
			}
			if a.me(alice) != 200 {
				t.Error("ending bob's sessions touched alice's")
			}
		})
	}
}

// TestDisabledUserEndsGatewaySession61: Superset 6.1.0 answers a disabled
// user's session as anonymous (FAB's load_user wants an active user); the
// gateway ends its session on that answer.
func TestDisabledUserEndsGatewaySession61(t *testing.T) {
	clk := newClock()
	ss := startMasterSuperset(t, clk, true, false)
	a := startReplica(t, ss, openStore(t, boltBackend, clk), clk)
	bob := a.signIn("bob", fakesuperset.BobPassword)
	ss.fake.SetActive(3, false)
	r := a.do("GET", "/api/v1/me/", a.cookieHeader(bob), nil)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("disabled bob: %d", r.StatusCode)
	}
	if v, set := r.gwCookie(a.vault.CookieName()); !set || v != "" {
		t.Fatal("gateway cookie not cleared")
	}
	if list, err := a.vault.ListUserSessions(context.Background(), "3"); err != nil || len(list) != 0 {
		t.Fatalf("bob's gateway sessions: %v %v", list, err)
	}
}

// jsonValue is the top-level key of a JSON object body.
func jsonValue(t *testing.T, body, key string) any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	return m[key]
}
