//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

// TestSupersetEndsSessionGatewayFollows, against the real Superset 6.1.0:
// a user disabled directly at Superset (not through the gateway, with the
// reconciler off, so no epoch is stamped) is answered as anonymous by
// Superset: a page redirects to /login/. The gateway ends its own session
// on that answer (cookie cleared, record destroyed), so re-enabling the
// user at Superset does not bring the copied cookie back to life. Superset
// master's own session epoch ends sessions the same way (tested against
// the fake: session.TestMasterUpstreamLogoutEndsGatewaySession).
func TestSupersetEndsSessionGatewayFollows(t *testing.T) {
	e := shared(t)
	r := &epRig{t: t, root: t, e: e, bin: buildGateway(t), keys: writeCookieKeys(t), extra: []string{"reconcile_interval: 0s"}}
	r.rd = redistest.Start(t, redistest.Options{})
	r.a = r.start()
	r.node = epLogin(t, e.c.Nodes[0].URL, e.c.Target.Admin)
	u := r.newUser("zz-upstream-logout")

	c := newGWClient(t, r.a.URL)
	c.login(u.Credentials)
	copied := c.session()
	if code, name := meAs(t, r.a.URL, copied); code != http.StatusOK || name != u.Username {
		t.Fatalf("signed in: %d %q", code, name)
	}

	r.setActive(u, false) // at Superset, behind the gateway's back
	resp, _ := c.get("/superset/welcome/")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/login/") {
		t.Fatalf("welcome page of a disabled user: %d %q, want 302 /login/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if v := c.session(); v != "" {
		t.Fatal("the gateway kept its cookie after Superset answered the session as anonymous")
	}
	if resp, body := c.get("/login/"); resp.StatusCode != http.StatusOK || !csrfInput.MatchString(body) {
		t.Fatalf("login page after: %d", resp.StatusCode)
	}

	r.setActive(u, true)
	if code, _ := meAs(t, r.a.URL, copied); code != http.StatusUnauthorized {
		t.Fatalf("the copied cookie after the user was re-enabled: %d, want 401 (the gateway session was ended)", code)
	}
	c2 := newGWClient(t, r.a.URL)
	c2.login(u.Credentials)
	if code, _ := meAs(t, r.a.URL, c2.session()); code != http.StatusOK {
		t.Fatalf("a new sign-in: %d", code)
	}
}
