package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// POST /api/v1/security/guest_token/ validates with GuestTokenCreateSchema:
// "resources" and "rls" are required lists, a resource's type must be
// "dashboard" and its id a string, an RLS rule needs a clause; 400
// {"message": {…}} lists every error. A body without "user" passes the
// schema and crashes the view (500). A resource may name the dashboard by
// slug as well as by embed uuid.
func testGuestTokenValidation(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, false)
	csrf := c.csrfToken(bearer(tk.Access))
	post := func(body map[string]any) *response {
		return c.do(http.MethodPost, "/api/v1/security/guest_token/", body,
			bearer(tk.Access), header("X-CSRFToken", csrf), header("Referer", tg.BaseURL+"/"))
	}
	dash := func(id any) []any { return []any{map[string]any{"type": "dashboard", "id": id}} }
	noRLS := []any{}

	wantJSON(t, post(map[string]any{"resources": dash(tg.EmbedUUID), "rls": noRLS}),
		http.StatusInternalServerError, `{"message":"Fatal error"}`)
	wantJSON(t, post(map[string]any{"user": map[string]any{}, "resources": dash(1), "rls": noRLS}),
		http.StatusBadRequest, `{"message":{"resources":{"0":{"id":["Not a valid string."]}}}}`)
	wantJSON(t, post(map[string]any{"user": map[string]any{},
		"resources": []any{map[string]any{"type": "chart", "id": "1"}},
		"rls":       []any{map[string]any{"dataset": 1}}}),
		http.StatusBadRequest, `{"message":{"resources":{"0":{"type":["Must be one of: dashboard."]}},"rls":{"0":{"clause":["Missing data for required field."]}}}}`)
	wantJSON(t, post(map[string]any{"user": map[string]any{}, "rls": noRLS}),
		http.StatusBadRequest, `{"message":{"resources":["Missing data for required field."]}}`)

	r := post(map[string]any{"user": map[string]any{"username": "slug-guest"}, "resources": dash(tg.DashboardSlug), "rls": noRLS})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("guest_token by slug: %d %.300s, want 200", r.StatusCode, r.body)
	}
	tok, _ := r.json(t)["token"].(string)
	cl, err := (guestjwt.Verifier{Key: []byte(tg.GuestSecret), Audience: tg.GuestAudience}).Verify(tok, time.Now())
	if err != nil {
		t.Fatalf("verify guest token: %v", err)
	}
	if len(cl.Resources) != 1 || cl.Resources[0] != (guestjwt.Resource{Type: "dashboard", ID: tg.DashboardSlug}) {
		t.Errorf("resources %+v, want the slug as sent", cl.Resources)
	}
}

// What a guest token for the embed uuid reaches: the dashboard by slug as
// well as by id, and its embedded config {allowed_domains, dashboard_id
// (a string), uuid, changed_by, changed_on}.
func testGuestAccess(t *testing.T, tg Target) {
	guest := header("X-GuestToken", guestToken(t, tg, "access-guest"))
	r := newClient(t, tg).get("/api/v1/dashboard/"+tg.DashboardSlug, guest)
	res, _ := r.json(t)["result"].(map[string]any)
	if r.StatusCode != http.StatusOK || fmt.Sprint(res["id"]) != strconv.Itoa(tg.DashboardID) || res["slug"] != tg.DashboardSlug {
		t.Errorf("GET /api/v1/dashboard/<slug> as guest: %d %.200s, want 200 with id %d", r.StatusCode, r.body, tg.DashboardID)
	}
	path := fmt.Sprintf("/api/v1/dashboard/%d/embedded", tg.DashboardID)
	r = newClient(t, tg).get(path, guest)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as guest: %d %.300s, want 200", path, r.StatusCode, r.body)
	}
	res, _ = r.json(t)["result"].(map[string]any)
	domains, isList := res["allowed_domains"].([]any)
	by, _ := res["changed_by"].(map[string]any)
	if !isList || len(domains) != 0 || res["dashboard_id"] != strconv.Itoa(tg.DashboardID) || res["uuid"] != tg.EmbedUUID ||
		by["username"] != tg.Admin.Username || res["changed_on"] == nil {
		t.Errorf("GET %s: result %v, want allowed_domains [], dashboard_id %q, uuid %s, changed_by %s, changed_on",
			path, res, strconv.Itoa(tg.DashboardID), tg.EmbedUUID, tg.Admin.Username)
	}
}
