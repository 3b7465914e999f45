// Package client is a small client for the parts of Superset 6.1's REST API
// the gateway itself calls: API login and refresh, the CSRF token, who-am-I,
// the users list (for the reconciler) and dashboard / embedded lookups (to
// resolve guest-token resource aliases).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
)

// MaxResponse caps how much of a response body is read.
const MaxResponse = 8 << 20

// ErrStatus is wrapped by every *StatusError.
var ErrStatus = errors.New("client: unexpected status")

// StatusError is a non-2xx answer. Message is Superset's "message" or
// "msg" field when the body had one; the body itself is not kept (it may
// echo secrets, e.g. a PUT of a password).
type StatusError struct {
	Method, Path string
	Code         int
	Message      string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("client: %s %s: status %d: %s", e.Method, e.Path, e.Code, e.Message)
}

// Unwrap makes errors.Is(err, ErrStatus) true.
func (e *StatusError) Unwrap() error { return ErrStatus }

// StatusCode returns the HTTP status of a *StatusError in err's chain, or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Client talks to one Superset. The zero HTTP means http.DefaultClient.
// A Client holds no credentials: each call takes the bearer token it needs.
type Client struct {
	// BaseURL is Superset's origin, e.g. "http://127.0.0.1:8088" (a
	// trailing slash is tolerated).
	BaseURL string
	// HTTP is the transport; it should have a timeout.
	HTTP *http.Client
}

// Tokens are an API login's JWTs; Refresh is "" unless asked for.
type Tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token,omitempty"`
}

// Login is POST /api/v1/security/login. provider is "db" or "ldap" ("" means
// "db").
func (c *Client) Login(ctx context.Context, user, pass, provider string, refresh bool) (Tokens, error) {
	if provider == "" {
		provider = "db"
	}
	var t Tokens
	err := c.do(ctx, http.MethodPost, "/api/v1/security/login", "", map[string]any{
		"username": user, "password": pass, "provider": provider, "refresh": refresh,
	}, &t, nil)
	if err == nil && t.Access == "" {
		err = fmt.Errorf("client: login: no access_token in the answer")
	}
	return t, err
}

// Refresh is POST /api/v1/security/refresh with a refresh token; it returns
// a new (non-fresh) access token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (string, error) {
	var t Tokens
	if err := c.do(ctx, http.MethodPost, "/api/v1/security/refresh", refreshToken, nil, &t, nil); err != nil {
		return "", err
	}
	if t.Access == "" {
		return "", fmt.Errorf("client: refresh: no access_token in the answer")
	}
	return t.Access, nil
}

// CSRF is what Superset's own write APIs need besides a bearer: the token
// for X-CSRFToken and the session cookie holding its raw twin.
type CSRF struct {
	Token string
	Jar   http.CookieJar
}

// CSRFToken is GET /api/v1/security/csrf_token/. The returned jar holds
// Superset's session cookie; send it (with X-CSRFToken) on the writes.
func (c *Client) CSRFToken(ctx context.Context, bearer string) (CSRF, error) {
	jar, _ := cookiejar.New(nil) // never fails without options
	var out struct {
		Result string `json:"result"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/security/csrf_token/", bearer, nil, &out, jar); err != nil {
		return CSRF{}, err
	}
	if out.Result == "" {
		return CSRF{}, fmt.Errorf("client: csrf_token: empty result")
	}
	return CSRF{Token: out.Result, Jar: jar}, nil
}

// Me is GET /api/v1/me/'s result. ID is 0 for a guest.
type Me struct {
	ID          int    `json:"id"`
	Username    string `json:"username"`
	Email       string `json:"email"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	IsActive    bool   `json:"is_active"`
	IsAnonymous bool   `json:"is_anonymous"`
	LoginCount  int    `json:"login_count"`
}

// Auth says how a call authenticates: a Bearer JWT, Superset cookies
// (e.g. a session jar the gateway keeps), or a guest token. Zero fields are
// not sent.
type Auth struct {
	Bearer     string
	Cookies    []*http.Cookie
	GuestToken string
}

// Me is GET /api/v1/me/ as the caller described by a.
func (c *Client) Me(ctx context.Context, a Auth) (Me, error) {
	var out struct {
		Result Me `json:"result"`
	}
	err := c.doAuth(ctx, http.MethodGet, "/api/v1/me/", a, nil, &out)
	return out.Result, err
}

// Get is GET path as the caller described by a, decoding a 2xx answer
// into out (the FAB API key enforcer reads a key's record with the key
// itself).
func (c *Client) Get(ctx context.Context, path string, a Auth, out any) error {
	return c.doAuth(ctx, http.MethodGet, path, a, nil, out)
}

// MeRoles is GET /api/v1/me/roles/: role name → [[permission, view], …].
type MeRoles struct {
	Username string                `json:"username"`
	UserID   int                   `json:"userId"`
	Roles    map[string][][]string `json:"roles"`
}

// RoleNames returns the caller's role names.
func (m MeRoles) RoleNames() []string {
	out := make([]string, 0, len(m.Roles))
	for r := range m.Roles {
		out = append(out, r)
	}
	return out
}

// MeRoles is GET /api/v1/me/roles/.
func (c *Client) MeRoles(ctx context.Context, a Auth) (MeRoles, error) {
	var out struct {
		Result MeRoles `json:"result"`
	}
	err := c.doAuth(ctx, http.MethodGet, "/api/v1/me/roles/", a, nil, &out)
	return out.Result, err
}

// User is one row of the users API.
type User struct {
	ID       int    `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Active   bool   `json:"active"`
	Roles    []struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"roles"`
}

// PageSize is the users-list page size (FAB's maximum is 100).
const PageSize = 100

// maxPages bounds ListUsers against a server that never stops paging.
const maxPages = 10_000

// ListUsers is GET /api/v1/security/users/ page by page
// (q=(page:N,page_size:100)) until a short page or count is reached.
func (c *Client) ListUsers(ctx context.Context, bearer string) ([]User, error) {
	var all []User
	for page := 0; page < maxPages; page++ {
		var out struct {
			Count  int    `json:"count"`
			Result []User `json:"result"`
		}
		path := "/api/v1/security/users/?q=" + url.QueryEscape(fmt.Sprintf("(page:%d,page_size:%d)", page, PageSize))
		if err := c.do(ctx, http.MethodGet, path, bearer, nil, &out, nil); err != nil {
			return nil, err
		}
		all = append(all, out.Result...)
		if len(out.Result) < PageSize || len(all) >= out.Count {
			return all, nil
		}
	}
	return nil, fmt.Errorf("client: users list did not end after %d pages", maxPages)
}

// Dashboard is the part of GET /api/v1/dashboard/<id_or_slug> the gateway
// uses.
type Dashboard struct {
	ID    int    `json:"id"`
	Slug  string `json:"slug"`
	Title string `json:"dashboard_title"`
}

// Dashboard resolves a dashboard by numeric id or slug.
func (c *Client) Dashboard(ctx context.Context, bearer, idOrSlug string) (Dashboard, error) {
	var out struct {
		Result Dashboard `json:"result"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/dashboard/"+url.PathEscape(idOrSlug), bearer, nil, &out, nil)
	return out.Result, err
}

// Embedded is a dashboard's embedding configuration.
type Embedded struct {
	UUID           string   `json:"uuid"`
	DashboardID    string   `json:"dashboard_id"`
	AllowedDomains []string `json:"allowed_domains"`
}

// EmbeddedDashboard is GET /api/v1/dashboard/<id_or_slug>/embedded: the
// embed uuid of a dashboard (404 when embedding is off for it).
func (c *Client) EmbeddedDashboard(ctx context.Context, bearer, idOrSlug string) (Embedded, error) {
	var out struct {
		Result Embedded `json:"result"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/dashboard/"+url.PathEscape(idOrSlug)+"/embedded", bearer, nil, &out, nil)
	return out.Result, err
}

// EmbeddedByUUID is GET /api/v1/embedded_dashboard/<uuid>: the embedding
// configuration, and so the dashboard id, behind an embed uuid.
func (c *Client) EmbeddedByUUID(ctx context.Context, bearer, uuid string) (Embedded, error) {
	var out struct {
		Result Embedded `json:"result"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/embedded_dashboard/"+url.PathEscape(uuid), bearer, nil, &out, nil)
	return out.Result, err
}

func (c *Client) do(ctx context.Context, method, path, bearer string, body, out any, jar http.CookieJar) error {
	return c.request(ctx, method, path, Auth{Bearer: bearer}, body, out, jar)
}

func (c *Client) doAuth(ctx context.Context, method, path string, a Auth, body, out any) error {
	return c.request(ctx, method, path, a, body, out, nil)
}

func (c *Client) request(ctx context.Context, method, path string, a Auth, body, out any, jar http.CookieJar) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.Bearer)
	}
	if a.GuestToken != "" {
		req.Header.Set("X-GuestToken", a.GuestToken)
	}
	for _, ck := range a.Cookies {
		req.AddCookie(ck)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	if jar != nil {
		cp := *hc
		cp.Jar = jar
		hc = &cp
	}
	// The path is logged without its query (a q= may be long; nothing
	// secret travels there, but keep errors short).
	logPath, _, _ := strings.Cut(path, "?")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, logPath, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return fmt.Errorf("client: %s %s: read: %w", method, logPath, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Method: method, Path: logPath, Code: resp.StatusCode, Message: message(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("client: %s %s: decode: %w", method, logPath, err)
		}
	}
	return nil
}

// message extracts Superset's error text: {"message": "..."} (FAB),
// {"msg": "..."} (flask-jwt-extended) or {"errors": [{"message": ...}]}.
func message(b []byte) string {
	var m struct {
		Message any    `json:"message"`
		Msg     string `json:"msg"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	switch {
	case m.Msg != "":
		return m.Msg
	case m.Message != nil:
		if s, ok := m.Message.(string); ok {
			return s
		}
		j, _ := json.Marshal(m.Message)
		return string(j)
	case len(m.Errors) > 0:
		return m.Errors[0].Message
	}
	return ""
}
