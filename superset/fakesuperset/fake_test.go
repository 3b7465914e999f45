package fakesuperset

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

const key = "fake-test-secret-0123456789abcdef0123"

// clock is a settable fake clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// do sends one request straight to the handler with an optional session
// cookie and returns the recorder.
func do(f *Fake, method, target, session string, body io.Reader, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	if session != "" {
		r.AddCookie(&http.Cookie{Name: "session", Value: session})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.ServeHTTP(w, r)
	return w
}

func sessionOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

var csrfRe = regexp.MustCompile(`name="csrf_token" id="csrf_token" value="([^"]+)"`)

// login signs user in through the form and returns the session cookie.
func login(t *testing.T, f *Fake, user, pw string) string {
	t.Helper()
	w := do(f, "GET", "/login/", "", nil)
	m := csrfRe.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no csrf input: %s", w.Body.String())
	}
	sess := sessionOf(t, w)
	form := url.Values{"username": {user}, "password": {pw}, "csrf_token": {m[1]}}
	w = do(f, "POST", "/login/", sess, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != http.StatusFound {
		t.Fatalf("login: %d", w.Code)
	}
	if s := sessionOf(t, w); s != "" {
		return s
	}
	return sess
}

func TestDisabledUserCookieBecomesAnonymous(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	sess := login(t, f, "bob", BobPassword)
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 200 {
		t.Fatalf("me: %d", w.Code)
	}
	f.SetActive(3, false)
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 401 {
		t.Fatalf("me after disable: %d", w.Code)
	}
	f.SetActive(3, true)
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 200 {
		t.Fatalf("me after re-enable: %d", w.Code)
	}
	f.DeleteUser(3)
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 401 {
		t.Fatalf("me after delete: %d", w.Code)
	}
	if _, ok := f.User(3); ok {
		t.Fatal("deleted user still there")
	}
}

func TestCookieAgesOut(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	sess := login(t, f, "alice", AlicePassword)
	c.advance(SessionLifetime + time.Second)
	if w := do(f, "GET", "/api/v1/me/", sess, nil); w.Code != 401 {
		t.Fatalf("31-day-old cookie: %d", w.Code)
	}
}

func TestForgedCookieIsAnonymous(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	forged, _ := flaskcookie.Encode(flaskcookie.Session{"_user_id": "1"}, "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", c.now())
	if w := do(f, "GET", "/api/v1/me/", forged, nil); w.Code != 401 {
		t.Fatalf("forged cookie: %d", w.Code)
	}
	good, _ := flaskcookie.Encode(flaskcookie.Session{"_user_id": "1"}, key, c.now())
	if w := do(f, "GET", "/api/v1/me/", good, nil); w.Code != 200 {
		t.Fatalf("cookie under the real key: %d", w.Code)
	}
}

func TestServerSideSessions(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now, ServerSideSessions: true})
	w := do(f, "GET", "/login/", "", nil)
	sid := sessionOf(t, w)
	if len(sid) != 43 || f.ServerSessionCount() != 1 {
		t.Fatalf("sid %q, %d sessions", sid, f.ServerSessionCount())
	}
	ck := w.Result().Cookies()[0]
	if ck.Expires.IsZero() {
		t.Error("server-side session cookie without Expires")
	}
	// Fixation: the pre-login id is the post-login id.
	after := login(t, f, "bob", BobPassword)
	_ = after
	w = do(f, "GET", "/login/", "", nil)
	planted := sessionOf(t, w)
	m := csrfRe.FindStringSubmatch(w.Body.String())
	form := url.Values{"username": {"bob"}, "password": {BobPassword}, "csrf_token": {m[1]}}
	w = do(f, "POST", "/login/", planted, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if got := sessionOf(t, w); got != planted {
		t.Fatalf("server-side sid changed on login: %q → %q", planted, got)
	}
	if w := do(f, "GET", "/api/v1/me/", planted, nil); w.Code != 200 {
		t.Fatalf("planted sid after victim's login: %d", w.Code)
	}
	// An unknown sid is an empty session.
	if w := do(f, "GET", "/api/v1/me/", "no-such-sid", nil); w.Code != 401 {
		t.Fatalf("unknown sid: %d", w.Code)
	}
}

func TestCSRFFailures(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	w := do(f, "GET", "/login/", "", nil)
	sess := sessionOf(t, w)
	tok := csrfRe.FindStringSubmatch(w.Body.String())[1]
	other := do(f, "GET", "/login/", "", nil)
	otherTok := csrfRe.FindStringSubmatch(other.Body.String())[1]
	cases := []struct {
		name, sess, tok, want string
	}{
		{"missing", sess, "", "The CSRF token is missing."},
		{"no session", "", tok, "The CSRF session token is missing."},
		{"garbage", sess, "abc", "The CSRF token is invalid."},
		{"other session's", sess, otherTok, "The CSRF tokens do not match."},
	}
	for _, tc := range cases {
		w := do(f, "POST", "/api/v1/security/guest_token/", tc.sess, strings.NewReader(`{}`), "Content-Type", "application/json", "X-CSRFToken", tc.tok)
		if w.Code != 400 || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body.String())
		}
	}
	c.advance(CSRFTimeLimit + time.Second)
	w = do(f, "POST", "/api/v1/security/guest_token/", sess, strings.NewReader(`{}`), "Content-Type", "application/json", "X-CSRFToken", tok)
	if !strings.Contains(w.Body.String(), "The CSRF token has expired.") {
		t.Errorf("expired: %d %s", w.Code, w.Body.String())
	}
	// A form post without CSRF goes back to the login page.
	w = do(f, "POST", "/login/?next=/x", sess, strings.NewReader("username=bob&password=x"), "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/login/?next=") {
		t.Errorf("form without csrf: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestJWTAnswers(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, JWTSecret: "separate-jwt-secret-0123456789abcdef", Now: c.now})
	mint := func(o apijwt.MintOptions) string {
		o.Now = c.now()
		tok, err := apijwt.Mint([]byte("separate-jwt-secret-0123456789abcdef"), o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	access := mint(apijwt.MintOptions{Subject: "1"})
	cases := []struct {
		name, authz string
		code        int
		msg         string
	}{
		{"ok", "Bearer " + access, 200, ""},
		{"basic", "Basic YTpi", 401, "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"},
		{"refresh as access", "Bearer " + mint(apijwt.MintOptions{Subject: "1", Type: apijwt.Refresh}), 422, "Only non-refresh tokens are allowed"},
		{"under SECRET_KEY", "Bearer " + func() string {
			s, _ := apijwt.Mint([]byte(key), apijwt.MintOptions{Subject: "1", Now: c.now()})
			return s
		}(), 422, "Signature verification failed"},
		{"unknown user", "Bearer " + mint(apijwt.MintOptions{Subject: "99"}), 401, "Error loading the user 99"},
		{"garbage", "Bearer abc", 422, "Not enough segments"},
	}
	for _, tc := range cases {
		w := do(f, "GET", "/api/v1/me/", "", nil, "Authorization", tc.authz)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != tc.code || (tc.msg != "" && body["msg"] != tc.msg) {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body.String())
		}
	}
	c.advance(15 * time.Minute)
	if w := do(f, "GET", "/api/v1/me/", "", nil, "Authorization", "Bearer "+access); w.Code != 401 || !strings.Contains(w.Body.String(), "Token has expired") {
		t.Errorf("expired: %d %s", w.Code, w.Body.String())
	}
	// A session user without the permission gets 403, Bearer or not.
	sess := login(t, f, "alice", AlicePassword)
	if w := do(f, "GET", "/api/v1/security/users/", sess, nil, "Authorization", "Bearer "+access); w.Code != 403 {
		t.Errorf("alice's cookie on the users API: %d %s", w.Code, w.Body.String())
	}
	alice := mint(apijwt.MintOptions{Subject: "2"})
	if w := do(f, "GET", "/api/v1/security/users/", "", nil, "Authorization", "Bearer "+alice); w.Code != 403 {
		t.Errorf("alice's JWT on the users API: %d %s", w.Code, w.Body.String())
	}
}

func TestEmbeddedAllowedDomains(t *testing.T) {
	f := New(Options{SecretKey: key, AllowedDomains: []string{"https://portal.example"}})
	u := "/embedded/" + f.Dashboard().EmbedUUID
	if w := do(f, "GET", u, "", nil); w.Code != 403 {
		t.Errorf("no referer: %d", w.Code)
	}
	if w := do(f, "GET", u, "", nil, "Referer", "https://evil.example/x"); w.Code != 403 {
		t.Errorf("other referer: %d", w.Code)
	}
	if w := do(f, "GET", u, "", nil, "Referer", "https://portal.example/page"); w.Code != 200 {
		t.Errorf("allowed referer: %d", w.Code)
	}
}

func TestGuestTokenAccess(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	mint := func(id string) string {
		tok, _ := guestjwt.Mint([]byte(DefaultGuestSecret), guestjwt.MintOptions{
			Resources: []guestjwt.Resource{{Type: "dashboard", ID: id}}, Audience: DefaultGuestAudience, Now: c.now(),
		})
		return tok
	}
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", mint("1")); w.Code != 200 {
		t.Errorf("guest by id: %d", w.Code)
	}
	if w := do(f, "GET", "/api/v1/dashboard/gateway-e2e", "", nil, "X-GuestToken", mint(f.Dashboard().EmbedUUID)); w.Code != 200 {
		t.Errorf("guest by uuid: %d", w.Code)
	}
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", mint("42")); w.Code != 403 {
		t.Errorf("guest for another dashboard: %d", w.Code)
	}
	// Guests cannot administer users.
	if w := do(f, "GET", "/api/v1/security/users/", "", nil, "X-GuestToken", mint("1")); w.Code != 403 {
		t.Errorf("guest on users API: %d", w.Code)
	}
	// Expired guest token → anonymous.
	tok := mint("1")
	c.advance(301 * time.Second)
	if w := do(f, "GET", "/api/v1/dashboard/1", "", nil, "X-GuestToken", tok); w.Code != 401 {
		t.Errorf("expired guest: %d", w.Code)
	}
}

func TestMiscRoutes(t *testing.T) {
	var seen atomic.Int32
	f := New(Options{SecretKey: key, Observe: func(*http.Request) { seen.Add(1) }})
	if w := do(f, "GET", "/login", "", nil); w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "http://example.com/login/" {
		t.Errorf("/login: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := do(f, "GET", "/static/assets/images/favicon.png", "", nil); w.Code != 200 || w.Header().Get("Content-Type") != "image/png" {
		t.Errorf("static: %d", w.Code)
	}
	if w := do(f, "GET", "/api/v1/nothing", "", nil); w.Code != 404 {
		t.Errorf("unknown api: %d", w.Code)
	}
	if w := do(f, "GET", "/superset/welcome/", "", nil); w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/login/") {
		t.Errorf("anonymous welcome: %d %q", w.Code, w.Header().Get("Location"))
	}
	sess := login(t, f, "admin", AdminPassword)
	if w := do(f, "GET", "/superset/welcome/", sess, nil); w.Code != 200 {
		t.Errorf("welcome: %d", w.Code)
	}
	if seen.Load() < 5 {
		t.Errorf("Observe saw %d requests", seen.Load())
	}
	u, _ := f.UserByName("admin")
	if u.LoginCount != 1 || u.ID != 1 {
		t.Errorf("admin after login: %+v", u)
	}
}

func TestLegacyUserViews(t *testing.T) {
	c := newClock()
	f := New(Options{SecretKey: key, Now: c.now})
	admin := login(t, f, "admin", AdminPassword)
	// Signed in, GET /login/ redirects; the CSRF token comes from the API.
	var tok struct{ Result string }
	_ = json.Unmarshal(do(f, "GET", "/api/v1/security/csrf_token/", admin, nil).Body.Bytes(), &tok)
	post := func(sess, target string, form url.Values) *httptest.ResponseRecorder {
		return do(f, "POST", target, sess, strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	}
	if w := do(f, "GET", "/users/list/", admin, nil); w.Code != 200 {
		t.Errorf("admin list: %d", w.Code)
	}
	bob := login(t, f, "bob", BobPassword)
	if w := do(f, "GET", "/users/list/", bob, nil); w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/login/?next=http://") {
		t.Errorf("bob list: %d %q", w.Code, w.Header().Get("Location"))
	}
	// Without CSRF the edit is refused.
	if w := post(admin, "/users/edit/3", url.Values{"first_name": {"B"}}); w.Code != 302 || !strings.HasPrefix(w.Header().Get("Location"), "/login/") {
		t.Errorf("edit without csrf: %d %q", w.Code, w.Header().Get("Location"))
	}
	if u, _ := f.User(3); !u.Active {
		t.Fatal("bob disabled without CSRF")
	}
	if w := post(admin, "/users/edit/3", url.Values{"first_name": {"B"}, "csrf_token": {tok.Result}}); w.Code != 302 || w.Header().Get("Location") != "/" {
		t.Errorf("edit: %d %q", w.Code, w.Header().Get("Location"))
	}
	if u, _ := f.User(3); u.Active || u.FirstName != "B" {
		t.Errorf("after edit: %+v", u)
	}
	if w := do(f, "GET", "/api/v1/me/", bob, nil); w.Code != 401 {
		t.Errorf("bob after legacy disable: %d", w.Code)
	}
	if w := post(admin, "/resetpassword/form?pk=2", url.Values{"password": {"n"}, "conf_password": {"n"}, "csrf_token": {tok.Result}}); w.Code != 302 {
		t.Errorf("reset: %d", w.Code)
	}
	if u, _ := f.User(2); u.Password != "n" {
		t.Errorf("alice password not reset")
	}
	if w := post(admin, "/resetmypassword/form", url.Values{"password": {"m"}, "conf_password": {"m"}, "csrf_token": {tok.Result}}); w.Code != 302 {
		t.Errorf("reset mine: %d", w.Code)
	}
	if u, _ := f.User(1); u.Password != "m" {
		t.Errorf("admin password not reset")
	}
	if w := post(admin, "/users/delete/2", url.Values{"csrf_token": {tok.Result}}); w.Code != 302 {
		t.Errorf("delete: %d", w.Code)
	}
	if _, ok := f.User(2); ok {
		t.Error("alice not deleted")
	}
}

func TestWerkzeugQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/":                      "/",
		"/superset/dashboard/1/": "/superset/dashboard/1/",
		"/a b?x=1&y":             "/a+b?x%3D1%26y",
		"http://h:8/p":           "http://h:8/p",
		"é":                      "%C3%A9",
	} {
		if got := werkzeugQuote(in); got != want {
			t.Errorf("werkzeugQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionIdentifier compares with Flask-Login 0.6.3's
// _create_identifier, computed by Python for these inputs.
func TestSessionIdentifier(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "192.0.2.1, 10.0.0.2")
	r.Header.Set("User-Agent", "Mozilla/5.0 'x' é\t")
	if got := sessionIdentifier(r); got != "d3bec652c6421cde8a43b8286bebbda7fa77e67ed62ff04048be9d8a56d072be6ac07b43bda2c4b03ef428e74b6b383da59bf337b4c4ced0bd0ebe1588d499da" {
		t.Errorf("with UA: %s", got)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:5555"
	r.Header.Del("User-Agent")
	if got := sessionIdentifier(r); got != "177a1bd32eaf927180c90b4945cf08912b4d097e17548ad5b9b478660435809857cfb41e67563a59d9678d76b92447d776ccd565f3beb8f3f522e5b39dc7e3c3" {
		t.Errorf("without UA: %s", got)
	}
}

// TestConcurrentUse is for -race: logins, API calls and admin changes at
// once, in both session modes.
func TestConcurrentUse(t *testing.T) {
	for _, serverSide := range []bool{false, true} {
		f := New(Options{SecretKey: key, ServerSideSessions: serverSide})
		shared := login(t, f, "alice", AlicePassword)
		done := make(chan struct{})
		for i := range 8 {
			go func() {
				defer func() { done <- struct{}{} }()
				for j := range 20 {
					switch (i + j) % 4 {
					case 0:
						do(f, "GET", "/api/v1/me/", shared, nil)
					case 1:
						do(f, "GET", "/login/", shared, nil)
					case 2:
						f.SetActive(3, j%2 == 0)
					case 3:
						do(f, "POST", "/login/", shared, strings.NewReader("username=bob&password=x"), "Content-Type", "application/x-www-form-urlencoded")
					}
				}
			}()
		}
		for range 8 {
			<-done
		}
	}
}
