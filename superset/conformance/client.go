package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// client speaks to the target like a browser or script would, but keeps
// cookies by hand so every Set-Cookie can be asserted, and never follows
// redirects, so every Location can be.
type client struct {
	t       *testing.T
	base    string
	http    *http.Client
	cookies map[string]string // name → value sent on each request
}

func newClient(t *testing.T, tg Target) *client {
	return &client{
		t:    t,
		base: tg.BaseURL,
		http: &http.Client{
			Timeout: 60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		cookies: map[string]string{},
	}
}

// response is a completed exchange with its body read.
type response struct {
	*http.Response
	body []byte
}

// setCookie returns the Set-Cookie named name, or nil.
func (r *response) setCookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// json decodes the body into a map, failing the test when it is not JSON.
func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %.300s", r.Request.Method, r.Request.URL.Path, err, r.body)
	}
	return m
}

type reqOpt func(*http.Request)

func header(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
func bearer(tok string) reqOpt  { return header("Authorization", "Bearer "+tok) }

// do sends one request. body is nil, url.Values (a form) or anything else
// (sent as JSON). Cookies the response sets are remembered (a deletion
// forgets them), as a browser would.
func (c *client) do(method, path string, body any, opts ...reqOpt) *response {
	c.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for name, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now())) {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return &response{Response: resp, body: b}
}

func (c *client) get(path string, opts ...reqOpt) *response {
	return c.do(http.MethodGet, path, nil, opts...)
}

// csrfInput matches the hidden input spa.html renders; attribute order as
// Superset 6.1 writes it (name, id, value), whitespace free.
var csrfInput = regexp.MustCompile(`<input\s[^>]*name="csrf_token"[^>]*value="([^"]+)"`)

// loginPage GETs /login/ and returns the csrf_token form value.
func (c *client) loginPage() string {
	c.t.Helper()
	r := c.get("/login/")
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /login/: status %d, want 200", r.StatusCode)
	}
	m := csrfInput.FindSubmatch(r.body)
	if m == nil {
		c.t.Fatalf("GET /login/: no csrf_token input in the page")
	}
	return string(m[1])
}

// formLogin signs in through the login form; it returns the POST's response.
func (c *client) formLogin(cr Credentials, next string) *response {
	c.t.Helper()
	tok := c.loginPage()
	path := "/login/"
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	return c.do(http.MethodPost, path, url.Values{
		"username": {cr.Username}, "password": {cr.Password}, "csrf_token": {tok},
	})
}

// mustFormLogin signs in and fails the test unless it succeeded.
func (c *client) mustFormLogin(cr Credentials) {
	c.t.Helper()
	r := c.formLogin(cr, "")
	if r.StatusCode != http.StatusFound || strings.HasPrefix(r.Header.Get("Location"), "/login/") {
		c.t.Fatalf("form login as %s: %d Location %q", cr.Username, r.StatusCode, r.Header.Get("Location"))
	}
}

// tokens is the body of POST /api/v1/security/login.
type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

func (c *client) apiLogin(cr Credentials, refresh bool) (*response, tokens) {
	c.t.Helper()
	r := c.do(http.MethodPost, "/api/v1/security/login", map[string]any{
		"username": cr.Username, "password": cr.Password, "provider": "db", "refresh": refresh,
	})
	var tk tokens
	if r.StatusCode == http.StatusOK {
		if err := json.Unmarshal(r.body, &tk); err != nil {
			c.t.Fatalf("api login: %v", err)
		}
	}
	return r, tk
}

func (c *client) mustAPILogin(cr Credentials, refresh bool) tokens {
	c.t.Helper()
	r, tk := c.apiLogin(cr, refresh)
	if r.StatusCode != http.StatusOK || tk.Access == "" {
		c.t.Fatalf("api login as %s: %d %.200s", cr.Username, r.StatusCode, r.body)
	}
	return tk
}

// csrfToken fetches a CSRF token for Superset's own APIs; the session
// cookie that holds the raw token is kept in the client.
func (c *client) csrfToken(opts ...reqOpt) string {
	c.t.Helper()
	r := c.get("/api/v1/security/csrf_token/", opts...)
	if r.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /api/v1/security/csrf_token/: %d %.200s", r.StatusCode, r.body)
	}
	tok, _ := r.json(c.t)["result"].(string)
	if tok == "" {
		c.t.Fatalf("csrf_token: empty result: %s", r.body)
	}
	return tok
}

// jwtParts decodes a JWT's header and payload without verifying it,
// keeping numbers as written (json.Number) so their type can be asserted.
func jwtParts(t *testing.T, tok string) (hdr, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT segment: %v", err)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatalf("JWT segment: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

// wantJSON asserts the status and that the body is the JSON value want,
// compared as values (key order and whitespace aside).
func wantJSON(t *testing.T, r *response, status int, want string) {
	t.Helper()
	got, w := compactJSON(t, r.body), compactJSON(t, []byte(want))
	if r.StatusCode != status || string(got) != string(w) {
		t.Errorf("%s %s: %d %.300s, want %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, status, w)
	}
}
