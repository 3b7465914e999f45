package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// Who may do what with the three seeded roles. An authenticated caller
// without the permission gets 403 {"message":"Forbidden"}; a session user
// is authorized as itself even when the request also carries another
// user's Bearer (FAB reads the session first), so a gateway that leaves a
// Superset cookie on a request cannot lift it with a JWT. The fixture
// dashboard has no charts: DashboardAccessFilter hides it (404) from
// everyone but its owners and admins, and from guests not granted it.
// Legacy FAB MVC views answer a non-admin browser with 302 to the login
// page (next = the absolute URL) and an "Access is Denied" flash.
func testPermissions(t *testing.T, tg Target) {
	alice := newClient(t, tg)
	alice.mustFormLogin(tg.Alpha)
	bob := newClient(t, tg)
	bob.mustFormLogin(tg.Gamma)
	admin := newClient(t, tg)
	admin.mustFormLogin(tg.Admin)
	adminTok := newClient(t, tg).mustAPILogin(tg.Admin, false).Access
	aliceTok := newClient(t, tg).mustAPILogin(tg.Alpha, false).Access
	guest := guestToken(t, tg, "perm-guest")

	const users = "/api/v1/security/users/"
	const forbidden = `{"message":"Forbidden"}`
	wantJSON(t, alice.get(users), http.StatusForbidden, forbidden)
	wantJSON(t, alice.get(users, bearer(adminTok)), http.StatusForbidden, forbidden)
	wantJSON(t, newClient(t, tg).get(users, bearer(aliceTok)), http.StatusForbidden, forbidden)
	wantJSON(t, newClient(t, tg).get(users, header("X-GuestToken", guest)), http.StatusForbidden, forbidden)
	if r := newClient(t, tg).get(users, bearer(adminTok)); r.StatusCode != http.StatusOK {
		t.Errorf("GET %s as admin: %d, want 200", users, r.StatusCode)
	}

	dash := fmt.Sprintf("/api/v1/dashboard/%d", tg.DashboardID)
	const notFound = `{"message":"Not found"}`
	wantJSON(t, alice.get(dash), http.StatusNotFound, notFound)
	wantJSON(t, bob.get(dash), http.StatusNotFound, notFound)
	wantJSON(t, bob.get(dash+"/embedded"), http.StatusNotFound, notFound)
	r := newClient(t, tg).get(dash, bearer(adminTok))
	var d struct {
		Result struct {
			ID    int    `json:"id"`
			Slug  string `json:"slug"`
			Title string `json:"dashboard_title"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil || r.StatusCode != http.StatusOK ||
		d.Result.ID != tg.DashboardID || d.Result.Slug != tg.DashboardSlug || d.Result.Title == "" {
		t.Errorf("GET %s as admin: %d %.200s, want 200 with id %d, slug %q, a title", dash, r.StatusCode, r.body, tg.DashboardID, tg.DashboardSlug)
	}

	if r := admin.get("/users/list/"); r.StatusCode != http.StatusOK {
		t.Errorf("GET /users/list/ as admin: %d, want 200", r.StatusCode)
	}
	r = bob.get("/users/list/")
	if want := "/login/?next=" + tg.BaseURL + "/users/list/"; r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
		t.Errorf("GET /users/list/ as Gamma: %d %q, want 302 %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	if !tg.ServerSideSessions {
		s, _ := sessionCookie(t, tg, r)
		if f := s.Flashes(); len(f) == 0 || f[len(f)-1] != [2]string{"danger", "Access is Denied"} {
			t.Errorf("flashes %v, want danger Access is Denied", f)
		}
	}
}
