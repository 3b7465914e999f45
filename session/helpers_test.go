package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"

	"github.com/superset-gateway/superset-gateway/gateway"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const secretKey = "test-superset-secret-key-0123456789abcdef"

// clock is the shared fake clock (internal/testkit).
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Now()) }

// counter is an Observer that counts.
type counter struct{ testkit.Counter }

func (c *counter) inc(k string)                   { c.Inc(k) }
func (c *counter) get(k string) int               { return c.Get(k) }
func (c *counter) SessionCreated(kind string)     { c.inc("created:" + kind) }
func (c *counter) SessionRotated()                { c.inc("rotated") }
func (c *counter) SessionDestroyed(reason string) { c.inc("destroyed:" + reason) }
func (c *counter) SessionLookup(result string)    { c.inc("lookup:" + result) }
func (c *counter) SessionRateLimited()            { c.inc("rate_limited") }
func (c *counter) Login(method, outcome string)   { c.inc("login:" + method + ":" + outcome) }

// upstreamSeen records the Cookie headers that reached the fake Superset.
type upstreamSeen struct {
	mu      sync.Mutex
	cookies []string
}

func (u *upstreamSeen) observe(r *http.Request) {
	u.mu.Lock()
	u.cookies = append(u.cookies, strings.Join(r.Header.Values("Cookie"), "; "))
	u.mu.Unlock()
}

func (u *upstreamSeen) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.cookies...)
}

func (u *upstreamSeen) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.cookies) == 0 {
		return ""
	}
	return u.cookies[len(u.cookies)-1]
}

type backend string

const (
	boltBackend  backend = "bolt"
	redisBackend backend = "redis"
)

// superset is the fake Superset shared by one or more gateways.
type superset struct {
	fake *fakesuperset.Fake
	srv  *httptest.Server
	seen *upstreamSeen
}

func startSuperset(t *testing.T, clk *clock, serverSide bool) *superset {
	t.Helper()
	s := &superset{seen: &upstreamSeen{}}
	s.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now,
		ServerSideSessions: serverSide, Observe: s.seen.observe})
	s.srv = httptest.NewServer(s.fake)
	t.Cleanup(s.srv.Close)
	return s
}

// gateway is a real proxy.Gateway with a Vault, in front of a superset.
type tgw struct {
	t     *testing.T
	vault *session.Vault
	front *httptest.Server
	pool  *upstream.Pool
	obs   *counter
	keys  []session.KeyPair
}

type gwOpts struct {
	keys    []session.KeyPair
	noStart bool // do not subscribe to invalidations
	modify  func(*session.Options)
	stamp   gateway.StampStage // the epoch hook's place in the request path
	jwt     gateway.Authenticator
}

func startGateway(t *testing.T, ss *superset, st session.Store, clk *clock, o gwOpts) *tgw {
	t.Helper()
	pool, err := upstream.New(upstream.Options{Nodes: []string{ss.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	keys := o.keys
	if keys == nil {
		keys = []session.KeyPair{gatewaytest.KeyPair(1)}
	}
	g := &tgw{t: t, pool: pool, obs: &counter{}, keys: keys}
	so := session.Options{
		Store:                st,
		Keys:                 keys,
		SupersetSecretKey:    secretKey,
		WhoAmI:               session.WhoAmIVia(pool, clk.Now),
		IdleTimeout:          time.Hour,
		AbsoluteTimeout:      4 * time.Hour,
		AnonymousIdleTimeout: 10 * time.Minute,
		CacheTTL:             time.Minute, // on the fake clock: only pub/sub or Advance evicts
		ClientIP:             proxy.ClientIP,
		RequestID:            proxy.RequestID,
		Now:                  clk.Now,
		Observer:             g.obs,
	}
	if o.modify != nil {
		o.modify(&so)
	}
	v, err := session.New(so)
	if err != nil {
		t.Fatal(err)
	}
	g.vault = v
	if !o.noStart {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/-/sessions", v.SessionsPage())
	mux.Handle("/-/sessions/", v.SessionsPage())
	// The gateway's own request path with the session stage.
	parts := gateway.Parts{Sessions: v, Stamp: o.stamp, JWT: o.jwt, Now: clk.Now}
	if so.Epochs != nil {
		parts.Epochs = so.Epochs
	}
	g.front = gatewaytest.Front(t, parts, pool, mux)
	return g
}

func openStore(t *testing.T, b backend, clk *clock) store.Store {
	t.Helper()
	switch b {
	case boltBackend:
		s, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{Now: clk.Now, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	default:
		srv := redistest.Start(t, redistest.Options{})
		return redisStore(t, srv)
	}
}

func redisStore(t *testing.T, srv *redistest.Server) store.Store {
	t.Helper()
	s, err := redis.New(context.Background(), redis.Options{URL: srv.URL(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reply is one answer from the gateway.
type reply struct {
	*http.Response
	body string
}

// gwCookie returns the gateway cookie the reply set: value, and whether
// one was set at all ("" with true means cleared).
func (r reply) gwCookie(name string) (string, bool) {
	for _, c := range r.Cookies() {
		if c.Name == name {
			if c.MaxAge < 0 {
				return "", true
			}
			return c.Value, true
		}
	}
	return "", false
}

var csrfRE = regexp.MustCompile(`id="csrf_token" value="([^"]+)"`)

func (r reply) csrf(t *testing.T) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no csrf token in %q", r.body)
	}
	return m[1]
}

// do sends one request with the given Cookie header (raw), never following
// redirects, and checks that no Superset cookie reaches the client.
func (g *tgw) do(method, path, cookie string, form url.Values, hdr ...string) reply {
	g.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, g.front.URL+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, b := gatewaytest.Do(g.t, req, g.vault.CookieName())
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		g.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	return reply{resp, b}
}

// cookieHeader is the Cookie header a browser holding value would send.
func (g *tgw) cookieHeader(value string) string {
	if value == "" {
		return ""
	}
	return g.vault.CookieName() + "=" + value
}

// anonymous gets an anonymous session the way a browser does: by opening
// the login page. It returns the gateway cookie value and the CSRF token.
func (g *tgw) anonymous() (string, string) {
	g.t.Helper()
	r := g.do("GET", "/login/", "", nil)
	if r.StatusCode != http.StatusOK {
		g.t.Fatalf("GET /login/: %d", r.StatusCode)
	}
	v, ok := r.gwCookie(g.vault.CookieName())
	if !ok || v == "" {
		g.t.Fatal("GET /login/ set no gateway cookie")
	}
	return v, r.csrf(g.t)
}

// login posts the login form with the given (possibly planted) cookie and
// returns the new gateway cookie.
func (g *tgw) login(cookie, csrf, user, password string) string {
	g.t.Helper()
	r := g.do("POST", "/login/", g.cookieHeader(cookie), url.Values{"username": {user}, "password": {password}, "csrf_token": {csrf}})
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/" {
		g.t.Fatalf("POST /login/: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	v, ok := r.gwCookie(g.vault.CookieName())
	if !ok || v == "" {
		g.t.Fatal("login set no gateway cookie")
	}
	return v
}

func (g *tgw) signIn(user, password string) string {
	g.t.Helper()
	a, csrf := g.anonymous()
	return g.login(a, csrf, user, password)
}

// me returns the status of GET /api/v1/me/ for a cookie value.
func (g *tgw) me(cookie string) int {
	g.t.Helper()
	return g.do("GET", "/api/v1/me/", g.cookieHeader(cookie), nil).StatusCode
}

// mustCodec is a codec with g's keys, to look inside g's cookies.
func mustCodec(t *testing.T, g *tgw) *session.CookieCodec {
	t.Helper()
	c, err := session.NewCookieCodec(g.keys, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handleOf is the store handle of a raw id: hex SHA-256.
func handleOf(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:])
}

// countingStore counts writes.
type countingStore struct {
	store.Store
	sets atomic.Int64
}

func (c *countingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, key, value, ttl)
}
