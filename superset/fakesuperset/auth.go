package fakesuperset

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

const spaHTML = `<!DOCTYPE html>
<html>
  <head>
    <title>Superset</title>
    <link rel="icon" href="/static/assets/images/favicon.png">
  </head>
  <body>
    <input type="hidden" name="csrf_token" id="csrf_token" value="{{.CSRF}}">
    <div id="app" data-bootstrap="{{.Bootstrap}}"></div>
    <script src="/static/assets/{{.Entry}}.entry.js"></script>
  </body>
</html>
`

// spa renders Superset's spa.html: the hidden csrf_token input (rendering
// it puts a token into the session) and the bootstrap JSON.
func (f *Fake) spa(st *reqState, entry string, bootstrap map[string]any) resp {
	b, _ := json.Marshal(bootstrap)
	var sb strings.Builder
	_ = f.spaTmpl.Execute(&sb, map[string]any{"CSRF": f.ensureCSRF(st), "Bootstrap": string(b), "Entry": entry})
	if _, ok := st.sess["locale"]; !ok {
		st.set("locale", "en")
	}
	return htmlResp(http.StatusOK, sb.String())
}

// popFlashes is Flask's get_flashed_messages.
func (st *reqState) popFlashes() [][2]string {
	fl := st.sess.Flashes()
	st.del("_flashes")
	return fl
}

func (f *Fake) loginPage(r *http.Request, st *reqState) resp {
	if st.user != nil {
		return noCache(redirect("/"))
	}
	flashes := [][]string{}
	for _, fl := range st.popFlashes() {
		flashes = append(flashes, []string{fl[0], fl[1]})
	}
	return noCache(f.spa(st, "spa", map[string]any{
		"common": map[string]any{
			"conf":             map[string]any{"AUTH_TYPE": 1, "AUTH_PROVIDERS": []any{}},
			"flash_messages":   flashes,
			"application_root": "/",
		},
	}))
}

// loginPost is FAB's AuthDBView.login (POST) behind Flask-WTF's CSRF check.
func (f *Fake) loginPost(r *http.Request, st *reqState) resp {
	next := safeNext(r, r.URL.Query().Get("next"))
	if st.user != nil {
		return noCache(redirect("/"))
	}
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	if username == "" || password == "" {
		// LoginForm_db failed DataRequired: FAB renders its own template.
		return noCache(htmlResp(http.StatusOK, `<!doctype html><title>Login</title><form method="post"><input name="username"><input name="password" type="password"></form>`))
	}
	u := f.authUserDB(username, password, st)
	if u == nil {
		st.set("_flashes", append(flashList(st.sess), flaskcookie.Tuple{"warning", "Invalid login. Please try again."}))
		return noCache(redirect("/login/?next=" + werkzeugQuote(next)))
	}
	st.loginUser(r, u)
	return noCache(redirect(next))
}

func flashList(s flaskcookie.Session) []any {
	l, _ := s["_flashes"].([]any)
	return l
}

// safeNext is FAB's get_safe_redirect: relative URLs and URLs to this host
// are kept, everything else becomes the index.
func safeNext(r *http.Request, next string) string {
	if next == "" || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil {
		return "/"
	}
	if u.Scheme == "" && u.Host == "" {
		if strings.HasPrefix(next, "/") {
			return next
		}
		return "/"
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host {
		return next
	}
	return "/"
}

// authUserDB is FAB's auth_user_db: username or e-mail, active users only;
// counts logins and failures.
func (f *Fake) authUserDB(username, password string, st *reqState) *User {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *User
	for _, u := range f.users {
		if u.Username == username || (u.Email != "" && u.Email == username) {
			found = u
			break
		}
	}
	if found == nil || !found.Active {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(found.Password), []byte(password)) != 1 {
		found.FailLoginCount++
		return nil
	}
	found.LoginCount++
	found.FailLoginCount = 0
	found.LastLogin = st.now.UTC()
	c := *found
	return &c
}

// logout is FAB's AuthView.logout → Flask-Login logout_user: only the
// login keys go; csrf_token and the rest stay, so the cookie is re-issued.
func (f *Fake) logout(r *http.Request, st *reqState) resp {
	st.del("_user_id")
	st.del("_fresh")
	st.del("_id")
	if _, err := r.Cookie("remember_token"); err == nil {
		st.set("_remember", "clear")
	}
	st.user = nil
	return noCache(redirect("/"))
}

func (f *Fake) index(r *http.Request, st *reqState) resp {
	return redirect("/superset/welcome/")
}

func (f *Fake) welcome(r *http.Request, st *reqState) resp {
	if st.user == nil {
		return redirect("/login/?next=" + url.QueryEscape(r.URL.RequestURI()))
	}
	return f.spa(st, "spa", map[string]any{"user": map[string]any{"username": st.user.Username, "userId": st.user.ID}})
}

// embedded is Superset's EmbeddedView: the page signs the browser in as
// the anonymous user (leaving "_user_id": null) and renders the embedded
// entry.
func (f *Fake) embedded(r *http.Request, st *reqState) resp {
	if r.PathValue("uuid") != f.dashboard.EmbedUUID {
		return httpError(r, http.StatusNotFound, notFoundDescription)
	}
	if len(f.opt.AllowedDomains) > 0 && !refererAllowed(r.Header.Get("Referer"), f.opt.AllowedDomains) {
		return httpError(r, http.StatusForbidden, forbiddenDescription)
	}
	// login_user(AnonymousUserMixin(), force=True): get_id() is None,
	// fresh defaults to True.
	st.set("_user_id", nil)
	st.set("_fresh", true)
	st.set("_id", sessionIdentifier(r))
	st.user = nil
	return f.spa(st, "embedded", map[string]any{
		"embedded": map[string]any{"dashboard_id": f.dashboard.ID},
		"config":   map[string]any{"GUEST_TOKEN_HEADER_NAME": "X-GuestToken"},
	})
}

func refererAllowed(ref string, domains []string) bool {
	ru, err := url.Parse(ref)
	if err != nil || ru.Host == "" {
		return false
	}
	for _, d := range domains {
		du, err := url.Parse(d)
		if err == nil && du.Scheme == ru.Scheme && du.Host == ru.Host {
			return true
		}
	}
	return false
}

// apiLogin is FAB SecurityApi.login.
func (f *Fake) apiLogin(r *http.Request, st *reqState) resp {
	if !isJSON(r) {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request payload is not JSON"})
	}
	var raw map[string]any
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || raw == nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request payload is not JSON"})
	}
	// FAB's LoginPost schema (marshmallow: unknown keys are errors).
	errs := map[string]any{}
	str := func(k string, required bool) string {
		v, ok := raw[k]
		if !ok {
			if required {
				errs[k] = []string{"Missing data for required field."}
			}
			return ""
		}
		s, isStr := v.(string)
		switch {
		case v == nil:
			errs[k] = []string{"Field may not be null."}
		case !isStr:
			errs[k] = []string{"Not a valid string."}
		case s == "" && k != "provider":
			errs[k] = []string{"Shorter than minimum length 1."}
		}
		return s
	}
	username, password, provider := str("username", true), str("password", true), str("provider", false)
	if _, ok := raw["provider"]; ok && provider != "db" {
		var pe []string
		if provider != "ldap" {
			pe = append(pe, "Must be one of: db, ldap.")
		}
		errs["provider"] = append(pe, "Alternative authentication provider is not allowed")
	}
	refresh, isBool := raw["refresh"].(bool)
	if _, ok := raw["refresh"]; ok && !isBool {
		errs["refresh"] = []string{"Not a valid boolean."}
	}
	for k := range raw {
		if k != "username" && k != "password" && k != "provider" && k != "refresh" {
			errs[k] = []string{"Unknown field."}
		}
	}
	if len(errs) > 0 {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": errs})
	}
	if _, ok := raw["provider"]; !ok {
		// login_payload["provider"] raises KeyError: 6.1.0 answers 500.
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	u := f.authUserDB(username, password, st)
	if u == nil {
		return jsonResp(http.StatusUnauthorized, map[string]any{"message": "Not authorized"})
	}
	out := map[string]any{}
	access, err := apijwt.Mint([]byte(f.opt.JWTSecret), apijwt.MintOptions{Subject: itoa(u.ID), Type: apijwt.Access, Fresh: true, Now: st.now})
	if err != nil {
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	out["access_token"] = access
	if refresh {
		rt, err := apijwt.Mint([]byte(f.opt.JWTSecret), apijwt.MintOptions{Subject: itoa(u.ID), Type: apijwt.Refresh, Now: st.now})
		if err != nil {
			return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
		}
		out["refresh_token"] = rt
	}
	return jsonResp(http.StatusOK, out)
}

// apiRefresh is FAB SecurityApi.refresh (@jwt_required(refresh=True)).
func (f *Fake) apiRefresh(r *http.Request, st *reqState) resp {
	tok, failure, ok := bearerToken(r)
	if !ok {
		return failure
	}
	c, err := f.jwt.Verify(tok, apijwt.Refresh, st.now)
	if err != nil {
		if apijwt.Reason(err) == "wrong_type" {
			return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Only refresh tokens are allowed"})
		}
		return jwtFailure(err)
	}
	if f.loadUser(c.Subject) == nil {
		return jsonResp(http.StatusUnauthorized, map[string]any{"msg": "Error loading the user " + c.Subject})
	}
	access, err := apijwt.Mint([]byte(f.opt.JWTSecret), apijwt.MintOptions{Subject: c.Subject, Type: apijwt.Access, Fresh: false, Now: st.now})
	if err != nil {
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	return jsonResp(http.StatusOK, map[string]any{"access_token": access})
}

// werkzeugQuote encodes a query value like Werkzeug 3's url_for
// (urllib.parse.urlencode with safe "!$'()*,/:;?@"): the real 6.1.0 sends
// "/login/?next=/" after a failed login, "/" unencoded.
func werkzeugQuote(v string) string {
	const safe = "!$'()*,/:;?@_.-~"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte(safe, c) >= 0:
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
