package conformance

import (
	"strconv"
	"testing"
)

// Routes Superset master adds after 6.1.0 (unreleased) that the gateway
// already handles: 6.1.0 must not have them, so that the gateway's hooks on
// them never fire against it. Each answers Superset's 404 envelope, also
// for an admin with a CSRF token: DELETE /api/v1/security/users/<pk>/sessions
// (FAB's <pk> does not match "3/sessions") and POST
// /api/v1/dashboard/<id_or_slug>/embedded/revoke (only …/embedded exists),
// and PUT /api/v1/me/password (a later master's self-service change).
// What master does on them is held to the fake only (fakesuperset
// Options.Master), never asserted here.
func testMasterRoutesAbsent(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, false)
	csrf := c.csrfToken(bearer(tk.Access))
	opts := []reqOpt{bearer(tk.Access), header("X-CSRFToken", csrf), header("Accept", "application/json")}
	notFoundEnvelope(t, c.do("DELETE", "/api/v1/security/users/1/sessions", nil, opts...))
	notFoundEnvelope(t, c.do("POST", "/api/v1/dashboard/"+strconv.Itoa(tg.DashboardID)+"/embedded/revoke", nil, opts...))
	notFoundEnvelope(t, c.do("POST", "/api/v1/dashboard/"+tg.DashboardSlug+"/embedded/revoke", nil, opts...))
	notFoundEnvelope(t, c.do("PUT", "/api/v1/me/password", map[string]any{"current_password": "x", "new_password": "y"}, opts...))
}
