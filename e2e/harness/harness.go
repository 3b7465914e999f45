// Package harness bootstraps and runs a real Apache Superset 6.1.0 for the
// end-to-end tests and the demo: a throw-away Superset home (config, secrets,
// SQLite metadata DB copied from a cached, migrated template), gunicorn nodes
// on free loopback ports, and the fixtures every test relies on (users alice
// and bob, one dashboard with embedding enabled), described as a
// conformance.Target.
//
// The virtual environment comes from e2e/superset/install.sh (make
// superset-env); the harness never installs anything itself, so a missing
// environment is an error, not a skip.
package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	e2esuperset "github.com/superset-gateway/superset-gateway/e2e/superset"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// Version is the Superset release the harness runs.
const Version = "6.1.0"

// ErrNoVenv means the Superset virtual environment is missing or incomplete.
var ErrNoVenv = errors.New("harness: Superset virtual environment not installed (run make superset-env)")

// Options shapes one Superset home.
type Options struct {
	// Venv is the virtual environment install.sh created (SUPERSET_VENV).
	// Required.
	Venv string
	// Home is the Superset home directory. Empty means a fresh temporary
	// directory that Close removes. A non-empty Home is kept and reused:
	// secrets, database and fixtures already in it survive (the demo uses
	// this so its second start is fast).
	Home string
	// RedisURL, when set, turns on SESSION_SERVER_SIDE with
	// SESSION_TYPE="redis" on that server (flask-session).
	RedisURL string
	// Talisman enables Superset's Talisman (CSP and friends) with
	// frame-ancestors set to FrameAncestors ("'self'" when empty). Off by
	// default: its headers are not what the gateway tests look at.
	Talisman       bool
	FrameAncestors []string
	// DisableCSRF sets WTF_CSRF_ENABLED=False (default: CSRF on, as shipped).
	DisableCSRF bool
	// RateLimit, when set, turns on Superset's own limiter as
	// SUPERSET_ENV=production does, with this RATELIMIT_APPLICATION
	// ("50 per second" in production); NoProxyFix turns ENABLE_PROXY_FIX
	// off, so it keys every request by the gateway's address.
	RateLimit  string
	NoProxyFix bool
	// OAuth, when set, switches Superset to AUTH_TYPE = AUTH_OAUTH with this
	// one provider and self-registration. Needs Authlib in the venv.
	OAuth *OAuthProvider
	// RemoteUserHeader, when set, switches Superset to AUTH_TYPE =
	// AUTH_REMOTE_USER, with a WSGI middleware that copies this request
	// header into REMOTE_USER: how a single-sign-on proxy in front of the
	// gateway hands Superset the user.
	RemoteUserHeader string
	// SecretKey and GuestTokenSecret, when set, replace the random
	// SECRET_KEY and GUEST_TOKEN_JWT_SECRET (a Superset left on a published
	// default, for the upstream secret check and audit tests).
	SecretKey, GuestTokenSecret string
	// ExtensionsPath, when set, turns on the ENABLE_EXTENSIONS feature
	// flag with EXTENSIONS_PATH pointing at this directory of .supx files.
	ExtensionsPath string
	// LDAP, when set, switches Superset to AUTH_TYPE = AUTH_LDAP against
	// this directory, with self-registration and roles synced from its
	// groups at every sign-in. Needs python-ldap in the venv. API logins
	// with provider "db" keep working (the harness's fixtures use them).
	LDAP *LDAPServer

	// FABAPIKeys sets FAB_API_KEY_ENABLED = True (Flask-AppBuilder >= 5.2,
	// the venv superset-env-fab builds), with FAB_API_KEY_PREFIXES set to
	// FABAPIKeyPrefixes when that is not empty (FAB's default: sst_).
	FABAPIKeys        bool
	FABAPIKeyPrefixes []string

	// GunicornArgs are extra gunicorn arguments for every node, ahead of
	// the ones the harness sets (gunicorn takes the last of a repeated
	// option), e.g. "--header-map", "dangerous" for the pre-22 header
	// handling.
	GunicornArgs []string
	// Log receives one progress line per slow step; nil discards them.
	Log io.Writer
}

// OAuthProvider is one OAUTH_PROVIDERS entry (Flask-AppBuilder, authlib
// remote_app). Name selects FAB's per-provider userinfo code in
// get_oauth_user_info: "okta" does GET <APIBaseURL>userinfo with the access
// token and makes the username "okta_<sub>" (needs "sub" and "email").
type OAuthProvider struct {
	Name         string `json:"name"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	AuthorizeURL string `json:"authorize_url"`
	TokenURL     string `json:"token_url"`
	APIBaseURL   string `json:"api_base_url"`
	// Scope is the space-separated scope; empty means "email profile"
	// (no "openid": authlib then expects no id_token).
	Scope string `json:"scope,omitempty"`
	// RegistrationRole is AUTH_USER_REGISTRATION_ROLE; empty means Gamma.
	RegistrationRole string `json:"registration_role,omitempty"`
}

// LDAPServer is Flask-AppBuilder's AUTH_LDAP_* configuration for one
// directory, searched with a service account (FAB's "indirect bind": bind
// as BindDN, search SearchBase for UIDField=<username>, then bind as the
// entry found with the user's password).
type LDAPServer struct {
	URL          string `json:"url"`           // AUTH_LDAP_SERVER, ldap://host:port
	BindDN       string `json:"bind_dn"`       // AUTH_LDAP_BIND_USER
	BindPassword string `json:"bind_password"` // AUTH_LDAP_BIND_PASSWORD
	SearchBase   string `json:"search_base"`   // AUTH_LDAP_SEARCH
	// UIDField is AUTH_LDAP_UID_FIELD; empty means "uid".
	UIDField string `json:"uid_field,omitempty"`
	// GroupField is AUTH_LDAP_GROUP_FIELD, the user attribute holding
	// group DNs; empty means "memberOf".
	GroupField string `json:"group_field,omitempty"`
	// RolesMapping is AUTH_ROLES_MAPPING: group DN → Superset role names.
	RolesMapping map[string][]string `json:"roles_mapping,omitempty"`
	// RegistrationRole is AUTH_USER_REGISTRATION_ROLE, which FAB gives every
	// LDAP user at registration and at each sign-in (roles sync) on top of
	// the mapped ones; empty means Gamma.
	RegistrationRole string `json:"registration_role,omitempty"`
}

// settings is settings.json, read by e2e/superset/superset_config.py.
type settings struct {
	SecretKey          string   `json:"secret_key"`
	GuestTokenSecret   string   `json:"guest_token_secret"`
	GuestTokenAudience string   `json:"guest_token_audience"`
	RedisURL           string   `json:"redis_url,omitempty"`
	Talisman           bool     `json:"talisman"`
	FrameAncestors     []string `json:"frame_ancestors,omitempty"`
	CSRF               bool     `json:"csrf"`
	RateLimit          string   `json:"ratelimit_application,omitempty"`
	NoProxyFix         bool     `json:"no_proxy_fix,omitempty"`
	AdminPassword      string   `json:"admin_password"`
	AlicePassword      string   `json:"alice_password"`
	BobPassword        string   `json:"bob_password"`
	// OAuth is Options.OAuth (absent: Superset's default AUTH_DB).
	OAuth *OAuthProvider `json:"oauth,omitempty"`
	// RemoteUserHeader is Options.RemoteUserHeader.
	RemoteUserHeader string `json:"remote_user_header,omitempty"`
	// ExtensionsPath is Options.ExtensionsPath.
	ExtensionsPath string `json:"extensions_path,omitempty"`
	// LDAP is Options.LDAP.
	LDAP *LDAPServer `json:"ldap,omitempty"`

	// FABAPIKeys and FABAPIKeyPrefixes are Options'.
	FABAPIKeys        bool     `json:"fab_api_keys,omitempty"`
	FABAPIKeyPrefixes []string `json:"fab_api_key_prefixes,omitempty"`
	// TemplateAdminPassword is admin's password in the copied template DB
	// until the first Start replaces it with AdminPassword.
	TemplateAdminPassword string `json:"template_admin_password,omitempty"`
}

// Superset is one bootstrapped Superset home. It is not running until Start.
type Superset struct {
	venv    string
	home    string
	temp    bool
	log     io.Writer
	set     settings
	fixture *fixtures // nil until the first Start created or loaded them
	// gunicornArgs is Options.GunicornArgs.
	gunicornArgs []string
}

// Bootstrap prepares a Superset home: settings with random secrets,
// superset_config.py, and the metadata DB copied from the cached template
// (built on first use: db upgrade, fab create-admin, init). Users other than
// admin and the dashboard are created through the API by the first Start.
func Bootstrap(ctx context.Context, opts Options) (*Superset, error) {
	if err := checkVenv(opts.Venv); err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	s := &Superset{venv: opts.Venv, home: opts.Home, log: logw, gunicornArgs: opts.GunicornArgs}
	if s.home == "" {
		dir, err := os.MkdirTemp("", "sgw-superset-")
		if err != nil {
			return nil, fmt.Errorf("harness: temp home: %w", err)
		}
		s.home, s.temp = dir, true
	} else if err := os.MkdirAll(s.home, 0o700); err != nil {
		return nil, fmt.Errorf("harness: home: %w", err)
	}
	if err := s.prepare(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Superset) prepare(ctx context.Context, opts Options) error {
	start := time.Now()
	// A reused home keeps its secrets (cookies, tokens and the gateway's
	// data stay valid across demo runs); only the switches follow opts.
	if b, err := os.ReadFile(s.path("settings.json")); err == nil {
		if err := json.Unmarshal(b, &s.set); err != nil {
			return fmt.Errorf("harness: settings.json: %w", err)
		}
	} else {
		s.set = settings{
			SecretKey:          randomString(32),
			GuestTokenSecret:   randomString(32),
			GuestTokenAudience: "sgw-e2e-" + randomString(4),
			AdminPassword:      "admin-" + randomString(6),
			AlicePassword:      "alice-" + randomString(6),
			BobPassword:        "bob-" + randomString(6),
		}
	}
	if opts.SecretKey != "" {
		s.set.SecretKey = opts.SecretKey
	}
	if opts.GuestTokenSecret != "" {
		s.set.GuestTokenSecret = opts.GuestTokenSecret
	}
	s.set.RedisURL = opts.RedisURL
	s.set.Talisman = opts.Talisman
	s.set.FrameAncestors = opts.FrameAncestors
	s.set.CSRF = !opts.DisableCSRF
	s.set.RateLimit, s.set.NoProxyFix = opts.RateLimit, opts.NoProxyFix
	s.set.OAuth = opts.OAuth
	s.set.RemoteUserHeader = opts.RemoteUserHeader
	s.set.ExtensionsPath = opts.ExtensionsPath
	s.set.LDAP = opts.LDAP

	s.set.FABAPIKeys, s.set.FABAPIKeyPrefixes = opts.FABAPIKeys, opts.FABAPIKeyPrefixes
	if err := s.writeConfig(); err != nil {
		return err
	}
	// The gateway reads Superset's secrets from files (DESIGN §6).
	if err := os.WriteFile(s.SecretKeyFile(), []byte(s.set.SecretKey+"\n"), 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := os.WriteFile(s.GuestTokenSecretFile(), []byte(s.set.GuestTokenSecret+"\n"), 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if _, err := os.Stat(s.path("superset.db")); err == nil {
		s.logf("reusing Superset home %s", s.home)
		return nil
	}
	tmpl, err := ensureTemplate(ctx, s.venv, s.log)
	if err != nil {
		return err
	}
	pw, err := os.ReadFile(filepath.Join(tmpl, "admin_password"))
	if err != nil {
		return fmt.Errorf("harness: template: %w", err)
	}
	s.set.TemplateAdminPassword = string(pw)
	if err := s.writeConfig(); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(tmpl, "superset.db"), s.path("superset.db")); err != nil {
		return fmt.Errorf("harness: copy template DB: %w", err)
	}
	if opts.ExtensionsPath != "" {
		// The template was built without ENABLE_EXTENSIONS: Admin lacks
		// can_read on Extensions (the list answers 403) until `superset
		// init` syncs the permissions of the API the flag adds.
		t0 := time.Now()
		if out, err := runVenv(ctx, s.venv, s.home, "superset", "init"); err != nil {
			return fmt.Errorf("harness: superset init (extensions): %w\n%s", err, tail(out, 4000))
		}
		s.logf("superset init for ENABLE_EXTENSIONS: %s", time.Since(t0).Round(time.Millisecond))
	}
	if opts.FABAPIKeys {
		// Likewise FAB_API_KEY_ENABLED: FAB registers its ApiKeyApi only
		// then, and Admin gets can_create (and the rest) on ApiKey only
		// from the `superset init` that follows (else POST answers 403).
		t0 := time.Now()
		if out, err := runVenv(ctx, s.venv, s.home, "superset", "init"); err != nil {
			return fmt.Errorf("harness: superset init (FAB API keys): %w\n%s", err, tail(out, 4000))
		}
		s.logf("superset init for FAB_API_KEY_ENABLED: %s", time.Since(t0).Round(time.Millisecond))
	}
	s.logf("bootstrapped Superset home %s in %s", s.home, time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Superset) writeConfig() error {
	b, err := json.MarshalIndent(s.set, "", "  ")
	if err != nil {
		return fmt.Errorf("harness: settings: %w", err)
	}
	if err := os.WriteFile(s.path("settings.json"), b, 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if err := os.WriteFile(s.path("superset_config.py"), e2esuperset.Config(), 0o600); err != nil {
		return fmt.Errorf("harness: superset_config.py: %w", err)
	}
	return nil
}

// Home is the Superset home directory.
func (s *Superset) Home() string { return s.home }

// SecretKeyFile holds SECRET_KEY (also the API JWT secret) plus a newline.
func (s *Superset) SecretKeyFile() string { return s.path("secret_key") }

// GuestTokenSecretFile holds GUEST_TOKEN_JWT_SECRET plus a newline.
func (s *Superset) GuestTokenSecretFile() string { return s.path("guest_token_secret") }

// GuestTokenAudience is GUEST_TOKEN_JWT_AUDIENCE.
func (s *Superset) GuestTokenAudience() string { return s.set.GuestTokenAudience }

// AdminID is the admin's Superset user id (0 before the first Start, or for
// a demo home bootstrapped before it was recorded).
func (s *Superset) AdminID() int {
	if s.fixture == nil {
		return 0
	}
	return s.fixture.AdminID
}

// Close removes a temporary home (a caller-supplied Home is kept). Stop
// every Cluster first.
func (s *Superset) Close() error {
	if !s.temp {
		return nil
	}
	return os.RemoveAll(s.home)
}

func (s *Superset) path(name string) string { return filepath.Join(s.home, name) }

func (s *Superset) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "harness: "+format+"\n", args...)
}

// Credentials are the fixture users' sign-ins (admin, alice, bob), known
// from Bootstrap on: what an LDAP directory must hold for them to sign in
// by form under AUTH_LDAP.
func (s *Superset) Credentials() (admin, alpha, gamma conformance.Credentials) {
	tg := s.target("")
	return tg.Admin, tg.Alpha, tg.Gamma
}

// target describes the running Superset at baseURL.
func (s *Superset) target(baseURL string) conformance.Target {
	tg := conformance.Target{
		BaseURL:            baseURL,
		SecretKey:          s.set.SecretKey,
		JWTSecret:          s.set.SecretKey,
		GuestSecret:        s.set.GuestTokenSecret,
		GuestAudience:      s.set.GuestTokenAudience,
		Admin:              conformance.Credentials{Username: "admin", Password: s.set.AdminPassword},
		Alpha:              conformance.Credentials{Username: "alice", Password: s.set.AlicePassword},
		Gamma:              conformance.Credentials{Username: "bob", Password: s.set.BobPassword},
		ServerSideSessions: s.set.RedisURL != "",
	}
	if s.set.FABAPIKeys {
		tg.APIKeyPrefixes = s.set.FABAPIKeyPrefixes
		if len(tg.APIKeyPrefixes) == 0 {
			tg.APIKeyPrefixes = []string{"sst_"} // FAB's default
		}
	}
	if s.fixture != nil {
		tg.DashboardID = s.fixture.DashboardID
		tg.DashboardSlug = s.fixture.DashboardSlug
		tg.EmbedUUID = s.fixture.EmbedUUID
	}
	return tg
}

func checkVenv(venv string) error {
	if venv == "" {
		return fmt.Errorf("%w: SUPERSET_VENV is empty", ErrNoVenv)
	}
	for _, f := range []string{".complete", "bin/gunicorn", "bin/superset", "bin/python"} {
		if _, err := os.Stat(filepath.Join(venv, f)); err != nil {
			return fmt.Errorf("%w: %w", ErrNoVenv, err)
		}
	}
	return nil
}

func randomString(nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥1.24)
	return hex.EncodeToString(b)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Data is the queryable fixture (database, dataset, chart); zero before
// the first Start.
func (s *Superset) Data() Data {
	if s.fixture == nil {
		return Data{}
	}
	return s.fixture.Data
}
