package conformance

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// cookieMaxAge is Flask's PERMANENT_SESSION_LIFETIME default, the max_age
// Superset applies when it loads a session cookie.
const cookieMaxAge = 31 * 24 * time.Hour

// Run states every protocol fact the gateway relies on as a subtest against
// tg. It mutates only what it creates itself (throw-away users with unique
// names, guest tokens), so it can run repeatedly against one target.
// Facts that differ with server-side sessions are asserted per mode.
func Run(t *testing.T, tg Target) {
	t.Run("Health", func(t *testing.T) { testHealth(t, tg) })
	t.Run("LoginPage", func(t *testing.T) { testLoginPage(t, tg) })
	t.Run("LoginFailure", func(t *testing.T) { testLoginFailure(t, tg) })
	t.Run("LoginWithoutCSRF", func(t *testing.T) { testLoginWithoutCSRF(t, tg) })
	t.Run("LoginSuccess", func(t *testing.T) { testLoginSuccess(t, tg) })
	t.Run("LoginNext", func(t *testing.T) { testLoginNext(t, tg) })
	t.Run("Logout", func(t *testing.T) { testLogout(t, tg) })
	t.Run("APILogin", func(t *testing.T) { testAPILogin(t, tg) })
	t.Run("APIRefresh", func(t *testing.T) { testAPIRefresh(t, tg) })
	t.Run("Me", func(t *testing.T) { testMe(t, tg) })
	t.Run("UserLifecycle", func(t *testing.T) { testUserLifecycle(t, tg) })
	t.Run("GuestToken", func(t *testing.T) { testGuestToken(t, tg) })
	t.Run("Embedded", func(t *testing.T) { testEmbedded(t, tg) })
	t.Run("CSRFWithBearer", func(t *testing.T) { testCSRFWithBearer(t, tg) })
	t.Run("Routing", func(t *testing.T) { testRouting(t, tg) })
	t.Run("BearerHeader", func(t *testing.T) { testBearerHeader(t, tg) })
	t.Run("Permissions", func(t *testing.T) { testPermissions(t, tg) })
	t.Run("APILoginValidation", func(t *testing.T) { testAPILoginValidation(t, tg) })
	t.Run("MeUpdate", func(t *testing.T) { testMeUpdate(t, tg) })
	t.Run("GuestTokenValidation", func(t *testing.T) { testGuestTokenValidation(t, tg) })
	t.Run("GuestAccess", func(t *testing.T) { testGuestAccess(t, tg) })
	t.Run("LegacyUserForms", func(t *testing.T) { testLegacyUserForms(t, tg) })
	t.Run("MasterRoutesAbsent", func(t *testing.T) { testMasterRoutesAbsent(t, tg) })
}

// GET /health → 200 "OK", no authentication.
func testHealth(t *testing.T, tg Target) {
	r := newClient(t, tg).get("/health")
	if r.StatusCode != http.StatusOK || strings.TrimSpace(string(r.body)) != "OK" {
		t.Fatalf("GET /health: %d %q, want 200 OK", r.StatusCode, r.body)
	}
}

// sessionCookie asserts Superset's session cookie attributes and, with
// client-side sessions, decodes it with the gateway's own codec.
func sessionCookie(t *testing.T, tg Target, r *response) (flaskcookie.Session, string) {
	t.Helper()
	ck := r.setCookie("session")
	if ck == nil {
		t.Fatalf("%s %s: no Set-Cookie: session", r.Request.Method, r.Request.URL.Path)
	}
	if !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode || ck.Secure {
		t.Errorf("session cookie attributes: HttpOnly=%v Path=%q SameSite=%v Secure=%v; want HttpOnly, Path=/, SameSite=Lax, not Secure",
			ck.HttpOnly, ck.Path, ck.SameSite, ck.Secure)
	}
	if tg.ServerSideSessions {
		// flask-session: an opaque id, not a signed Flask cookie.
		if _, err := flaskcookie.Decode(ck.Value, tg.SecretKey, cookieMaxAge, time.Now()); err == nil {
			t.Errorf("server-side session cookie decodes as a Flask cookie")
		}
		return nil, ck.Value
	}
	if !ck.Expires.IsZero() || ck.MaxAge != 0 {
		t.Errorf("session cookie has Expires/Max-Age; Superset's sessions are browser-session cookies")
	}
	s, ts, err := flaskcookie.DecodeTimestamp(ck.Value, tg.SecretKey, cookieMaxAge, time.Now())
	if err != nil {
		t.Fatalf("decode session cookie with SECRET_KEY: %v", err)
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Minute {
		t.Errorf("cookie timestamp %s is not now", ts)
	}
	// HMAC-SHA1 under SECRET_KEY: any other key fails the signature.
	if _, err := flaskcookie.Decode(ck.Value, tg.SecretKey+"x", cookieMaxAge, time.Now()); !errors.Is(err, flaskcookie.ErrBadSignature) {
		t.Errorf("decode under a wrong key: %v, want ErrBadSignature", err)
	}
	return s, ck.Value
}

var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

// GET /login/ → 200 HTML with a hidden csrf_token input, no-store, and a
// fresh session cookie holding the raw CSRF token (no user).
func testLoginPage(t *testing.T, tg Target) {
	c := newClient(t, tg)
	r := c.get("/login/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /login/: %d", r.StatusCode)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("Content-Type %q, want text/html", r.Header.Get("Content-Type"))
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	m := csrfInput.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no <input name=csrf_token value=...> in the page")
	}
	s, value := sessionCookie(t, tg, r)
	if s != nil {
		if !hex40.MatchString(s.CSRFToken()) {
			t.Errorf("session csrf_token %q, want 40 hex chars", s.CSRFToken())
		}
		if id, ok := s.UserID(); ok {
			t.Errorf("anonymous session has _user_id %q", id)
		}
		// Short sessions are not worth compressing: no leading '.'.
		if strings.HasPrefix(value, ".") {
			t.Errorf("login-page cookie is compressed")
		}
		// The form value is the signed token (itsdangerous, salt
		// wtf-csrf-token), not the raw one the session holds.
		if string(m[1]) == s.CSRFToken() {
			t.Errorf("form csrf_token equals the raw session token; want the signed form")
		}
	}
}

// POST /login/ with a bad password → 302 back to /login/?next=/, a
// flash in the re-issued session cookie, no user.
func testLoginFailure(t *testing.T, tg Target) {
	c := newClient(t, tg)
	r := c.formLogin(Credentials{Username: tg.Gamma.Username, Password: "wrong-" + tg.Gamma.Password}, "")
	if r.StatusCode != http.StatusFound {
		t.Fatalf("POST /login/ bad password: %d, want 302", r.StatusCode)
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || loc.Path != "/login/" || loc.Query().Get("next") != "/" {
		t.Errorf("Location %q, want /login/?next=/", r.Header.Get("Location"))
	}
	s, _ := sessionCookie(t, tg, r)
	if s != nil {
		if id, ok := s.UserID(); ok {
			t.Errorf("failed login left _user_id %q", id)
		}
		if f := s.Flashes(); len(f) == 0 || f[0][0] != "warning" {
			t.Errorf("flashes %v, want a warning", f)
		}
	}
	if me := c.get("/api/v1/me/"); me.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/v1/me/ after failed login: %d, want 401", me.StatusCode)
	}
}

// POST /login/ without csrf_token → 302 to /login/?next=/login/ and no
// login, even with the right password.
func testLoginWithoutCSRF(t *testing.T, tg Target) {
	c := newClient(t, tg)
	c.loginPage()
	r := c.do(http.MethodPost, "/login/", url.Values{"username": {tg.Gamma.Username}, "password": {tg.Gamma.Password}})
	if r.StatusCode != http.StatusFound {
		t.Fatalf("POST /login/ without csrf_token: %d, want 302", r.StatusCode)
	}
	if loc, err := url.Parse(r.Header.Get("Location")); err != nil || loc.Path != "/login/" {
		t.Errorf("Location %q, want /login/?next=...", r.Header.Get("Location"))
	}
	if me := c.get("/api/v1/me/"); me.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/v1/me/ after CSRF-less login: %d, want 401", me.StatusCode)
	}
}

// userID returns the user id /api/v1/me/ reports for the client's cookie.
func userID(t *testing.T, c *client, opts ...reqOpt) string {
	t.Helper()
	r := c.get("/api/v1/me/", opts...)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me/: %d %.200s", r.StatusCode, r.body)
	}
	res, _ := r.json(t)["result"].(map[string]any)
	id, _ := res["id"].(json.Number)
	if id == "" {
		t.Fatalf("/api/v1/me/: no numeric result.id: %s", r.body)
	}
	return id.String()
}

// POST /login/ success → 302 to / (index), a new session cookie whose
// _user_id (a string) is the user's id and whose pre-login csrf_token
// survives: Superset does not regenerate the session.
func testLoginSuccess(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tok := c.loginPage()
	pre := c.cookies["session"]
	r := c.do(http.MethodPost, "/login/", url.Values{
		"username": {tg.Admin.Username}, "password": {tg.Admin.Password}, "csrf_token": {tok},
	})
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/" {
		t.Fatalf("POST /login/: %d Location %q, want 302 /", r.StatusCode, r.Header.Get("Location"))
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("Cache-Control %q, want no-store", r.Header.Get("Cache-Control"))
	}
	s, value := sessionCookie(t, tg, r)
	id := userID(t, c)
	if s == nil {
		// Server-side: the session id is not rotated on login.
		if value != pre {
			t.Logf("server-side session id changed on login (was the same on 6.1.0)")
		}
		return
	}
	if !strings.HasPrefix(value, ".") {
		t.Errorf("logged-in cookie is not compressed (no leading '.')")
	}
	if _, isString := s["_user_id"].(string); !isString {
		t.Errorf("_user_id is %T, want a string", s["_user_id"])
	}
	if got, _ := s.UserID(); got != id {
		t.Errorf("_user_id %q, want %q", got, id)
	}
	if fresh, _ := s["_fresh"].(bool); !fresh {
		t.Errorf("_fresh = %v, want true", s["_fresh"])
	}
	preS, err := flaskcookie.Decode(pre, tg.SecretKey, cookieMaxAge, time.Now())
	if err != nil {
		t.Fatalf("decode pre-login cookie: %v", err)
	}
	if preS.CSRFToken() == "" || preS.CSRFToken() != s.CSRFToken() {
		t.Errorf("csrf_token changed across login (%q → %q); Superset keeps the session", preS.CSRFToken(), s.CSRFToken())
	}
	// An authenticated GET /login/ redirects to the index.
	if r := c.get("/login/"); r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/" {
		t.Errorf("GET /login/ when signed in: %d %q, want 302 /", r.StatusCode, r.Header.Get("Location"))
	}
	if r := c.get("/"); r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/superset/welcome/" {
		t.Errorf("GET / when signed in: %d %q, want 302 /superset/welcome/", r.StatusCode, r.Header.Get("Location"))
	}
}

// A safe next (relative, or absolute on the request's own host) is
// followed after login; another host is replaced by /.
func testLoginNext(t *testing.T, tg Target) {
	for _, tc := range []struct{ next, want string }{
		{"/superset/welcome/", "/superset/welcome/"},
		{"http://evil.example/", "/"},
	} {
		r := newClient(t, tg).formLogin(tg.Alpha, tc.next)
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != tc.want {
			t.Errorf("login with next=%q: %d Location %q, want 302 %q", tc.next, r.StatusCode, r.Header.Get("Location"), tc.want)
		}
	}
}

// GET /logout/ → 302 /, the cookie re-issued without the user (not
// deleted). A copy of the pre-logout client-side cookie still
// authenticates: the gap the gateway closes.
func testLogout(t *testing.T, tg Target) {
	c := newClient(t, tg)
	c.mustFormLogin(tg.Gamma)
	id := userID(t, c)
	pre := c.cookies["session"]
	r := c.get("/logout/")
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/" {
		t.Errorf("GET /logout/: %d %q, want 302 /", r.StatusCode, r.Header.Get("Location"))
	}
	if s, _ := sessionCookie(t, tg, r); s != nil {
		if uid, ok := s.UserID(); ok {
			t.Errorf("post-logout cookie still has _user_id %q", uid)
		}
		if s.CSRFToken() == "" {
			t.Errorf("post-logout cookie lost csrf_token; Superset only pops the login keys")
		}
	}
	if me := c.get("/api/v1/me/"); me.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/v1/me/ after logout: %d, want 401", me.StatusCode)
	}
	replay := newClient(t, tg)
	replay.cookies["session"] = pre
	me := replay.get("/api/v1/me/")
	if tg.ServerSideSessions {
		// The server-side record was logged out under the same id.
		if me.StatusCode != http.StatusUnauthorized {
			t.Errorf("pre-logout server-side session id: %d, want 401", me.StatusCode)
		}
		return
	}
	if me.StatusCode != http.StatusOK || userID(t, replay) != id {
		t.Errorf("pre-logout cookie after logout: %d, want 200 as the user (Superset cannot revoke it)", me.StatusCode)
	}
}

// POST /api/v1/security/login → 200 {access_token, refresh_token}: HS256
// JWTs under the JWT secret, sub = user id as a string, integer iat/nbf/exp,
// access 15 min, refresh 30 days, uuid jti, type and fresh.
func testAPILogin(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, true)
	if tk.Refresh == "" {
		t.Fatalf("refresh: true gave no refresh_token")
	}
	id := userID(t, newClient(t, tg), bearer(tk.Access))
	v := apijwt.Verifier{Key: []byte(tg.JWTSecret)}
	for _, tc := range []struct {
		tok   string
		typ   apijwt.Type
		fresh bool
		ttl   time.Duration
	}{
		{tk.Access, apijwt.Access, true, 15 * time.Minute},
		{tk.Refresh, apijwt.Refresh, false, 30 * 24 * time.Hour},
	} {
		hdr, raw := jwtParts(t, tc.tok)
		if hdr["alg"] != "HS256" || hdr["typ"] != "JWT" || len(hdr) != 2 {
			t.Errorf("%s header %v, want exactly alg HS256, typ JWT", tc.typ, hdr)
		}
		if _, ok := raw["sub"].(string); !ok {
			t.Errorf("%s sub is %T, want string", tc.typ, raw["sub"])
		}
		for _, k := range []string{"iat", "nbf", "exp"} {
			n, ok := raw[k].(json.Number)
			if !ok || strings.ContainsAny(n.String(), ".eE") {
				t.Errorf("%s %s = %v, want an integer", tc.typ, k, raw[k])
			}
		}
		for _, k := range []string{"jti", "csrf"} {
			if s, _ := raw[k].(string); len(s) != 36 {
				t.Errorf("%s %s = %v, want a uuid string", tc.typ, k, raw[k])
			}
		}
		for _, k := range []string{"aud", "iss"} {
			if _, ok := raw[k]; ok {
				t.Errorf("%s has %s; Superset sets none", tc.typ, k)
			}
		}
		cl, err := v.Verify(tc.tok, tc.typ, time.Now())
		if err != nil {
			t.Fatalf("verify %s token with the gateway's verifier: %v", tc.typ, err)
		}
		if cl.Subject != id || cl.Type != tc.typ || cl.Fresh != tc.fresh {
			t.Errorf("%s claims sub=%q type=%q fresh=%v, want %q %q %v", tc.typ, cl.Subject, cl.Type, cl.Fresh, id, tc.typ, tc.fresh)
		}
		if got := cl.ExpiresAt.Sub(cl.IssuedAt); got != tc.ttl {
			t.Errorf("%s lifetime %s, want %s", tc.typ, got, tc.ttl)
		}
		if _, err := (apijwt.Verifier{Key: []byte(tg.JWTSecret + "x")}).Verify(tc.tok, tc.typ, time.Now()); !errors.Is(err, apijwt.ErrBadSignature) {
			t.Errorf("verify under a wrong key: %v, want ErrBadSignature", err)
		}
	}
	// Without refresh: only an access token.
	if _, tk2 := c.apiLogin(tg.Admin, false); tk2.Access == "" || tk2.Refresh != "" {
		t.Errorf("refresh: false gave access=%v refresh=%v", tk2.Access != "", tk2.Refresh != "")
	}
	// Bad credentials → 401 {"message": "Not authorized"}; no CSRF needed.
	r, _ := c.apiLogin(Credentials{Username: tg.Admin.Username, Password: "wrong"}, false)
	if r.StatusCode != http.StatusUnauthorized || r.json(t)["message"] != "Not authorized" {
		t.Errorf("bad password: %d %s, want 401 Not authorized", r.StatusCode, r.body)
	}
	// A non-JSON body → 400.
	if r := c.do(http.MethodPost, "/api/v1/security/login", url.Values{"username": {"x"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("form-encoded login: %d, want 400", r.StatusCode)
	}
}

// POST /api/v1/security/refresh with the refresh token → 200
// {access_token} (fresh false); with an access token → 422.
func testAPIRefresh(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Alpha, true)
	r := c.do(http.MethodPost, "/api/v1/security/refresh", nil, bearer(tk.Refresh))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.StatusCode, r.body)
	}
	body := r.json(t)
	at, _ := body["access_token"].(string)
	if at == "" || len(body) != 1 {
		t.Fatalf("refresh body %s, want only access_token", r.body)
	}
	cl, err := (apijwt.Verifier{Key: []byte(tg.JWTSecret)}).Verify(at, apijwt.Access, time.Now())
	if err != nil {
		t.Fatalf("verify refreshed token: %v", err)
	}
	if cl.Fresh {
		t.Errorf("refreshed access token is fresh")
	}
	if userID(t, newClient(t, tg), bearer(at)) != cl.Subject {
		t.Errorf("refreshed token's sub is not its user")
	}
	r = c.do(http.MethodPost, "/api/v1/security/refresh", nil, bearer(tk.Access))
	if r.StatusCode != http.StatusUnprocessableEntity || r.json(t)["msg"] != "Only refresh tokens are allowed" {
		t.Errorf("refresh with an access token: %d %s, want 422", r.StatusCode, r.body)
	}
}

// guestToken asks for a guest token for the fixture dashboard's embed uuid.
func guestToken(t *testing.T, tg Target, username string) string {
	t.Helper()
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, false)
	csrf := c.csrfToken(bearer(tk.Access))
	r := c.do(http.MethodPost, "/api/v1/security/guest_token/", map[string]any{
		"user":      map[string]string{"username": username, "first_name": "Guest", "last_name": "User"},
		"resources": []map[string]string{{"type": "dashboard", "id": tg.EmbedUUID}},
		"rls":       []any{},
	}, bearer(tk.Access), header("X-CSRFToken", csrf), header("Referer", tg.BaseURL+"/"))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("guest_token: %d %.300s", r.StatusCode, r.body)
	}
	tok, _ := r.json(t)["token"].(string)
	if tok == "" {
		t.Fatalf("guest_token: no token: %s", r.body)
	}
	return tok
}

// GET /api/v1/me/ and /api/v1/me/roles/ answer 200 for a session cookie,
// a Bearer JWT (6.1.0 added @protect) and a guest token; 401 anonymous.
func testMe(t *testing.T, tg Target) {
	cookie := newClient(t, tg)
	cookie.mustFormLogin(tg.Alpha)
	tk := newClient(t, tg).mustAPILogin(tg.Alpha, false)
	guest := guestToken(t, tg, "me-guest")
	for _, tc := range []struct {
		name string
		c    *client
		opts []reqOpt
		user string // "" → anonymous, 401
		id   bool
	}{
		{"cookie", cookie, nil, tg.Alpha.Username, true},
		{"bearer", newClient(t, tg), []reqOpt{bearer(tk.Access)}, tg.Alpha.Username, true},
		{"guest", newClient(t, tg), []reqOpt{header("X-GuestToken", guest)}, "me-guest", false},
		{"anonymous", newClient(t, tg), nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.c.get("/api/v1/me/", tc.opts...)
			rr := tc.c.get("/api/v1/me/roles/", tc.opts...)
			if tc.user == "" {
				for _, x := range []*response{r, rr} {
					if x.StatusCode != http.StatusUnauthorized || x.json(t)["msg"] != "Missing Authorization Header" {
						t.Errorf("%s anonymous: %d %s, want 401 Missing Authorization Header", x.Request.URL.Path, x.StatusCode, x.body)
					}
				}
				return
			}
			if r.StatusCode != http.StatusOK || rr.StatusCode != http.StatusOK {
				t.Fatalf("me %d, me/roles %d; want 200 both", r.StatusCode, rr.StatusCode)
			}
			res, _ := r.json(t)["result"].(map[string]any)
			if res["username"] != tc.user || res["is_anonymous"] != false {
				t.Errorf("me result %v, want username %q not anonymous", res, tc.user)
			}
			if _, has := res["id"]; has != tc.id {
				t.Errorf("me result has id = %v, want %v", has, tc.id)
			}
			roles, _ := rr.json(t)["result"].(map[string]any)
			if _, ok := roles["roles"].(map[string]any); !ok {
				t.Errorf("me/roles result has no roles object: %v", roles)
			}
			if _, has := roles["userId"]; has != tc.id {
				t.Errorf("me/roles result has userId = %v, want %v", has, tc.id)
			}
		})
	}
}

// The admin user API (FAB, CSRF-exempt): create, PUT password and active,
// DELETE; a password change cuts nothing; a disabled or deleted user's
// cookie and JWTs are refused by Superset itself on their next request.
func testUserLifecycle(t *testing.T, tg Target) {
	admin := newClient(t, tg)
	at := admin.mustAPILogin(tg.Admin, false).Access
	gamma := roleID(t, admin, at, "Gamma")
	pk, cr := createUser(t, admin, at, gamma)
	usersPath := "/api/v1/security/users/" + pk

	user := newClient(t, tg)
	user.mustFormLogin(cr)
	tk := newClient(t, tg).mustAPILogin(cr, true)
	if got := userID(t, user); got != pk {
		t.Fatalf("new user's /me id %s, want %s", got, pk)
	}

	// PUT password → 200 echoing the input; existing credentials still work.
	r := admin.do(http.MethodPut, usersPath, map[string]any{"password": cr.Password + "2"}, bearer(at))
	if r.StatusCode != http.StatusOK || string(compactJSON(t, r.body)) != `{"result":{"password":"`+cr.Password+`2"}}` {
		t.Errorf("PUT password: %d %s, want 200 {result:{password}}", r.StatusCode, r.body)
	}
	if s := user.get("/api/v1/me/").StatusCode; s != http.StatusOK {
		t.Errorf("cookie after password change: %d, want 200 (Superset invalidates nothing)", s)
	}
	if s := newClient(t, tg).get("/api/v1/me/", bearer(tk.Access)).StatusCode; s != http.StatusOK {
		t.Errorf("JWT after password change: %d, want 200", s)
	}

	// PUT roles: an empty list is refused (400, FAB's message verbatim, its
	// source's line-continuation spaces included), an unknown role id
	// crashes (500); either way the user keeps its roles.
	r = admin.do(http.MethodPut, usersPath, map[string]any{"roles": []int{}}, bearer(at))
	wantJSON(t, r, http.StatusBadRequest, `{"message":"Cannot clear all roles unless at least one group is                              assigned!"}`)
	r = admin.do(http.MethodPut, usersPath, map[string]any{"roles": []int{999999}}, bearer(at))
	wantJSON(t, r, http.StatusInternalServerError, `{"message":"Fatal error"}`)
	if u := getUser(t, admin, at, pk); !hasOnlyRole(u, gamma, "Gamma") {
		t.Errorf("roles after refused PUTs: %v, want only Gamma (%d)", u["roles"], gamma)
	}

	// PUT active=false → 200 {"result":{"active":false}}.
	r = admin.do(http.MethodPut, usersPath, map[string]any{"active": false}, bearer(at))
	if r.StatusCode != http.StatusOK || string(compactJSON(t, r.body)) != `{"result":{"active":false}}` {
		t.Errorf("PUT active=false: %d %s, want 200 {result:{active:false}}", r.StatusCode, r.body)
	}
	disabled := func(when string) {
		t.Helper()
		if r := user.get("/api/v1/me/"); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: cookie /me: %d, want 401", when, r.StatusCode)
		}
		want := "Error loading the user " + pk
		if r := newClient(t, tg).get("/api/v1/me/", bearer(tk.Access)); r.StatusCode != http.StatusUnauthorized || r.json(t)["msg"] != want {
			t.Errorf("%s: access JWT: %d %s, want 401 %q", when, r.StatusCode, r.body, want)
		}
		if r := newClient(t, tg).do(http.MethodPost, "/api/v1/security/refresh", nil, bearer(tk.Refresh)); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: refresh JWT: %d %s, want 401", when, r.StatusCode, r.body)
		}
		cr2 := Credentials{Username: cr.Username, Password: cr.Password + "2"}
		if r, _ := newClient(t, tg).apiLogin(cr2, false); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: API login: %d, want 401", when, r.StatusCode)
		}
		if r := newClient(t, tg).formLogin(cr2, ""); !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
			t.Errorf("%s: form login: %d %q, want 302 /login/...", when, r.StatusCode, r.Header.Get("Location"))
		}
	}
	disabled("disabled")

	// DELETE → 200 {"message":"OK"}; again → 404 {"message":"Not found"}.
	r = admin.do(http.MethodDelete, usersPath, nil, bearer(at))
	if r.StatusCode != http.StatusOK || r.json(t)["message"] != "OK" {
		t.Errorf("DELETE user: %d %s, want 200 OK", r.StatusCode, r.body)
	}
	disabled("deleted")
	r = admin.do(http.MethodDelete, usersPath, nil, bearer(at))
	if r.StatusCode != http.StatusNotFound || r.json(t)["message"] != "Not found" {
		t.Errorf("DELETE deleted user: %d %s, want 404 Not found", r.StatusCode, r.body)
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

// POST /api/v1/security/guest_token/ needs X-CSRFToken (even with a
// Bearer); the token: HS256 under GUEST_TOKEN_JWT_SECRET, float iat and
// exp (300 s), aud, type "guest", the user, resources and rls_rules as
// sent, nothing else.
func testGuestToken(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, false)
	body := map[string]any{
		"user":      map[string]string{"username": "g1", "first_name": "G", "last_name": "One"},
		"resources": []map[string]string{{"type": "dashboard", "id": tg.EmbedUUID}},
		"rls":       []map[string]any{{"clause": "1 = 1"}},
	}
	r := c.do(http.MethodPost, "/api/v1/security/guest_token/", body, bearer(tk.Access))
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), "CSRF") {
		t.Errorf("guest_token without X-CSRFToken: %d %.200s, want 400 (CSRF)", r.StatusCode, r.body)
	}
	tok := guestToken(t, tg, "g1")
	hdr, raw := jwtParts(t, tok)
	if hdr["alg"] != "HS256" || hdr["typ"] != "JWT" {
		t.Errorf("guest header %v, want HS256 JWT", hdr)
	}
	keys := []string{}
	for k := range raw {
		keys = append(keys, k)
	}
	for _, k := range []string{"user", "resources", "rls_rules", "iat", "exp", "aud", "type"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("guest token lacks %s (has %v)", k, keys)
		}
	}
	if len(raw) != 7 {
		t.Errorf("guest token claims %v, want exactly user resources rls_rules iat exp aud type", keys)
	}
	for _, k := range []string{"iat", "exp"} {
		if n, _ := raw[k].(json.Number); !strings.Contains(n.String(), ".") {
			t.Errorf("guest %s = %v, want a float with a fraction", k, raw[k])
		}
	}
	if raw["type"] != "guest" || raw["aud"] != tg.GuestAudience {
		t.Errorf("guest type=%v aud=%v, want guest %q", raw["type"], raw["aud"], tg.GuestAudience)
	}
	cl, err := (guestjwt.Verifier{Key: []byte(tg.GuestSecret), Audience: tg.GuestAudience}).Verify(tok, time.Now())
	if err != nil {
		t.Fatalf("verify guest token with the gateway's verifier: %v", err)
	}
	if len(cl.Resources) != 1 || cl.Resources[0].Type != "dashboard" || cl.Resources[0].ID != tg.EmbedUUID {
		t.Errorf("resources %+v, want the embed uuid", cl.Resources)
	}
	if d := cl.ExpiresAt.Sub(cl.IssuedAt); d < 299*time.Second || d > 301*time.Second {
		t.Errorf("guest lifetime %s, want 300s", d)
	}
	if cl.User.Username != "g1" {
		t.Errorf("user %+v", cl.User)
	}
	// An unknown dashboard → 400.
	csrf := c.csrfToken(bearer(tk.Access))
	body["resources"] = []map[string]string{{"type": "dashboard", "id": "987654"}}
	r = c.do(http.MethodPost, "/api/v1/security/guest_token/", body, bearer(tk.Access), header("X-CSRFToken", csrf), header("Referer", tg.BaseURL+"/"))
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("guest_token for an unknown dashboard: %d, want 400", r.StatusCode)
	}
}

// GET /embedded/<uuid> → 200 HTML (404 for an unknown uuid), and an API
// call with X-GuestToken reaches the dashboard by its numeric id.
func testEmbedded(t *testing.T, tg Target) {
	c := newClient(t, tg)
	r := c.get("/embedded/" + tg.EmbedUUID)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /embedded/<uuid>: %d %q, want 200 HTML", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if !tg.ServerSideSessions {
		// The embedded view logs in an anonymous user: _user_id null.
		if s, _ := sessionCookie(t, tg, r); s != nil {
			if v, has := s["_user_id"]; !has || v != nil {
				t.Errorf("embedded session _user_id = %v (present %v), want null", v, has)
			}
		}
	}
	if r := c.get("/embedded/00000000-0000-4000-8000-000000000000"); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /embedded/<unknown uuid>: %d, want 404", r.StatusCode)
	}

	guest := guestToken(t, tg, "embed-guest")
	path := fmt.Sprintf("/api/v1/dashboard/%d", tg.DashboardID)
	r = newClient(t, tg).get(path, header("X-GuestToken", guest))
	if r.StatusCode != http.StatusOK {
		t.Errorf("GET %s with X-GuestToken: %d %.200s, want 200", path, r.StatusCode, r.body)
	}
	if r := newClient(t, tg).get(path); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s anonymous: %d, want 401", path, r.StatusCode)
	}
	// A guest token under another key is ignored: anonymous, 401.
	forged, err := guestjwt.Mint([]byte(tg.GuestSecret+"x"), guestjwt.MintOptions{
		User:      guestjwt.User{Username: "forged"},
		Resources: []guestjwt.Resource{{Type: "dashboard", ID: tg.EmbedUUID}},
		Audience:  tg.GuestAudience,
		Now:       time.Now(),
		TTL:       5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := newClient(t, tg).get(path, header("X-GuestToken", forged)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET %s with a forged guest token: %d, want 401", path, r.StatusCode)
	}
}

// With a Bearer JWT, Superset's own write APIs still need X-CSRFToken
// (400 without it), FAB's security APIs do not; /api/v1/security/login
// never does, and the CSRF-token endpoint itself needs authentication.
func testCSRFWithBearer(t *testing.T, tg Target) {
	c := newClient(t, tg)
	tk := c.mustAPILogin(tg.Admin, false)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/dashboard/", map[string]any{"dashboard_title": "csrf probe"}},
		{http.MethodPut, "/api/v1/me/", map[string]any{"first_name": "Ada"}},
		{http.MethodPost, "/api/v1/security/guest_token/", map[string]any{"user": map[string]any{}, "resources": []any{}, "rls": []any{}}},
	} {
		r := newClient(t, tg).do(tc.method, tc.path, tc.body, bearer(tk.Access))
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), "CSRF token is missing") {
			t.Errorf("%s %s with Bearer, no X-CSRFToken: %d %.200s, want 400 CSRF token is missing", tc.method, tc.path, r.StatusCode, r.body)
		}
	}
	if r := newClient(t, tg).get("/api/v1/security/csrf_token/"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("csrf_token anonymous: %d, want 401", r.StatusCode)
	}
}
