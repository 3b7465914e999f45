package conformance

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Werkzeug's routing and Superset's anonymous redirects: a rule defined
// with a trailing slash answers the bare path with 308 to the absolute
// slashed URL; / sends everyone to the welcome page, which sends an
// anonymous browser to the login page (next percent-encoded); /logout/
// without a session still answers 302 /.
func testRouting(t *testing.T, tg Target) {
	for _, tc := range []struct {
		path   string
		status int
		loc    string
	}{
		{"/login", http.StatusPermanentRedirect, tg.BaseURL + "/login/"},
		{"/api/v1/me", http.StatusPermanentRedirect, tg.BaseURL + "/api/v1/me/"},
		{"/", http.StatusFound, "/superset/welcome/"},
		{"/superset/welcome/", http.StatusFound, "/login/?next=%2Fsuperset%2Fwelcome%2F"},
		{"/logout/", http.StatusFound, "/"},
	} {
		r := newClient(t, tg).get(tc.path)
		if r.StatusCode != tc.status || r.Header.Get("Location") != tc.loc {
			t.Errorf("GET %s anonymous: %d Location %q, want %d %q", tc.path, r.StatusCode, r.Header.Get("Location"), tc.status, tc.loc)
		}
	}
	// 404s for JSON clients carry Superset's error envelope.
	notFoundEnvelope(t, newClient(t, tg).get("/api/v1/nothing/here"))
	notFoundEnvelope(t, newClient(t, tg).get("/embedded/"+tg.EmbedUUID+"x", header("Accept", "application/json")))
}

// notFoundEnvelope asserts Superset's JSON error envelope for an abort(404):
// {"errors": [{"message": "404 Not Found: …", "error_type":
// "GENERIC_BACKEND_ERROR", "level": "error", "extra": {"issue_codes":
// [{"code": 1011, …}]}}]}.
func notFoundEnvelope(t *testing.T, r *response) {
	t.Helper()
	var env struct {
		Errors []struct {
			Message   string `json:"message"`
			ErrorType string `json:"error_type"`
			Level     string `json:"level"`
			Extra     struct {
				IssueCodes []struct {
					Code int `json:"code"`
				} `json:"issue_codes"`
			} `json:"extra"`
		} `json:"errors"`
	}
	what := r.Request.Method + " " + r.Request.URL.Path
	if r.StatusCode != http.StatusNotFound || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: %d %q, want 404 application/json", what, r.StatusCode, r.Header.Get("Content-Type"))
	}
	if err := json.Unmarshal(r.body, &env); err != nil || len(env.Errors) != 1 {
		t.Fatalf("%s: body %.300s, want {errors: [one]} (%v)", what, r.body, err)
	}
	e := env.Errors[0]
	if !strings.HasPrefix(e.Message, "404 Not Found: The requested URL was not found on the server.") ||
		e.ErrorType != "GENERIC_BACKEND_ERROR" || e.Level != "error" ||
		len(e.Extra.IssueCodes) != 1 || e.Extra.IssueCodes[0].Code != 1011 {
		t.Errorf("%s: error %+v, want 404 Not Found, GENERIC_BACKEND_ERROR, error, issue 1011", what, e)
	}
}
