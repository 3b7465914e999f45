package conformance

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// POST /api/v1/security/login validates its body with FAB's marshmallow
// schema: 400 {"message": {field: [errors]}} for an unknown key, an
// empty or missing username, and any provider but "db" (AUTH_DB only);
// without "provider" the schema passes and the view crashes: 500.
func testAPILoginValidation(t *testing.T, tg Target) {
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"username": "x", "password": "y", "provider": "ldap"},
			`{"message":{"provider":["Alternative authentication provider is not allowed"]}}`},
		{map[string]any{"username": "x", "password": "y", "provider": "db", "extra": 1},
			`{"message":{"extra":["Unknown field."]}}`},
		{map[string]any{"username": "", "password": "y", "provider": "db"},
			`{"message":{"username":["Shorter than minimum length 1."]}}`},
		{map[string]any{"password": "y", "provider": "db"},
			`{"message":{"username":["Missing data for required field."]}}`},
	} {
		r := newClient(t, tg).do(http.MethodPost, "/api/v1/security/login", tc.body)
		wantJSON(t, r, http.StatusBadRequest, tc.want)
	}
	r := newClient(t, tg).do(http.MethodPost, "/api/v1/security/login",
		map[string]any{"username": tg.Gamma.Username, "password": tg.Gamma.Password})
	wantJSON(t, r, http.StatusInternalServerError, `{"message":"Fatal error"}`)
}

// PUT /api/v1/me/ (session cookie + X-CSRFToken) takes first_name,
// last_name and password; it answers 200 with the updated user in GET
// /api/v1/me/'s shape, 400 "At least one field must be provided." for
// {}, and 400 {"message": {field: ["Unknown field."]}} for anything else
// (e-mail included). It sets the row's changed_by to the user itself,
// which makes DELETE /api/v1/security/users/<pk> fail (422) until another
// user's change: the gateway must not count a refused DELETE as done.
func testMeUpdate(t *testing.T, tg Target) {
	admin := newClient(t, tg)
	at := admin.mustAPILogin(tg.Admin, false).Access
	pk, cr := createUser(t, admin, at, roleID(t, admin, at, "Gamma"))
	c := newClient(t, tg)
	c.mustFormLogin(cr)
	csrf := c.csrfToken()
	put := func(body map[string]any) *response {
		return c.do(http.MethodPut, "/api/v1/me/", body, header("X-CSRFToken", csrf), header("Referer", tg.BaseURL+"/"))
	}

	r := put(map[string]any{"first_name": "Renamed"})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/v1/me/ first_name: %d %.300s, want 200", r.StatusCode, r.body)
	}
	res, _ := r.json(t)["result"].(map[string]any)
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"email", "first_name", "id", "is_active", "is_anonymous", "last_name", "login_count", "username"}; !slices.Equal(keys, want) {
		t.Errorf("PUT /api/v1/me/ result keys %v, want %v", keys, want)
	}
	if res["first_name"] != "Renamed" || res["username"] != cr.Username || res["is_anonymous"] != false {
		t.Errorf("PUT /api/v1/me/ result %v, want first_name Renamed, username %s", res, cr.Username)
	}
	if got := userID(t, c); got != pk {
		t.Errorf("/api/v1/me/ id %s, want %s", got, pk)
	}
	if got := getUser(t, admin, at, pk)["first_name"]; got != "Renamed" {
		t.Errorf("users API first_name %v after PUT /api/v1/me/, want Renamed", got)
	}
	wantJSON(t, put(map[string]any{}), http.StatusBadRequest, `{"message":"At least one field must be provided."}`)
	wantJSON(t, put(map[string]any{"email": "x"}), http.StatusBadRequest, `{"message":{"email":["Unknown field."]}}`)

	// PUT /api/v1/me/ made the row its own changed_by: SQLAlchemy cannot
	// order its delete, FAB rolls back and answers 422; the user stays.
	// An admin's PUT makes the admin changed_by, and DELETE works again.
	usersPath := "/api/v1/security/users/" + pk
	r = admin.do(http.MethodDelete, usersPath, nil, bearer(at))
	if msg, _ := r.json(t)["message"].(string); r.StatusCode != http.StatusUnprocessableEntity ||
		!strings.HasPrefix(msg, "Database exception occurred: Circular dependency detected.") {
		t.Errorf("DELETE a user who changed itself: %d %.300s, want 422 Database exception occurred: Circular dependency detected.", r.StatusCode, r.body)
	}
	if userID(t, c) != pk {
		t.Errorf("user gone after the refused DELETE")
	}
	if r := admin.do(http.MethodPut, usersPath, map[string]any{"last_name": "Admin-changed"}, bearer(at)); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT last_name as admin: %d %.200s", r.StatusCode, r.body)
	}
	wantJSON(t, admin.do(http.MethodDelete, usersPath, nil, bearer(at)), http.StatusOK, `{"message":"OK"}`)
}
