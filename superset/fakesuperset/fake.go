// Package fakesuperset is an in-process fake of Apache Superset 6.1's
// authentication surface, for tests of the gateway that do not need the
// real Superset: browser login and logout with a real Flask session cookie
// (or flask-session style server-side sessions), Flask-WTF CSRF, API JWT
// login and refresh, who-am-I, the users and roles APIs, the legacy FAB
// user forms, guest tokens and the embedded page, one dashboard, /health
// and a static asset.
//
// It follows docs/superset-6.1.md (what the live 6.1.0 was seen to do),
// then the 6.1.0 sources (Superset, Flask-AppBuilder 5.0.2, Flask-Login
// 0.6.3, flask-jwt-extended 4.7.1, flask-session 0.8.0), then
// ../shared/superset-protocol.md. It is held to the live behaviour by the
// shared conformance suite (superset/conformance), run here in both session
// modes and in e2e against the real 6.1.0: besides the login, JWT, guest
// and user-lifecycle facts, it pins permission denials, validation
// messages, Bearer header parsing, the legacy FAB user forms, error
// envelopes, routing redirects and dashboard visibility. Everything else
// (charts, SQL Lab, permissions beyond the three seeded roles, LDAP, OAuth,
// rate limits) is out of scope and answers 404.
package fakesuperset

import (
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// Seeded credentials.
const (
	AdminPassword = "admin-password"
	AlicePassword = "alice-password"
	BobPassword   = "bob-password"
)

// Superset defaults the fake mirrors.
const (
	// SessionLifetime is Flask's PERMANENT_SESSION_LIFETIME (31 days).
	SessionLifetime = 31 * 24 * time.Hour
	// CSRFTimeLimit is Superset's WTF_CSRF_TIME_LIMIT (one week).
	CSRFTimeLimit = 7 * 24 * time.Hour
	// DefaultGuestSecret and DefaultGuestAudience are Superset's defaults
	// for GUEST_TOKEN_JWT_SECRET and (via WEBDRIVER_BASEURL) the audience.
	DefaultGuestSecret   = "test-guest-secret-change-me"
	DefaultGuestAudience = "http://0.0.0.0:8080/"
)

// Options configure a Fake. Zero values get Superset's defaults where it has
// one; SecretKey is required.
type Options struct {
	SecretKey     string // SECRET_KEY: signs the session cookie and CSRF tokens
	JWTSecret     string // JWT_SECRET_KEY; "" means SecretKey, as in Superset
	GuestSecret   string // GUEST_TOKEN_JWT_SECRET; "" means DefaultGuestSecret
	GuestAudience string // GUEST_TOKEN_JWT_AUDIENCE; "" means DefaultGuestAudience
	// GuestRole names the role guests get (GUEST_ROLE_NAME); "" means
	// "Gamma", as the end-to-end Superset is configured.
	GuestRole string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ServerSideSessions makes the "session" cookie an opaque id with the
	// session kept in memory (SESSION_SERVER_SIDE=True with flask-session).
	ServerSideSessions bool
	// DashboardSlug and EmbedUUID name the seeded dashboard (id 1).
	// Defaults: "gateway-e2e" and a fixed uuid.
	DashboardSlug string
	EmbedUUID     string
	// AllowedDomains is the embedded config's allowed_domains (empty: any).
	AllowedDomains []string
	// APIKeys is Flask-AppBuilder 5.3.0's FAB_API_KEY_ENABLED: Bearer keys
	// with one of APIKeyPrefixes (FAB_API_KEY_PREFIXES; empty: sst_) on
	// every @protect'ed API, checked before the session and the JWT, and
	// the key routes under /api/v1/security/api_keys/ (every role).
	APIKeys        bool
	APIKeyPrefixes []string
	// Observe, if set, sees every request before it is handled (tests use
	// it to prove that a request never reached Superset). It must not
	// modify or consume the request.
	Observe func(r *http.Request)
	// Master makes the fake behave as Superset master after 6.1.0
	// (unreleased; see master.go for what and from which pull requests).
	// The conformance suite holds only the default (6.1.0) behaviour.
	Master bool
}

// User is a Superset user as the fake stores it.
type User struct {
	ID                  int
	Username, Password  string
	FirstName, LastName string
	Email               string
	Active              bool
	Roles               []string
	LoginCount          int
	FailLoginCount      int
	CreatedOn           time.Time
	LastLogin           time.Time
	// ChangedBy is FAB's changed_by_fk, 0 if none: the caller of the last
	// PUT /api/v1/me/, users-API PUT or legacy edit (password resets leave
	// it). A row last changed by its own user references itself, and the
	// users API cannot delete it.
	ChangedBy int
}

// Dashboard is the seeded dashboard.
type Dashboard struct {
	ID        int
	Slug      string
	Title     string
	EmbedUUID string
}

// Fake is an http.Handler that behaves like Superset 6.1. Safe for
// concurrent use.
type Fake struct {
	opt       Options
	jwt       apijwt.Verifier
	guest     guestjwt.Verifier
	dashboard Dashboard
	mux       *http.ServeMux
	spaTmpl   *template.Template

	created time.Time

	mu       sync.Mutex
	users    map[int]*User
	nextID   int
	extra    map[int]string    // dashboards created through the API: id → title
	sessions map[string]string // server-side sessions by sid, encoded

	// Master only (master.go): per-user sessions_invalidated_at and the
	// seeded dashboard's guest_token_revoked_before, in Unix seconds.
	invalidatedAt      map[int]int64
	guestRevokedBefore int64
	apiKeys            map[string]*apiKey // by the key's hash
}

// New returns a Fake seeded with admin (Admin), alice (Alpha) and bob
// (Gamma), ids 1–3, and dashboard 1 with embedding enabled.
func New(o Options) *Fake {
	if o.JWTSecret == "" {
		o.JWTSecret = o.SecretKey
	}
	if o.GuestSecret == "" {
		o.GuestSecret = DefaultGuestSecret
	}
	if o.GuestAudience == "" {
		o.GuestAudience = DefaultGuestAudience
	}
	if o.GuestRole == "" {
		o.GuestRole = "Gamma"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DashboardSlug == "" {
		o.DashboardSlug = "gateway-e2e"
	}
	if o.EmbedUUID == "" {
		o.EmbedUUID = "6f1c2b1e-9a7d-4f53-8c1e-2d0b5a7e9c41"
	}
	f := &Fake{
		opt:       o,
		jwt:       apijwt.Verifier{Key: []byte(o.JWTSecret)},
		guest:     guestjwt.Verifier{Key: []byte(o.GuestSecret), Audience: o.GuestAudience},
		dashboard: Dashboard{ID: 1, Slug: o.DashboardSlug, Title: "Gateway E2E", EmbedUUID: o.EmbedUUID},
		users:     map[int]*User{},
		sessions:  map[string]string{},
		extra:     map[int]string{},

		invalidatedAt: map[int]int64{},

		apiKeys: map[string]*apiKey{},
	}
	created := o.Now().UTC()
	f.created = created
	for _, u := range []User{
		{Username: "admin", Password: AdminPassword, FirstName: "Ada", LastName: "Admin", Email: "admin@example.com", Roles: []string{"Admin"}},
		{Username: "alice", Password: AlicePassword, FirstName: "Alice", LastName: "Example", Email: "alice@example.com", Roles: []string{"Alpha"}},
		{Username: "bob", Password: BobPassword, FirstName: "Bob", LastName: "Example", Email: "bob@example.com", Roles: []string{"Gamma"}},
	} {
		u.Active, u.CreatedOn = true, created
		f.addUser(u)
	}
	f.spaTmpl = template.Must(template.New("spa").Parse(spaHTML))
	f.mux = f.routes()
	return f
}

func (f *Fake) addUser(u User) int {
	f.nextID++
	u.ID = f.nextID
	f.users[u.ID] = &u
	return u.ID
}

// Dashboard returns the seeded dashboard.
func (f *Fake) Dashboard() Dashboard { return f.dashboard }

// User returns a copy of the user with that id.
func (f *Fake) User(id int) (User, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return User{}, false
	}
	c := *u
	c.Roles = slices.Clone(u.Roles)
	return c, true
}

// UserByName returns a copy of the user with that username.
func (f *Fake) UserByName(name string) (User, bool) {
	f.mu.Lock()
	id := 0
	for _, u := range f.users {
		if u.Username == name {
			id = u.ID
		}
	}
	f.mu.Unlock()
	return f.User(id)
}

// SetActive disables or re-enables a user behind the API's back (as the CLI
// or an LDAP sync would). It reports whether the user exists.
func (f *Fake) SetActive(id int, active bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if ok {
		u.Active = active
	}
	return ok
}

// DeleteUser removes a user behind the API's back.
func (f *Fake) DeleteUser(id int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.users[id]
	delete(f.users, id)
	return ok
}

// ServerSessionCount is the number of stored server-side sessions.
func (f *Fake) ServerSessionCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions)
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.opt.Observe != nil {
		f.opt.Observe(r)
	}
	// Werkzeug: a rule defined with a trailing slash redirects the bare form.
	if !strings.HasSuffix(r.URL.Path, "/") {
		switch r.URL.Path {
		case "/login", "/logout", "/api/v1/me", "/api/v1/me/roles", "/superset/welcome",
			"/api/v1/security/csrf_token", "/api/v1/security/guest_token", "/api/v1/security/users",
			"/api/v1/security/roles", "/api/v1/dashboard":
			// Werkzeug's RequestRedirect carries an absolute URL.
			u := *r.URL
			u.Path += "/"
			u.Scheme, u.Host = "http", r.Host
			if r.TLS != nil {
				u.Scheme = "https"
			}
			http.Redirect(w, r, u.String(), http.StatusPermanentRedirect)
			return
		}
	}
	f.mux.ServeHTTP(w, r)
}

func (f *Fake) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("OK"))
	})
	m.HandleFunc("GET /static/assets/images/favicon.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "public, max-age=31536000")
		_, _ = w.Write([]byte(favicon))
	})
	m.Handle("GET /login/", f.page(f.loginPage))
	m.Handle("POST /login/", f.form(f.loginPost))
	m.Handle("GET /logout/", f.page(f.logout))
	m.Handle("GET /{$}", f.page(f.index))
	m.Handle("GET /superset/welcome/", f.page(f.welcome))
	m.Handle("GET /embedded/{uuid}", f.page(f.embedded))
	m.Handle("POST /api/v1/security/login", f.page(f.apiLogin))
	m.Handle("POST /api/v1/security/refresh", f.page(f.apiRefresh))
	m.Handle("GET /api/v1/security/csrf_token/", f.api("can_read", f.csrfToken))
	m.Handle("POST /api/v1/security/guest_token/", f.apiCSRF("can_grant_guest_token", f.guestToken))
	m.Handle("GET /api/v1/me/{$}", f.api("can_read", f.me))
	m.Handle("PUT /api/v1/me/{$}", f.apiCSRF("can_write", f.meUpdate))
	m.Handle("GET /api/v1/me/roles/", f.api("can_read", f.meRoles))
	m.Handle("GET /api/v1/security/users/{$}", f.api("can_get_user", f.listUsers))
	m.Handle("POST /api/v1/security/users/{$}", f.api("can_post_user", f.createUser))
	m.Handle("GET /api/v1/security/users/{pk}", f.api("can_get_user", f.getUser))
	m.Handle("PUT /api/v1/security/users/{pk}", f.api("can_put_user", f.updateUser))
	m.Handle("DELETE /api/v1/security/users/{pk}", f.api("can_delete_user", f.deleteUser))
	m.Handle("GET /api/v1/security/roles/", f.api("can_get_role", f.listRoles))
	m.Handle("POST /api/v1/dashboard/{$}", f.apiCSRF("can_write_dashboard", f.createDashboard))
	m.Handle("GET /api/v1/dashboard/{idOrSlug}", f.api("can_read_dashboard", f.getDashboard))
	m.Handle("GET /api/v1/dashboard/{idOrSlug}/embedded", f.api("can_read_dashboard", f.getEmbedded))
	if f.opt.APIKeys {
		m.Handle("GET /api/v1/security/api_keys/{$}", f.api("can_list_api_key", f.listAPIKeys))
		m.Handle("POST /api/v1/security/api_keys/{$}", f.api("can_create_api_key", f.createAPIKey))
		m.Handle("GET /api/v1/security/api_keys/{uuid}", f.api("can_get_api_key", f.getAPIKey))
		m.Handle("DELETE /api/v1/security/api_keys/{uuid}", f.api("can_revoke_api_key", f.revokeAPIKey))
	}
	f.mvcRoutes(m)
	if f.opt.Master {
		f.masterRoutes(m)
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		res := httpError(r, http.StatusNotFound, notFoundDescription)
		for k, v := range res.header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
	})
	return m
}

// roleGrantsOf is the fake's whole permission model.
func roleGrantsOf(role string) []string {
	switch role {
	case "Admin":
		return []string{"can_read", "can_write", "can_grant_guest_token", "can_get_user", "can_post_user", "can_put_user", "can_delete_user", "can_get_role", "can_read_dashboard", "can_write_dashboard",
			"can_list_api_key", "can_create_api_key", "can_get_api_key", "can_revoke_api_key"}
	case "Alpha":
		return []string{"can_read", "can_write", "can_read_dashboard", "can_write_dashboard",
			"can_list_api_key", "can_create_api_key", "can_get_api_key", "can_revoke_api_key"}
	case "Gamma":
		// Superset 6.1.0's `superset init` gives Gamma (and Alpha) every
		// ApiKey permission: anyone may make keys (verified, e2e).
		return []string{"can_read", "can_write", "can_read_dashboard",
			"can_list_api_key", "can_create_api_key", "can_get_api_key", "can_revoke_api_key"}
	}
	return nil
}

func hasPermission(roles []string, perm string) bool {
	for _, r := range roles {
		if slices.Contains(roleGrantsOf(r), perm) {
			return true
		}
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
