//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"testing"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

var csrfInput = regexp.MustCompile(`<input\s[^>]*name="csrf_token"[^>]*value="([^"]+)"`)

// formLogin signs in through POST /login/ at tg.BaseURL, the way the React
// login page does, and returns the resulting session cookie.
func formLogin(t *testing.T, tg conformance.Target, cr conformance.Credentials) *http.Cookie {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(tg.BaseURL + "/login/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET /login/: %d, no csrf_token input", resp.StatusCode)
	}
	resp, err = c.PostForm(tg.BaseURL+"/login/", url.Values{
		"username": {cr.Username}, "password": {cr.Password}, "csrf_token": {string(m[1])},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /login/ as %s: %d %q", cr.Username, resp.StatusCode, resp.Header.Get("Location"))
	}
	u, _ := url.Parse(tg.BaseURL)
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "session" {
			return ck
		}
	}
	t.Fatal("no session cookie after login")
	return nil
}
