//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
)

// TestBrowserLogin signs in through Superset's own React login page in a
// real Chromium and lands on the welcome page with a session cookie.
func TestBrowserLogin(t *testing.T) {
	tg := shared(t).c.Target
	b := browser.ForTest(t, browser.Options{})
	if err := b.Navigate(tg.BaseURL + "/login/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="username-input"]`, tg.Alpha.Username); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="password-input"]`, tg.Alpha.Password); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`[data-test="login-button"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitURLPrefix(tg.BaseURL + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
	cookies, err := b.Cookies(tg.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var session bool
	for _, c := range cookies {
		if c.Name == "session" && c.HTTPOnly {
			session = true
		}
	}
	if !session {
		t.Errorf("no HttpOnly session cookie after login: %v", cookies)
	}
	// The welcome page is the SPA; wait until it rendered something of the
	// signed-in user's, not only the shell.
	if err := b.WaitVisible(`#app`); err != nil {
		t.Fatal(err)
	}
	if u, _ := b.Location(); strings.Contains(u, "/login/") {
		t.Errorf("still on the login page: %s", u)
	}
}
