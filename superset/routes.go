package superset

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// Request classes returned by ClassifyPath. They are stable metric labels.
const (
	ClassStatic     = "static"
	ClassHealth     = "health"
	ClassLogin      = "login"
	ClassLogout     = "logout"
	ClassAPILogin   = "api_login"
	ClassGuestToken = "guest_token"
	ClassUserAdmin  = "user_admin"
	ClassEmbedded   = "embedded"
	ClassChartData  = "chart_data"
	ClassSQLLab     = "sqllab"
	ClassAPI        = "api"
	ClassPage       = "page"
)

// Classify is ClassifyPath on the request's decoded path (what Flask routes
// on: gunicorn hands Flask the percent-decoded PATH_INFO).
func Classify(r *http.Request) string { return ClassifyPath(r.Method, r.URL.Path) }

// ClassifyPath returns the class of a request. It never fails: anything it
// does not recognise is ClassPage. Matching is case-sensitive like Flask's
// router; a trailing slash is optional everywhere (Werkzeug redirects the
// other form, so the class must not depend on it); paths with empty or dot
// segments are cleaned first, so "//api/v1/security/login" or
// "/static/../api/v1/me/" cannot masquerade as a cheaper class. Clean paths
// are classified without allocating.
func ClassifyPath(method, p string) string {
	p = canonical(p)
	switch {
	case strings.HasPrefix(p, "/static/"):
		return ClassStatic
	case strings.HasPrefix(p, "/api/"):
		return classifyAPI(method, p)
	case strings.HasPrefix(p, "/embedded/"):
		return ClassEmbedded
	}
	switch trimSlash(p) {
	case "/health", "/healthcheck", "/ping":
		return ClassHealth
	case "/logout":
		return ClassLogout
	case "/login":
		return ClassLogin
	case "/resetmypassword/form", "/resetpassword/form":
		return ClassUserAdmin
	}
	if _, ok := oneSegment(p, "/login/"); ok {
		return ClassLogin
	}
	if _, ok := oneSegment(p, "/oauth-authorized/"); ok {
		return ClassLogin
	}
	if strings.HasPrefix(p, "/users/edit/") || strings.HasPrefix(p, "/users/delete/") {
		return ClassUserAdmin
	}
	return ClassPage
}

func classifyAPI(method, p string) string {
	t := trimSlash(p)
	switch t {
	case "/api/v1/security/login", "/api/v1/security/refresh":
		return ClassAPILogin
	case "/api/v1/security/guest_token":
		if method == http.MethodPost {
			return ClassGuestToken
		}
		return ClassAPI
	case "/api/v1/security/users", "/api/v1/me":
		return ClassUserAdmin
	case "/api/v1/chart/data":
		return ClassChartData
	case "/api/v1/sqllab":
		return ClassSQLLab
	}
	switch {
	case strings.HasPrefix(t, "/api/v1/security/users/"), strings.HasPrefix(t, "/api/v1/me/"):
		return ClassUserAdmin
	case strings.HasPrefix(t, "/api/v1/sqllab/"):
		return ClassSQLLab
	case strings.HasPrefix(t, "/api/v1/chart/data/"):
		return ClassChartData // /api/v1/chart/data/<cache_key>
	case strings.HasPrefix(t, "/api/v1/chart/") && strings.HasSuffix(t, "/data"):
		if _, ok := oneSegment(t[:len(t)-len("/data")], "/api/v1/chart/"); ok {
			return ClassChartData
		}
	}
	return ClassAPI
}

// LoginMethod reports whether a request is one of FAB's browser sign-in
// routes, and names the method a sign-in seen in its answer used:
//
//   - "form": POST /login/ (AUTH_DB and AUTH_LDAP);
//   - "remote_user": GET or HEAD /login/ (FAB's AuthRemoteUserView signs in
//     whoever REMOTE_USER names there; Superset's own React login view,
//     registered instead unless register_superset_auth_view is off, never
//     signs anyone in on a GET, so a sign-in seen there is REMOTE_USER);
//   - "oauth:<provider>": the GET /oauth-authorized/<provider> callback (a
//     provider name that is not a plain identifier is reported as "oauth").
//
// API logins (ClassAPILogin) issue JWTs and do not count; /login/<provider>
// only sends the browser to the provider. A route is no proof: a sign-in
// is recognised by its outcome (the session vault asks who the session is
// whenever Superset's session cookie says it may have changed), and one
// seen on any other request is named MethodOther.
func LoginMethod(method, p string) (string, bool) {
	p = canonical(p)
	switch method {
	case http.MethodPost:
		if trimSlash(p) == "/login" {
			return "form", true
		}
	case http.MethodGet, http.MethodHead:
		if trimSlash(p) == "/login" {
			return "remote_user", true
		}
		if prov, ok := oneSegment(p, "/oauth-authorized/"); ok {
			if !identifier(prov) {
				return "oauth", true
			}
			return "oauth:" + prov, true
		}
	}
	return "", false
}

// MethodOther names a sign-in seen in the answer to a request that is no
// sign-in route (LoginMethod): a custom view, or a request Superset routed
// differently from how it looks.
const MethodOther = "other"

// identifier reports a short name of letters, digits, '_', '-' and '.',
// safe to carry into audit events and pages as it is.
func identifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// IsLogin is LoginMethod without the method name.
func IsLogin(method, p string) bool {
	_, ok := LoginMethod(method, p)
	return ok
}

// IsLogout reports whether the request is FAB's logout (GET /logout/; HEAD
// runs the same view in Flask). Other methods get 405 from Superset.
func IsLogout(method, p string) bool {
	return (method == http.MethodGet || method == http.MethodHead) && trimSlash(canonical(p)) == "/logout"
}

// UserAdminKind names a user-administration request that can end a user's
// right to their existing credentials.
type UserAdminKind int

// User administration kinds recognised by UserAdminAction.
const (
	UserAdminNone UserAdminKind = iota
	// UserUpdate: PUT /api/v1/security/users/<pk> (JSON may hold "active",
	// "password", "roles", …; the caller inspects the body).
	UserUpdate
	// UserDelete: DELETE /api/v1/security/users/<pk>.
	UserDelete
	// MeUpdate: PUT /api/v1/me/ (the caller's own name or password).
	MeUpdate
	// LegacyUserEdit: POST /users/edit/<pk> (FAB MVC form).
	LegacyUserEdit
	// LegacyUserDelete: GET or POST /users/delete/<pk> (FAB MVC).
	LegacyUserDelete
	// ResetPassword: POST /resetpassword/form?pk=<pk> (admin sets a password).
	ResetPassword
	// ResetMyPassword: POST /resetmypassword/form (the caller's password).
	ResetMyPassword
	// UserSessions: DELETE /api/v1/security/users/<pk>/sessions, an admin
	// ending a user's sessions (Superset master, unreleased; 6.1.0 has
	// no such route and answers 404).
	UserSessions
	// MePassword: PUT /api/v1/me/password, the caller's own password with
	// current_password and new_password (a later Superset master,
	// unreleased; 6.1.0 answers 404).
	MePassword
)

// String returns a metric-label form of k.
func (k UserAdminKind) String() string {
	names := [...]string{"none", "user_update", "user_delete", "me_update", "legacy_user_edit", "legacy_user_delete", "reset_password", "reset_my_password", "user_sessions", "me_password"}
	if k >= 0 && int(k) < len(names) {
		return names[k]
	}
	return "unknown"
}

// UserAdminAction recognises requests that change or remove a user. pk is
// the target user's id from the path (decimal digits only, else the request
// is not recognised); it is "" for MeUpdate and ResetMyPassword (the caller)
// and for ResetPassword, whose pk travels in the query (use
// UserAdminActionURL).
func UserAdminAction(method, p string) (pk string, kind UserAdminKind) {
	p = canonical(p)
	t := trimSlash(p)
	switch method {
	case http.MethodPut:
		if t == "/api/v1/me" {
			return "", MeUpdate
		}
		if t == "/api/v1/me/password" {
			return "", MePassword
		}
		if id, ok := oneSegment(t, "/api/v1/security/users/"); ok && digits(id) {
			return id, UserUpdate
		}
	case http.MethodDelete:
		if id, ok := oneSegment(t, "/api/v1/security/users/"); ok && digits(id) {
			return id, UserDelete
		}
		if id, ok := UserSessionsTarget(t); ok && digits(id) {
			return id, UserSessions
		}
	case http.MethodPost, http.MethodGet:
		if id, ok := oneSegment(t, "/users/delete/"); ok && digits(id) {
			return id, LegacyUserDelete
		}
		if method == http.MethodGet {
			break
		}
		if id, ok := oneSegment(t, "/users/edit/"); ok && digits(id) {
			return id, LegacyUserEdit
		}
		switch t {
		case "/resetpassword/form":
			return "", ResetPassword
		case "/resetmypassword/form":
			return "", ResetMyPassword
		}
	}
	return "", UserAdminNone
}

// UserSessionsTarget reports whether p is /api/v1/security/users/<seg>/sessions
// (an optional trailing slash allowed) and returns seg, whatever it holds.
func UserSessionsTarget(p string) (string, bool) {
	rest, ok := strings.CutSuffix(trimSlash(canonical(p)), "/sessions")
	if !ok {
		return "", false
	}
	return oneSegment(rest, "/api/v1/security/users/")
}

// UserAdminActionURL is UserAdminAction that also reads ResetPassword's pk
// from the query string. A ResetPassword without a numeric pk is not
// recognised (FAB would not know whose password to set either).
func UserAdminActionURL(method string, u *url.URL) (string, UserAdminKind) {
	pk, kind := UserAdminAction(method, u.Path)
	if kind == ResetPassword {
		pk = u.Query().Get("pk")
		if !digits(pk) {
			return "", UserAdminNone
		}
	}
	return pk, kind
}

// canonical cleans a path only when it needs it, so the common case does
// not allocate.
func canonical(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] == '/' && !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func trimSlash(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// oneSegment reports whether p is prefix followed by exactly one non-empty
// segment (and an optional trailing slash), and returns that segment.
func oneSegment(p, prefix string) (string, bool) {
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	rest := trimSlash(p[len(prefix):])
	if rest == "" || rest == "/" || strings.IndexByte(rest, '/') >= 0 {
		return "", false
	}
	return rest, true
}

func digits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CanonicalPath is p with empty and dot segments cleaned as Werkzeug would
// route it (a trailing slash kept): what ClassifyPath matches on.
func CanonicalPath(p string) string { return canonical(p) }
