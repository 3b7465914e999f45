package fakesuperset

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// The fake's Superset master mode (master.go) on its own, without a
// gateway: what the gateway tests rely on it to do.

func masterFake(c *clock) *Fake {
	return New(Options{SecretKey: key, Now: c.now, Master: true})
}

func apiBearer(t *testing.T, f *Fake, user, pw string) string {
	t.Helper()
	w := do(f, "POST", "/api/v1/security/login", "", strings.NewReader(`{"username":"`+user+`","password":"`+pw+`","provider":"db"}`),
		"Content-Type", "application/json")
	var out struct {
		Access string `json:"access_token"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		t.Fatalf("API login %s: %d %s", user, w.Code, w.Body)
	}
	return "Bearer " + out.Access
}

func TestMasterSessionEpoch(t *testing.T) {
	c := newClock()
	f := masterFake(c)
	sess := login(t, f, "bob", BobPassword)
	fs, err := flaskcookie.Decode(sess, key, SessionLifetime, c.now())
	if err != nil || fs["_login_at"] == nil {
		t.Fatalf("login did not stamp _login_at: %v %v", fs, err)
	}
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	admin := apiBearer(t, f, "admin", AdminPassword)
	for _, pk := range []string{"abc", "-1"} {
		if w := do(f, "DELETE", "/api/v1/security/users/"+pk+"/sessions", "", nil); w.Code != 404 {
			t.Errorf("pk %q without credentials: %d, want 404 (no route)", pk, w.Code)
		}
	}
	if w := do(f, "DELETE", "/api/v1/security/users/3/sessions", "", nil, "Authorization", apiBearer(t, f, "alice", AlicePassword)); w.Code != 403 {
		t.Fatalf("alice: %d, want 403", w.Code)
	}
	if w := do(f, "DELETE", "/api/v1/security/users/99/sessions", "", nil, "Authorization", admin); w.Code != 404 {
		t.Fatalf("unknown user: %d, want 404", w.Code)
	}
	// The epoch is rounded up to a whole second; on one (as the clock is
	// here) a login of that very instant would survive it, as in master.
	c.advance(10 * time.Millisecond)
	if w := do(f, "DELETE", "/api/v1/security/users/3/sessions", "", nil, "Authorization", admin); w.Code != 200 {
		t.Fatalf("admin: %d %s", w.Code, w.Body)
	}
	w := do(f, "GET", "/api/v1/me/", sess, nil)
	if w.Code != 401 {
		t.Fatalf("after the epoch: %d, want 401", w.Code)
	}
	after, err := flaskcookie.Decode(sessionOf(t, w), key, SessionLifetime, c.now())
	if err != nil || after["_user_id"] != nil || !strings.Contains(flashText(after), SessionEndedFlash) {
		t.Fatalf("the ended session: %v %v", after, err)
	}
	if w := do(f, "GET", "/superset/welcome/", sess, nil); w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/login/") {
		t.Fatalf("a page after the epoch: %d %q", w.Code, w.Header().Get("Location"))
	}
	c.advance(2 * time.Second)
	if w := do(f, "GET", "/api/v1/me/", login(t, f, "bob", BobPassword), nil); w.Code != 200 {
		t.Fatalf("a login after the epoch: %d", w.Code)
	}
}

func flashText(s flaskcookie.Session) string {
	b, _ := json.Marshal(s["_flashes"])
	return string(b)
}

func TestMasterCurrentPassword(t *testing.T) {
	c := newClock()
	f := masterFake(c)
	bob := apiBearer(t, f, "bob", BobPassword)
	w := do(f, "GET", "/api/v1/security/csrf_token/", "", nil, "Authorization", bob)
	sess := sessionOf(t, w)
	var tok struct {
		Result string `json:"result"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &tok)
	put := func(body string) int {
		return do(f, "PUT", "/api/v1/me/", sess, strings.NewReader(body), "Authorization", bob,
			"Content-Type", "application/json", "X-CSRFToken", tok.Result).Code
	}
	if code := put(`{"password":"n3w"}`); code != 400 {
		t.Errorf("no current_password: %d", code)
	}
	if code := put(`{"password":"n3w","current_password":"wrong"}`); code != 400 {
		t.Errorf("wrong current_password: %d", code)
	}
	if u, _ := f.User(3); u.Password != BobPassword {
		t.Fatal("a refused change changed the password")
	}
	if code := put(`{"password":"n3w","current_password":"` + BobPassword + `"}`); code != 200 {
		t.Fatalf("right current_password: %d", code)
	}
	if u, _ := f.User(3); u.Password != "n3w" {
		t.Fatal("password not changed")
	}
	// 6.1.0 asks for no current password.
	f61 := New(Options{SecretKey: key, Now: c.now})
	bob61 := apiBearer(t, f61, "bob", BobPassword)
	w = do(f61, "GET", "/api/v1/security/csrf_token/", "", nil, "Authorization", bob61)
	_ = json.Unmarshal(w.Body.Bytes(), &tok)
	if w := do(f61, "PUT", "/api/v1/me/", sessionOf(t, w), strings.NewReader(`{"password":"n3w"}`), "Authorization", bob61,
		"Content-Type", "application/json", "X-CSRFToken", tok.Result); w.Code != 200 {
		t.Fatalf("6.1 without current_password: %d %s", w.Code, w.Body)
	}
}

func TestMasterEmbeddedRevokeAndRev(t *testing.T) {
	c := newClock()
	f := masterFake(c)
	d := f.Dashboard()
	mint := func() string {
		tok, err := guestjwt.Mint([]byte(DefaultGuestSecret), guestjwt.MintOptions{
			User: guestjwt.User{Username: "g"}, Resources: []guestjwt.Resource{{Type: "dashboard", ID: d.EmbedUUID}},
			Audience: DefaultGuestAudience, Now: c.now(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	old := mint()
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", old); w.Code != 200 {
		t.Fatalf("guest before: %d", w.Code)
	}
	admin := apiBearer(t, f, "admin", AdminPassword)
	w := do(f, "GET", "/api/v1/security/csrf_token/", "", nil, "Authorization", admin)
	var tok struct {
		Result string `json:"result"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &tok)
	c.advance(time.Second)
	if w := do(f, "POST", "/api/v1/dashboard/"+d.Slug+"/embedded/revoke", sessionOf(t, w), nil, "Authorization", admin, "X-CSRFToken", tok.Result); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", old); w.Code == 200 {
		t.Fatal("a token issued before the revoke still reads the dashboard")
	}
	c.advance(time.Second)
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", mint()); w.Code != 200 {
		t.Fatalf("a token issued after: %d", w.Code)
	}
}
