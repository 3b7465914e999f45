package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const secret = "client-test-secret-0123456789abcdef"

func setup(t *testing.T) (*Client, *fakesuperset.Fake) {
	t.Helper()
	f := fakesuperset.New(fakesuperset.Options{SecretKey: secret})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL + "/", HTTP: &http.Client{Timeout: 10 * time.Second}}, f
}

func TestLoginRefreshMe(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	tk, err := c.Login(ctx, "alice", fakesuperset.AlicePassword, "", true)
	if err != nil || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("Login: %v %+v", err, tk)
	}
	me, err := c.Me(ctx, Auth{Bearer: tk.Access})
	if err != nil || me.Username != "alice" || me.ID != 2 || me.IsAnonymous {
		t.Fatalf("Me: %v %+v", err, me)
	}
	at, err := c.Refresh(ctx, tk.Refresh)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := (apijwt.Verifier{Key: []byte(secret)}).Verify(at, apijwt.Access, time.Now())
	if err != nil || cl.Fresh || cl.Subject != "2" {
		t.Fatalf("refreshed token: %v %+v", err, cl)
	}
	roles, err := c.MeRoles(ctx, Auth{Bearer: at})
	if err != nil || len(roles.RoleNames()) != 1 || roles.RoleNames()[0] != "Alpha" || roles.UserID != 2 {
		t.Fatalf("MeRoles: %v %+v", err, roles)
	}
}

func TestErrorsCarryStatus(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	_, err := c.Login(ctx, "alice", "wrong", "db", false)
	if StatusCode(err) != http.StatusUnauthorized || !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "Not authorized") {
		t.Fatalf("bad login: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the password: %v", err)
	}
	tk, _ := c.Login(ctx, "alice", fakesuperset.AlicePassword, "db", false)
	if _, err := c.Refresh(ctx, tk.Access); StatusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("refresh with access token: %v", err)
	}
	if _, err := c.Me(ctx, Auth{}); StatusCode(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "Missing Authorization Header") {
		t.Fatalf("anonymous Me: %v", err)
	}
	// alice (Alpha) may not list users.
	if _, err := c.ListUsers(ctx, tk.Access); StatusCode(err) != http.StatusForbidden {
		t.Fatalf("ListUsers as Alpha: %v", err)
	}
	if StatusCode(errors.New("x")) != 0 {
		t.Fatal("StatusCode of a plain error")
	}
	down := &Client{BaseURL: "http://127.0.0.1:1", HTTP: &http.Client{Timeout: time.Second}}
	if _, err := down.Login(ctx, "a", "b", "", false); err == nil || StatusCode(err) != 0 {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestCSRFTokenWorksForWrites(t *testing.T) {
	c, f := setup(t)
	ctx := context.Background()
	tk, _ := c.Login(ctx, "admin", fakesuperset.AdminPassword, "db", false)
	csrf, err := c.CSRFToken(ctx, tk.Access)
	if err != nil || csrf.Token == "" {
		t.Fatalf("CSRFToken: %v", err)
	}
	body := `{"user":{"username":"g"},"resources":[{"type":"dashboard","id":"` + f.Dashboard().EmbedUUID + `"}],"rls":[]}`
	post := func(withCSRF bool) int {
		req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+"/api/v1/security/guest_token/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tk.Access)
		if withCSRF {
			req.Header.Set("X-CSRFToken", csrf.Token)
		}
		resp, err := (&http.Client{Jar: csrf.Jar}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(true); got != http.StatusOK {
		t.Fatalf("guest_token with the client's CSRF: %d", got)
	}
	if got := post(false); got != http.StatusBadRequest {
		t.Fatalf("guest_token without CSRF: %d", got)
	}
}

func TestListUsersPages(t *testing.T) {
	c, f := setup(t)
	ctx := context.Background()
	tk, _ := c.Login(ctx, "admin", fakesuperset.AdminPassword, "db", false)
	// 3 seeded + 230 created → three pages of 100.
	for i := range 230 {
		req := fmt.Sprintf(`{"first_name":"U","last_name":"%d","username":"u%d","email":"u%d@x","password":"p","roles":[4]}`, i, i, i)
		r, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+"/api/v1/security/users/", strings.NewReader(req))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tk.Access)
		resp, err := http.DefaultClient.Do(r)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create user %d: %v %v", i, err, resp.Status)
		}
		resp.Body.Close()
	}
	f.SetActive(3, false)
	users, err := c.ListUsers(ctx, tk.Access)
	if err != nil || len(users) != 233 {
		t.Fatalf("ListUsers: %v, %d users", err, len(users))
	}
	seen := map[int]bool{}
	for _, u := range users {
		if seen[u.ID] {
			t.Fatalf("user %d twice", u.ID)
		}
		seen[u.ID] = true
		if u.ID == 3 && (u.Active || u.Username != "bob" || u.Roles[0].Name != "Gamma") {
			t.Errorf("bob: %+v", u)
		}
	}
}

func TestDashboards(t *testing.T) {
	c, f := setup(t)
	ctx := context.Background()
	tk, _ := c.Login(ctx, "admin", fakesuperset.AdminPassword, "db", false)
	d := f.Dashboard()
	for _, key := range []string{"1", d.Slug} {
		got, err := c.Dashboard(ctx, tk.Access, key)
		if err != nil || got.ID != d.ID || got.Slug != d.Slug {
			t.Errorf("Dashboard(%q): %v %+v", key, err, got)
		}
		e, err := c.EmbeddedDashboard(ctx, tk.Access, key)
		if err != nil || e.UUID != d.EmbedUUID || e.DashboardID != "1" {
			t.Errorf("EmbeddedDashboard(%q): %v %+v", key, err, e)
		}
	}
	if _, err := c.Dashboard(ctx, tk.Access, "nope/../1"); StatusCode(err) != http.StatusNotFound {
		t.Errorf("path-escaped slug: %v", err)
	}
}
