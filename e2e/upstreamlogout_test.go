//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

// newNoReconcileRig is one gateway with the reconciler off, so that only
// Superset's own answers can end a session of a user disabled at Superset.
func newNoReconcileRig(t *testing.T) *epRig {
	t.Helper()
	e := shared(t)
	r := &epRig{t: t, root: t, e: e, bin: buildGateway(t), keys: writeCookieKeys(t), extra: []string{"reconcile_interval: 0s"}}
	r.rd = redistest.Start(t, redistest.Options{})
	r.a = r.start()
	r.node = epLogin(t, e.c.Nodes[0].URL, e.c.Target.Admin)
	return r
}

// TestSupersetEndsSessionGatewayFollows, against the real Superset 6.1.0:
// a user disabled directly at Superset (not through the gateway, with the
// reconciler off, so no epoch is stamped) is answered as anonymous by
// Superset: a page redirects to /login/. The gateway ends its own session
// on that answer (cookie cleared, record destroyed), so re-enabling the
// user at Superset does not bring the copied cookie back to life. Superset
// master's own session epoch ends sessions the same way (tested against
// the fake: session.TestMasterUpstreamLogoutEndsGatewaySession).
func TestSupersetEndsSessionGatewayFollows(t *testing.T) {
	r := newNoReconcileRig(t)
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

// TestSupersetEndsSessionBrowser is the same in Chromium: signed in through
// the gateway, the user is disabled at Superset; the welcome page sends the
// browser to the login page, which it reaches without a gateway cookie and
// without a loop, and a sign-in there works once the user is enabled.
func TestSupersetEndsSessionBrowser(t *testing.T) {
	r := newNoReconcileRig(t)
	u := r.newUser("zz-upstream-logout-browser")
	base := r.a.URL
	b := browser.ForTest(t, browser.Options{})
	signIn := func() {
		t.Helper()
		if err := b.Navigate(base + "/login/"); err != nil {
			t.Fatal(err)
		}
		if err := b.Fill(`input[data-test="username-input"]`, u.Username); err != nil {
			t.Fatal(err)
		}
		if err := b.Fill(`input[data-test="password-input"]`, u.Password); err != nil {
			t.Fatal(err)
		}
		if err := b.Click(`[data-test="login-button"]`); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WaitURLPrefix(base + "/superset/welcome/"); err != nil {
			t.Fatal(err)
		}
	}
	signIn()
	signedIn := cookieValue(t, b, base)
	if signedIn == "" {
		t.Fatal("no gateway cookie after sign-in")
	}

	r.setActive(u, false) // at Superset, behind the gateway's back
	if err := b.Navigate(base + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitURLPrefix(base + "/login/"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVisible(`input[data-test="username-input"]`); err != nil {
		t.Fatalf("the login page did not render: %v", err)
	}
	// The login page may start an anonymous session; the signed-in one is
	// gone from the browser and from the gateway.
	if cookieValue(t, b, base) == signedIn {
		t.Fatal("the browser still holds the signed-in gateway cookie")
	}

	r.setActive(u, true)
	if code, _ := meAs(t, base, signedIn); code != http.StatusUnauthorized {
		t.Fatalf("the old gateway cookie once the user is enabled again: /api/v1/me/ %d, want 401 (ended)", code)
	}
	signIn()
	if code, name := meAs(t, base, cookieValue(t, b, base)); code != http.StatusOK || name != u.Username {
		t.Fatalf("signed in again: %d %q", code, name)
	}
}

// cookieValue is the browser's gateway cookie for base ("" if none).
func cookieValue(t *testing.T, b *browser.Browser, base string) string {
	t.Helper()
	cookies, err := b.Cookies(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == gatewayCookie {
			return c.Value
		}
	}
	return ""
}
