package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// signInThrough signs username in through the gateway's login and returns
// a client holding the gateway cookie that does not follow redirects.
func signInThrough(t *testing.T, base, username, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	m := regexp.MustCompile(`name="csrf_token"[^>]*value="([^"]+)"`).FindStringSubmatch(getBody(t, c, base+"/login/"))
	if m == nil {
		t.Fatal("no csrf_token on the login page")
	}
	resp, err := c.PostForm(base+"/login/", url.Values{"username": {username}, "password": {password}, "csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: %d", username, resp.StatusCode)
	}
	return c
}

// TestAdminPageWired: through the real serve, /-/admin/ belongs to the
// page (login redirect, the real RoleChecker over the gateway session,
// cross-origin refusal) while /-/admin/api/v1/ still answers JSON.
func TestAdminPageWired(t *testing.T) {
	g, adminToken := adminGateway(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(g.base + "/-/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Path != "/login/" || loc.Query().Get("next") != "/-/admin/" {
		t.Fatalf("/-/admin/ signed out: %d %q, want 302 to /login/?next=/-/admin/", resp.StatusCode, resp.Header.Get("Location"))
	}
	api := func(auth string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/-/admin/api/v1/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("admin API status: not JSON: %q", b)
		}
		return resp.StatusCode, body
	}
	if code, body := api(""); code != http.StatusUnauthorized || body["error"] != "no_credential" {
		t.Fatalf("admin API without credential: %d %v", code, body)
	}
	if code, _ := api(adminToken); code != http.StatusOK {
		t.Fatalf("admin API with the admin token: %d", code)
	}

	// A fresh store stamps the global epoch at start: sign in a second later.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	admin := signInThrough(t, g.base, "admin", fakesuperset.AdminPassword)
	if body := getBody(t, admin, g.base+"/-/admin/"); !strings.Contains(body, "Signed in as <strong>admin</strong>") || !strings.Contains(body, "Revoke a user") {
		t.Fatal("the admin does not get the admin page")
	}
	revoke := url.Values{"user_id": {"3"}, "reason": {"wired"}}
	req, _ := http.NewRequest(http.MethodPost, g.base+"/-/admin/users/revoke", strings.NewReader(revoke.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := admin.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site revoke: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err = admin.PostForm(g.base+"/-/admin/users/revoke", revoke)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The message after the action travels in a flash cookie, not the URL.
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/-/admin/" {
		t.Fatalf("revoke user 3 on the page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var audited bool
	for _, line := range strings.Split(g.stdout.String(), "\n") {
		if strings.Contains(line, `"event":"admin.user.revoke"`) && strings.Contains(line, `"actor":"user:1"`) &&
			strings.Contains(line, `"subject":"user:3"`) && strings.Contains(line, `"outcome":"success"`) {
			audited = true
		}
	}
	if !audited {
		t.Errorf("no audit line of the admin revoking user 3 in:\n%s", g.stdout.String())
	}

	alice := signInThrough(t, g.base, "alice", fakesuperset.AlicePassword)
	resp, err = alice.Get(g.base + "/-/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("alice (Alpha) on /-/admin/: %d, want 403", resp.StatusCode)
	}
}
