package superset

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func classifyCases() []struct{ method, path, want string } {
	return []struct{ method, path, want string }{
		{"GET", "/static/assets/spa.js", ClassStatic},
		{"GET", "/health", ClassHealth},
		{"GET", "/healthcheck", ClassHealth},
		{"GET", "/ping", ClassHealth},
		{"GET", "/login/", ClassLogin},
		{"POST", "/login/", ClassLogin},
		{"GET", "/login", ClassLogin},
		{"GET", "/login/github", ClassLogin},
		{"GET", "/login/github/", ClassLogin},
		{"GET", "/oauth-authorized/github", ClassLogin},
		{"GET", "/login/a/b", ClassPage},
		{"GET", "/logout/", ClassLogout},
		{"GET", "/logout", ClassLogout},
		{"POST", "/api/v1/security/login", ClassAPILogin},
		{"POST", "/api/v1/security/refresh", ClassAPILogin},
		{"POST", "/api/v1/security/guest_token/", ClassGuestToken},
		{"POST", "/api/v1/security/guest_token", ClassGuestToken},
		{"GET", "/api/v1/security/guest_token/", ClassAPI},
		{"GET", "/api/v1/security/csrf_token/", ClassAPI},
		{"PUT", "/api/v1/security/users/5", ClassUserAdmin},
		{"GET", "/api/v1/security/users/", ClassUserAdmin},
		{"GET", "/api/v1/me/", ClassUserAdmin},
		{"GET", "/api/v1/me/roles/", ClassUserAdmin},
		{"POST", "/users/edit/3", ClassUserAdmin},
		{"POST", "/users/delete/3", ClassUserAdmin},
		{"GET", "/users/list/", ClassPage},
		{"POST", "/resetpassword/form", ClassUserAdmin},
		{"POST", "/resetmypassword/form", ClassUserAdmin},
		{"GET", "/embedded/0c6d-uuid", ClassEmbedded},
		{"POST", "/api/v1/chart/data", ClassChartData},
		{"GET", "/api/v1/chart/data/abc123", ClassChartData},
		{"GET", "/api/v1/chart/12/data/", ClassChartData},
		{"GET", "/api/v1/chart/12/data", ClassChartData},
		{"GET", "/api/v1/chart/12", ClassAPI},
		{"GET", "/api/v1/chart/a/b/data", ClassAPI},
		{"POST", "/api/v1/sqllab/execute/", ClassSQLLab},
		{"GET", "/api/v1/sqllab/", ClassSQLLab},
		{"GET", "/api/v1/dashboard/1", ClassAPI},
		{"GET", "/superset/welcome/", ClassPage},
		{"GET", "/", ClassPage},
		{"GET", "", ClassPage},
		// Path tricks must not buy a cheaper class.
		{"POST", "//api/v1/security/login", ClassAPILogin},
		{"POST", "/static/../api/v1/security/login", ClassAPILogin},
		{"PUT", "/static/./../api/v1/security/users/5", ClassUserAdmin},
		{"GET", "/static/../../etc/passwd", ClassPage},
		{"GET", "api/v1/me/", ClassUserAdmin},
		// Flask routes are case-sensitive: Superset answers 404 for these.
		{"POST", "/API/v1/security/login", ClassPage},
	}
}

func TestClassifyPath(t *testing.T) {
	for _, c := range classifyCases() {
		if got := ClassifyPath(c.method, c.path); got != c.want {
			t.Errorf("ClassifyPath(%s %q) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
	r := httptest.NewRequest("POST", "/api/v1/security/guest_token/?x=1", nil)
	if Classify(r) != ClassGuestToken {
		t.Error("Classify(request)")
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	paths := []string{"/api/v1/chart/12/data/", "/static/x.js", "/superset/dashboard/1/", "/login/github", "/api/v1/security/users/3"}
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range paths {
			ClassifyPath("GET", p)
		}
	})
	if allocs != 0 {
		t.Fatalf("ClassifyPath allocates %.1f times", allocs)
	}
}

func TestLoginLogout(t *testing.T) {
	cases := []struct {
		method, path, kind string
	}{
		{"POST", "/login/", "form"},
		{"POST", "/login", "form"},
		{"GET", "/login/", "remote_user"},
		{"HEAD", "/login", "remote_user"},
		{"PUT", "/login/", ""},
		{"GET", "/oauth-authorized/github", "oauth:github"},
		{"GET", "/oauth-authorized/git%0ahub", "oauth"},
		{"GET", "//oauth-authorized/./okta/", "oauth:okta"},
		{"POST", "/oauth-authorized/github", ""},
		{"GET", "/login/github", ""},
		{"POST", "/api/v1/security/login", ""},
	}
	for _, c := range cases {
		k, ok := LoginMethod(c.method, c.path)
		if k != c.kind || ok != (c.kind != "") || IsLogin(c.method, c.path) != ok {
			t.Errorf("LoginMethod(%s %s) = %q %v", c.method, c.path, k, ok)
		}
	}
	for _, c := range []struct {
		method, path string
		want         bool
	}{{"GET", "/logout/", true}, {"HEAD", "/logout", true}, {"POST", "/logout/", false}, {"GET", "/logoutx", false}, {"GET", "//logout/", true}} {
		if IsLogout(c.method, c.path) != c.want {
			t.Errorf("IsLogout(%s %s) != %v", c.method, c.path, c.want)
		}
	}
}

func TestUserAdminAction(t *testing.T) {
	cases := []struct {
		method, path, pk string
		kind             UserAdminKind
	}{
		{"PUT", "/api/v1/security/users/5", "5", UserUpdate},
		{"PUT", "/api/v1/security/users/5/", "5", UserUpdate},
		{"DELETE", "/api/v1/security/users/12", "12", UserDelete},
		{"GET", "/api/v1/security/users/12", "", UserAdminNone},
		{"PUT", "/api/v1/security/users/abc", "", UserAdminNone},
		{"PUT", "/api/v1/security/users/5/roles", "", UserAdminNone},
		{"POST", "/api/v1/security/users/", "", UserAdminNone},
		{"PUT", "/api/v1/me/", "", MeUpdate},
		{"PUT", "/api/v1/me", "", MeUpdate},
		{"GET", "/api/v1/me/", "", UserAdminNone},
		{"POST", "/users/edit/7", "7", LegacyUserEdit},
		{"GET", "/users/edit/7", "", UserAdminNone},
		{"POST", "/users/delete/7", "7", LegacyUserDelete},
		{"GET", "/users/delete/7", "7", LegacyUserDelete},
		{"POST", "/resetpassword/form", "", ResetPassword},
		{"POST", "/resetmypassword/form", "", ResetMyPassword},
		{"GET", "/resetmypassword/form", "", UserAdminNone},
		{"PUT", "//api/v1/security/users/../users/9", "9", UserUpdate},
		{"DELETE", "/api/v1/security/users/9/sessions", "9", UserSessions},
		{"DELETE", "/api/v1/security/users/9/sessions/", "9", UserSessions},
		{"GET", "/api/v1/security/users/9/sessions", "", UserAdminNone},
		{"POST", "/api/v1/security/users/9/sessions", "", UserAdminNone},
		{"DELETE", "/api/v1/security/users/abc/sessions", "", UserAdminNone},
		{"DELETE", "/api/v1/security/users/9/sessions/1", "", UserAdminNone},
		{"PUT", "/api/v1/me/password", "", MePassword},
		{"PUT", "/api/v1/me/password/", "", MePassword},
		{"GET", "/api/v1/me/password", "", UserAdminNone},
		{"GET", "/api/v1/me/password/policy", "", UserAdminNone},
	}
	for _, c := range cases {
		pk, kind := UserAdminAction(c.method, c.path)
		if pk != c.pk || kind != c.kind {
			t.Errorf("UserAdminAction(%s %s) = %q %v, want %q %v", c.method, c.path, pk, kind, c.pk, c.kind)
		}
	}
	u, _ := url.Parse("/resetpassword/form?pk=42")
	if pk, k := UserAdminActionURL(http.MethodPost, u); pk != "42" || k != ResetPassword {
		t.Errorf("reset with pk: %q %v", pk, k)
	}
	u, _ = url.Parse("/resetpassword/form?pk=x")
	if _, k := UserAdminActionURL(http.MethodPost, u); k != UserAdminNone {
		t.Errorf("reset with bad pk: %v", k)
	}
	if UserDelete.String() != "user_delete" || UserAdminKind(99).String() != "unknown" {
		t.Error("String")
	}
}

func FuzzClassifyPath(f *testing.F) {
	for _, c := range classifyCases() {
		f.Add(c.method, c.path)
	}
	f.Fuzz(func(t *testing.T, method, p string) {
		c := ClassifyPath(method, p)
		if c == "" {
			t.Fatal("empty class")
		}
		// Cleaning must be idempotent: the canonical path classifies the same.
		if c2 := ClassifyPath(method, canonical(p)); c2 != c {
			t.Fatalf("%q: %s vs canonical %q: %s", p, c, canonical(p), c2)
		}
		UserAdminAction(method, p)
		LoginMethod(method, p)
	})
}

func BenchmarkClassifyPath(b *testing.B) {
	cases := classifyCases()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := cases[i%len(cases)]
		ClassifyPath(c.method, c.path)
	}
}
