package conformance

import (
	"net/http"
	"testing"
)

// How flask-jwt-extended 4.7.1 reads Authorization on a @protect()ed API
// (/api/v1/me/, no session): the credentials are comma-separated, exactly
// one must have the case-sensitive type "Bearer" followed by exactly one
// token; malformed headers are 422 (401 without a "Bearer" credential),
// and token errors are 422 with the PyJWT message. The gateway's own
// Bearer parsing must agree, or it would authorize what Superset refuses.
func testBearerHeader(t *testing.T, tg Target) {
	tk := newClient(t, tg).mustAPILogin(tg.Admin, false)
	const badHeader = "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"
	for _, tc := range []struct {
		name, auth string
		status     int
		msg        string // the {"msg"} of a refusal
	}{
		{"no token", "Bearer ", http.StatusUnprocessableEntity, badHeader},
		{"two tokens", "Bearer a b", http.StatusUnprocessableEntity, badHeader},
		{"lowercase type", "bearer " + tk.Access, http.StatusUnauthorized,
			"Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"},
		{"bad signature", "Bearer " + tk.Access + "x", http.StatusUnprocessableEntity, "Signature verification failed"},
		{"alg none", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", http.StatusUnprocessableEntity, "The specified alg value is not allowed"},
		{"basic then bearer", "Basic eA==, Bearer " + tk.Access, http.StatusOK, ""},
	} {
		r := newClient(t, tg).get("/api/v1/me/", header("Authorization", tc.auth))
		if tc.status == http.StatusOK {
			res, _ := r.json(t)["result"].(map[string]any)
			if r.StatusCode != http.StatusOK || res["username"] != tg.Admin.Username {
				t.Errorf("%s: %d %.200s, want 200 as %s", tc.name, r.StatusCode, r.body, tg.Admin.Username)
			}
			continue
		}
		if r.StatusCode != tc.status || r.json(t)["msg"] != tc.msg {
			t.Errorf("%s: %d %.200s, want %d {msg: %q}", tc.name, r.StatusCode, r.body, tc.status, tc.msg)
		}
	}
	// /refresh checks the signature before the token type.
	r := newClient(t, tg).do(http.MethodPost, "/api/v1/security/refresh", nil, bearer(tk.Access+"x"))
	wantJSON(t, r, http.StatusUnprocessableEntity, `{"msg":"Signature verification failed"}`)
}
