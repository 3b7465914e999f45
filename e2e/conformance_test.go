//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// TestConformance states the protocol facts against the real Superset.
func TestConformance(t *testing.T) {
	conformance.Run(t, shared(t).c.Target)
}

// TestConformanceServerSideSessions runs the same facts against a Superset
// with SESSION_SERVER_SIDE=True on a real Redis (flask-session).
func TestConformanceServerSideSessions(t *testing.T) {
	ps := supersetFor(t, poolKey{methodForm, backendRedis}) // checks ServerSideSessions
	s, c := ps.s, ps.c
	conformance.Run(t, c.Target)

	// A2 with SESSION_SERVER_SIDE: FAB's legacy /users/edit/ disables the
	// user and then answers 500 (docs/superset-6.1.md §15). The gateway
	// stamps on that 500 (its outcome is unknown), so the user's JWT dies
	// at once, by the hook, not by the reconciler's next run.
	t.Run("gateway/legacy-edit-500-stamps", func(t *testing.T) {
		tok, adminYAML := adminToken(t)
		g := gatewayFor(t, s, []string{c.Target.BaseURL}, adminYAML)
		node := epLogin(t, c.Target.BaseURL, c.Target.Admin)
		u := (&epRig{t: t, node: node}).newUser("legacy")
		// The fresh store's global epoch is this second: JWTs from the next.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
		access, _ := epTokens(t, g.URL, u.Credentials)
		jwt := &epAPI{base: g.URL, bearer: access}
		if code, b := jwt.call(t, http.MethodGet, "/api/v1/me/", nil); code != http.StatusOK {
			t.Fatalf("%s's JWT before: %d %.200s", u.Username, code, b)
		}

		adm := newGWClient(t, g.URL)
		adm.login(c.Target.Admin)
		_, body := adm.get("/api/v1/security/csrf_token/")
		var csrf struct {
			Result string `json:"result"`
		}
		if err := json.Unmarshal([]byte(body), &csrf); err != nil || csrf.Result == "" {
			t.Fatalf("csrf token through the gateway: %.200s", body)
		}
		form := url.Values{"first_name": {"Legacy"}, "last_name": {"Edit"}, "username": {u.Username},
			"email": {u.Username + "@example.com"}, "roles": {strconv.Itoa(gammaRole(t, node))}, "csrf_token": {csrf.Result}}
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/users/edit/"+u.sid(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, _ := adm.do(req); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("legacy edit through the gateway: %d, want Superset's 500", resp.StatusCode)
		}
		if code, b := jwt.call(t, http.MethodGet, "/api/v1/me/", nil); !revokedByGateway(outcome{code, string(b)}) {
			t.Errorf("%s's JWT right after the legacy disable: %d %.200s; want the gateway's revocation", u.Username, code, b)
		}
		code, b := (&epAPI{base: g.URL, bearer: tok}).call(t, http.MethodGet, "/-/admin/api/v1/revocations", nil)
		if code != http.StatusOK || !strings.Contains(string(b), `"subject":"user:`+u.sid()+`"`) ||
			!strings.Contains(string(b), `"trigger":"user_disabled"`) {
			t.Errorf("revocations after the legacy disable: %d %.400s; want user:%s by user_disabled", code, b, u.sid())
		}
	})
}

// TestTwoNodes: both nodes share the metadata DB and SECRET_KEY, so a
// session cookie and a JWT from one node work on the other.
func TestTwoNodes(t *testing.T) {
	e := shared(t)
	if len(e.c.Nodes) != 2 {
		t.Fatalf("%d nodes", len(e.c.Nodes))
	}
	tg0, tg1 := e.c.TargetFor(0), e.c.TargetFor(1)
	if tg0.BaseURL == tg1.BaseURL {
		t.Fatal("nodes share a URL")
	}
	cookie := formLogin(t, tg0, tg0.Alpha)
	req, _ := http.NewRequest(http.MethodGet, tg1.BaseURL+"/api/v1/me/", nil)
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("node 0's cookie on node 1: %d, want 200", resp.StatusCode)
	}
}
