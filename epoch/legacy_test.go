package epoch_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

var csrfRE = regexp.MustCompile(`id="csrf_token" value="([^"]+)"`)

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	s    *stack
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, s *stack, user, pass string) *browser {
	t.Helper()
	b := &browser{t: t, s: s, c: &http.Client{Jar: newJar(t), CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
	code, body, _ := b.do("GET", "/login/", nil)
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("login page: %d", code)
	}
	b.csrf = m[1]
	if code, _, loc := b.do("POST", "/login/", url.Values{"username": {user}, "password": {pass}}); code != 302 || loc != "/" {
		t.Fatalf("form login: %d %s", code, loc)
	}
	return b
}

func (b *browser) do(method, path string, form url.Values) (int, string, string) {
	b.t.Helper()
	var rd io.Reader
	if form != nil {
		if b.csrf != "" && form.Get("csrf_token") == "" {
			form.Set("csrf_token", b.csrf)
		}
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.s.front.URL+path, rd)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

// The legacy FAB forms as the fake (held to the live 6.1.0) answers them:
// 302 to "/" on success, 302 to the login page on a denial or a CSRF
// failure, 200 when the form does not validate.
func TestLegacyFormsThroughGateway(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		s := newStack(t, st, clk)
		admin := newBrowser(t, s, "admin", fakesuperset.AdminPassword)
		alice := newBrowser(t, s, "alice", fakesuperset.AlicePassword)

		// Alice (no can_put_user) is sent to the login page: no stamp.
		if code, _, loc := alice.do("POST", "/users/edit/3", url.Values{"first_name": {"B"}}); code != 302 || !strings.HasPrefix(loc, "/login/") {
			t.Fatalf("alice edit: %d %s", code, loc)
		}
		// A bad CSRF token: login page, no stamp.
		if code, _, loc := admin.do("POST", "/users/delete/3", url.Values{"csrf_token": {"forged"}}); code != 302 || !strings.HasPrefix(loc, "/login/") {
			t.Fatalf("forged csrf: %d %s", code, loc)
		}
		// A reset form that does not validate: 200, no stamp.
		if code, _, _ := admin.do("POST", "/resetpassword/form?pk=3", url.Values{"password": {"a"}, "conf_password": {"b"}}); code != 200 {
			t.Fatalf("invalid reset: %d", code)
		}
		// Edit keeping the active box checked: no stamp.
		if code, _, _ := admin.do("POST", "/users/edit/3", url.Values{"first_name": {"Bob"}, "active": {"y"}}); code != 302 {
			t.Fatalf("edit: %d", code)
		}
		if e := s.userEpoch("3"); e != 0 {
			t.Fatalf("bob stamped (%d) by a failed or harmless form", e)
		}

		// Unchecking the box disables bob, and stamps.
		if code, _, loc := admin.do("POST", "/users/edit/3", url.Values{"first_name": {"Bob"}}); code != 302 || loc != "/" {
			t.Fatalf("disable: %d %s", code, loc)
		}
		if u, _ := s.fake.User(3); u.Active || s.userEpoch("3") == 0 || s.obs.get(epoch.TriggerUserDisabled) != 1 {
			t.Fatalf("legacy disable: active=%v epoch=%d", u.Active, s.userEpoch("3"))
		}
		if code, _, _ := admin.do("POST", "/resetpassword/form?pk=2", url.Values{"password": {"n3w"}, "conf_password": {"n3w"}}); code != 302 {
			t.Fatalf("reset alice: %d", code)
		}
		if s.userEpoch("2") == 0 || s.obs.get(epoch.TriggerPasswordChanged) != 1 {
			t.Fatal("admin password reset did not stamp")
		}
		if code, _, _ := admin.do("POST", "/users/delete/3", url.Values{}); code != 302 {
			t.Fatalf("delete: %d", code)
		}
		if s.obs.get(epoch.TriggerUserDeleted) != 1 {
			t.Fatal("legacy delete did not stamp")
		}
	})
}
