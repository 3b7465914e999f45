package epoch_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
)

// recStamper records stamps.
type recStamper struct {
	mu  sync.Mutex
	got []string // "<user> <trigger>"
}

func (r *recStamper) Stamp(_ context.Context, userID string, why epoch.Reason) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, userID+" "+why.Trigger)
	return 42, nil
}

// runHook sends one request through Capture to a fake upstream answering
// status/location, then StampResponse, as the proxy would. It checks that
// the upstream received the body intact.
func runHook(t *testing.T, method, target, contentType, body string, status int, location string) ([]string, bool) {
	t.Helper()
	rs := &recStamper{}
	h, err := epoch.NewHook(epoch.HookOptions{Epochs: rs, MaxBody: 64})
	if err != nil {
		t.Fatal(err)
	}
	var self bool
	x := &principal.Exchange{Principal: principal.Principal{Kind: principal.Session, UserID: "5"}}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if string(got) != body {
			t.Errorf("upstream body %q, want %q", got, body)
		}
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Request: r, Body: io.NopCloser(strings.NewReader(`{"result":{"id":5}}`))}
		if location != "" {
			resp.Header.Set("Location", location)
		}
		if err := h.StampResponse(resp); err != nil {
			t.Fatal(err)
		}
		self = x.SelfStamped != 0
	})
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if d := h.Capture(req, x); !d.Allow {
		t.Fatalf("Capture refused: %s", d.Reason)
	}
	upstream.ServeHTTP(httptest.NewRecorder(), req.WithContext(principal.WithExchange(req.Context(), x)))
	return rs.got, self
}

func TestHookRoutes(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	const js = "application/json"
	long := `{"first_name":"` + strings.Repeat("x", 100) + `"}`
	for _, c := range []struct {
		name, method, target, ct, body string
		status                         int
		location                       string
		want                           string // "" = no stamp
		self                           bool
	}{
		{"api disable", "PUT", "/api/v1/security/users/3", js, `{"active":false}`, 200, "", "3 user_disabled", false},
		{"api disable falsy string", "PUT", "/api/v1/security/users/3", js, `{"active":"off"}`, 200, "", "3 user_disabled", false},
		{"api enable", "PUT", "/api/v1/security/users/3", js, `{"active":"True"}`, 200, "", "", false},
		{"api duplicate key, last wins", "PUT", "/api/v1/security/users/3", js, `{"active":true,"active":false}`, 200, "", "3 user_disabled", false},
		{"api password", "PUT", "/api/v1/security/users/3", js, `{"password":"x","active":true}`, 200, "", "3 password_changed", false},
		{"api roles only", "PUT", "/api/v1/security/users/3", js, `{"roles":[1]}`, 200, "", "", false},
		{"api unparsable body fails closed", "PUT", "/api/v1/security/users/3", js, `{"active":`, 200, "", "3 user_disabled", false},
		{"api oversized body fails closed", "PUT", "/api/v1/security/users/3", js, long, 200, "", "3 user_disabled", false},
		{"api 400", "PUT", "/api/v1/security/users/3", js, `{"active":false}`, 400, "", "", false},
		{"api 500 disable fails closed", "PUT", "/api/v1/security/users/3", js, `{"active":false}`, 500, "", "3 user_disabled", false},
		{"api 500 roles only", "PUT", "/api/v1/security/users/3", js, `{"roles":[999999]}`, 500, "", "", false},
		{"api delete 500 fails closed", "DELETE", "/api/v1/security/users/4", "", "", 500, "", "4 user_deleted", false},
		{"legacy edit 500 fails closed", "POST", "/users/edit/3", form, "first_name=Bob&csrf_token=t", 500, "", "3 user_disabled", false},
		{"legacy edit checked 500", "POST", "/users/edit/3", form, "active=y&first_name=Bob", 500, "", "", false},
		{"legacy delete 500 fails closed", "POST", "/users/delete/6", form, "csrf_token=t", 500, "", "6 user_deleted", false},
		{"reset password 502 fails closed", "POST", "/resetpassword/form?pk=7", form, "password=a&conf_password=a", 502, "", "7 password_changed", false},
		{"me password 500", "PUT", "/api/v1/me/", js, `{"password":"x"}`, 500, "", "", false},
		{"reset my password 500", "POST", "/resetmypassword/form", form, "password=a&conf_password=a", 500, "", "", false},
		{"api delete", "DELETE", "/api/v1/security/users/4", "", "", 200, "", "4 user_deleted", false},
		{"api delete 404", "DELETE", "/api/v1/security/users/4", "", "", 404, "", "", false},
		{"me password", "PUT", "/api/v1/me/", js, `{"password":"x"}`, 200, "", "5 password_changed", true},
		{"me name", "PUT", "/api/v1/me/", js, `{"first_name":"x"}`, 200, "", "", false},
		{"legacy edit unchecked", "POST", "/users/edit/3", form, "first_name=Bob&csrf_token=t", 302, "/", "3 user_disabled", false},
		{"legacy edit false", "POST", "/users/edit/3", form, "active=false", 302, "/users/list/", "3 user_disabled", false},
		{"legacy edit checked", "POST", "/users/edit/3", form, "active=y&first_name=Bob", 302, "/", "", false},
		{"legacy edit multipart fails closed", "POST", "/users/edit/3", "multipart/form-data; boundary=x", "--x--", 302, "/", "3 user_disabled", false},
		{"legacy edit invalid form (200)", "POST", "/users/edit/3", form, "", 200, "", "", false},
		{"legacy edit csrf failure", "POST", "/users/edit/3", form, "", 302, "/login/?next=%2Fusers%2Fedit%2F3", "", false},
		{"legacy edit denied (absolute)", "POST", "/users/edit/3", form, "", 302, "http://gw.example/login/?next=x", "", false},
		{"legacy delete", "POST", "/users/delete/6", form, "csrf_token=t", 302, "/", "6 user_deleted", false},
		{"legacy delete 404", "POST", "/users/delete/6", form, "", 404, "", "", false},
		{"reset password", "POST", "/resetpassword/form?pk=7", form, "password=a&conf_password=a", 302, "/", "7 password_changed", false},
		{"reset password no pk", "POST", "/resetpassword/form", form, "password=a&conf_password=a", 302, "/", "", false},
		{"reset my password", "POST", "/resetmypassword/form", form, "password=a&conf_password=a", 302, "/", "5 password_changed", true},
		{"reset my password anonymous", "POST", "/resetmypassword/form", form, "", 302, "/login/?next=/resetmypassword/form", "", false},
		{"unrelated route", "PUT", "/api/v1/dashboard/1", js, `{"active":false}`, 200, "", "", false},
		// Superset master (unreleased): an admin ends a user's sessions.
		{"end sessions", "DELETE", "/api/v1/security/users/4/sessions", "", "", 200, "", "4 sessions_ended", false},
		{"end sessions 403", "DELETE", "/api/v1/security/users/4/sessions", "", "", 403, "", "", false},
		{"end sessions 404 (6.1.0)", "DELETE", "/api/v1/security/users/4/sessions", "", "", 404, "", "", false},
		{"end sessions 500 fails closed", "DELETE", "/api/v1/security/users/4/sessions", "", "", 500, "", "4 sessions_ended", false},
		{"me password with current_password", "PUT", "/api/v1/me/", js, `{"password":"x","current_password":"y"}`, 200, "", "5 password_changed", true},
		{"me wrong current_password", "PUT", "/api/v1/me/", js, `{"password":"x","current_password":"y"}`, 400, "", "", false},
		{"me/password", "PUT", "/api/v1/me/password", js, `{"new_password":"x","current_password":"y"}`, 200, "", "5 password_changed", true},
		{"me/password 400", "PUT", "/api/v1/me/password", js, `{"new_password":"x","current_password":"y"}`, 400, "", "", false},
		{"me/password 404 (6.1.0)", "PUT", "/api/v1/me/password", js, `{"new_password":"x","current_password":"y"}`, 404, "", "", false},
		{"me/password 500", "PUT", "/api/v1/me/password", js, `{"new_password":"x","current_password":"y"}`, 500, "", "", false},
	} {
		got, self := runHook(t, c.method, c.target, c.ct, c.body, c.status, c.location)
		want := []string(nil)
		if c.want != "" {
			want = []string{c.want}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") || self != c.self {
			t.Errorf("%s: stamps %v self %v; want %v self %v", c.name, got, self, want, c.self)
		}
	}
}

// Ids Superset's database might coerce to another user's are refused
// before they reach Superset.
func TestCaptureRefusesOddUserIDs(t *testing.T) {
	h, err := epoch.NewHook(epoch.HookOptions{Epochs: &recStamper{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, target string
		refused        bool
	}{
		{"PUT", "/api/v1/security/users/03", true},
		{"PUT", "/api/v1/security/users/3.0", true},
		{"DELETE", "/api/v1/security/users/+3", true},
		{"PATCH", "/api/v1/security/users/3e0", true},
		{"POST", "/users/edit/03", true},
		{"POST", "/users/delete/0x3", true},
		{"POST", "/resetpassword/form?pk=03", true},
		{"POST", "/resetpassword/form?pk=3&pk=4", true},
		{"PUT", "/api/v1/security/users/3", false},
		{"PUT", "/api/v1/security/users/0", false},
		{"GET", "/api/v1/security/users/03", false},
		{"POST", "/resetpassword/form?pk=3", false},
		{"GET", "/users/list/", false},
		{"DELETE", "/api/v1/security/users/-1/sessions", true},
		{"DELETE", "/api/v1/security/users/abc/sessions", true},
		{"DELETE", "/api/v1/security/users/0019/sessions", true},
		{"DELETE", "/api/v1/security/users/1234567890123456789/sessions", true},
		{"DELETE", "/api/v1/security/users/3/sessions", false},
	} {
		d := h.Capture(httptest.NewRequest(c.method, c.target, strings.NewReader("{}")), &principal.Exchange{})
		if d.Allow == c.refused || (c.refused && d.Reason != policy.ReasonBadUserID) {
			t.Errorf("%s %s: %+v", c.method, c.target, d)
		}
	}
}
