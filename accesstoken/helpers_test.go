package accesstoken_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"

	"github.com/superset-gateway/superset-gateway/gateway"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

var _ accesstoken.Observer = (*metrics.AccessTokens)(nil)
var _ gateway.EpochChecker = (*epoch.Epochs)(nil)
var _ gateway.TokenStage = (*accesstoken.Guard)(nil)
var _ accesstoken.Auditor = (*audit.Logger)(nil)

const secretKey = "test-superset-secret-key-0123456789abcdef"

var pepper = []byte("pepper-0123456789abcdef-0123456789abcdef")

// Superset user ids of the fake's seeded users.
var (
	adminUser = accesstoken.Owner{ID: "1", Username: "admin"}
	alice     = accesstoken.Owner{ID: "2", Username: "alice"}
	bob       = accesstoken.Owner{ID: "3", Username: "bob"}
)

func sealKey(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// clock is the shared fake clock (internal/testkit).
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Now()) }

// seenReq is what reached the fake Superset.
type seenReq struct {
	Method, Path, Auth, CSRF, CSRF2, Cookie string
}

// superset is the fake Superset behind a shim that plays SQL Lab's
// execute endpoint: Superset's CSRFProtect covers it, so the shim hands it
// to the fake's CSRF-protected PUT /api/v1/me/ as the same caller. A
// request that gets through proves the gateway sent a JWT, an X-CSRFToken
// and the session cookie that belong together.
type superset struct {
	fake *fakesuperset.Fake
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenReq
}

func startSuperset(t *testing.T, clk *clock) *superset {
	t.Helper()
	s := &superset{}
	s.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now})
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, seenReq{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("X-CSRFToken"), r.Header.Get("X-CSRF-Token"), r.Header.Get("Cookie")})
		s.mu.Unlock()
		if r.Method == http.MethodPost && r.URL.Path == "/api/v1/sqllab/execute/" {
			r2 := r.Clone(r.Context())
			r2.Method, r2.URL.Path = http.MethodPut, "/api/v1/me/"
			body := `{"first_name":"SQL"}`
			r2.Body, r2.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			r2.Header.Set("Content-Type", "application/json")
			s.fake.ServeHTTP(w, r2)
			return
		}
		s.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *superset) requests(path string) []seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []seenReq
	for _, r := range s.seen {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

type backend string

const (
	boltBackend  backend = "bolt"
	redisBackend backend = "redis"
)

// env is one shared store (and its raw files) plus the fake Superset.
type env struct {
	t     *testing.T
	clk   *clock
	ss    *superset
	st    store.Store
	redis *redistest.Server
	file  string // bolt file
	aud   *auditSink
}

func newEnv(t *testing.T, b backend) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), aud: &auditSink{}}
	e.ss = startSuperset(t, e.clk)
	switch b {
	case boltBackend:
		e.file = filepath.Join(t.TempDir(), "gw.db")
		s, err := bolt.Open(e.file, bolt.Options{Now: e.clk.Now, SweepInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		e.st = s
	default:
		e.redis = redistest.Start(t, redistest.Options{AppendOnly: true})
		e.st = e.redisClient()
	}
	return e
}

func (e *env) redisClient() store.Store {
	s, err := redis.New(context.Background(), redis.Options{URL: e.redis.URL(), DialTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawBytes is every byte the store has on disk: the bbolt file, or every
// file of Redis' append-only log (every write ever made, overwritten or
// not).
func (e *env) rawBytes() []byte {
	e.t.Helper()
	if e.file != "" {
		b, err := os.ReadFile(e.file)
		if err != nil {
			e.t.Fatal(err)
		}
		return b
	}
	var all []byte
	err := filepath.WalkDir(e.redis.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".conf") || strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".out") {
			return err
		}
		b, err := os.ReadFile(p)
		all = append(all, b...)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return all
}

// auditSink collects audit events; find filters them by name and reason.
type auditSink struct{ testkit.Events }

func (a *auditSink) find(event, reason string) []audit.Event {
	var out []audit.Event
	for _, ev := range a.All() {
		if ev.Event == event && (reason == "" || ev.Reason == reason) {
			out = append(out, ev)
		}
	}
	return out
}

// counter is an Observer.
type counter struct{ testkit.Counter }

func (c *counter) ObserveAccessTokenRequest(scope, outcome string) { c.Inc(scope + "|" + outcome) }
func (c *counter) ObserveAccessTokenManaged(op string)             { c.ObserveAccessTokenRequest("managed", op) }
func (c *counter) get(k string) int                                { return c.Get(k) }

// tgw is a real proxy.Gateway with the vault and the token guard in
// front of the fake Superset, wired as cmd wires them.
type tgw struct {
	t      *testing.T
	e      *env
	m      *accesstoken.Manager
	guard  *accesstoken.Guard
	epochs *epoch.Epochs
	vault  *session.Vault
	obs    *counter
	front  *httptest.Server
}

type gwOpts struct {
	sealKeys [][]byte
	cacheTTL time.Duration
	noStart  bool
	store    store.Store
	policy   accesstoken.Policy
}

func (e *env) gateway(o gwOpts) *tgw {
	t := e.t
	t.Helper()
	st := o.store
	if st == nil {
		st = e.st
	}
	if o.sealKeys == nil {
		o.sealKeys = [][]byte{sealKey(1)}
	}
	if o.cacheTTL == 0 {
		o.cacheTTL = time.Minute // on the fake clock: only pub/sub or Advance evicts
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	g := &tgw{t: t, e: e, obs: &counter{}}
	var err error
	g.epochs, err = epoch.New(epoch.Options{Store: st, CacheTTL: -1, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	g.m, err = accesstoken.NewManager(accesstoken.ManagerOptions{Store: st, Pepper: pepper, CacheTTL: o.cacheTTL,
		Policy: o.policy, Now: e.clk.Now, Observer: g.obs, Auditor: e.aud, ResubscribeDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !o.noStart {
		if err := g.m.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pool, err := upstream.New(upstream.Options{Nodes: []string{e.ss.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	g.guard, err = accesstoken.NewGuard(accesstoken.GuardOptions{Manager: g.m, JWTSecret: []byte(secretKey),
		Upstream: pool, SealKeys: o.sealKeys, ClientIP: proxy.ClientIP, RequestID: proxy.RequestID, Now: e.clk.Now,
		Observer: g.obs})
	if err != nil {
		t.Fatal(err)
	}
	g.vault, err = session.New(session.Options{
		Store: st, Keys: []session.KeyPair{gatewaytest.KeyPair(1)}, SupersetSecretKey: secretKey,
		WhoAmI: session.WhoAmIVia(pool, e.clk.Now), IdleTimeout: time.Hour, AbsoluteTimeout: 4 * time.Hour,
		AnonymousIdleTimeout: 10 * time.Minute, CacheTTL: time.Minute, ClientIP: proxy.ClientIP, RequestID: proxy.RequestID,
		Now: e.clk.Now, Epochs: g.epochs,
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := g.m.Page(accesstoken.PageOptions{Identify: identify(g.vault)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(accesstoken.PagePath, page)
	mux.Handle(accesstoken.PagePath+"/", page)
	// The gateway's own request path, with the session and token stages.
	g.front = gatewaytest.Front(t, gateway.Parts{Sessions: g.vault, Tokens: g.guard, Epochs: g.epochs, Now: e.clk.Now,
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Auditor: e.aud, RequestInfo: gatewaytest.RequestInfo})}, pool, mux)
	return g
}

// identify is what the gateway wires into PageOptions.Identify: the
// vault's live, signed-in, unrevoked session (Vault.SignedIn).
func identify(v *session.Vault) accesstoken.IdentifyFunc {
	return func(r *http.Request) (accesstoken.Owner, bool, error) {
		s, err := v.SignedIn(r)
		switch {
		case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrBadCookie), errors.Is(err, session.ErrExpired):
			return accesstoken.Owner{}, false, nil
		case err != nil:
			return accesstoken.Owner{}, false, err
		}
		return accesstoken.Owner{ID: s.UserID, Username: s.Username}, true, nil
	}
}

// reply is one answer from the gateway.
type reply struct {
	*http.Response
	body string
}

func (r reply) msg() string {
	var m struct {
		Msg string `json:"msg"`
	}
	_ = json.Unmarshal([]byte(r.body), &m)
	return m.Msg
}

// do sends one request, never following redirects; hdr are name/value
// pairs. A Superset cookie reaching the client fails the test.
func (g *tgw) do(method, path string, body io.Reader, hdr ...string) reply {
	g.t.Helper()
	req, err := http.NewRequest(method, g.front.URL+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, b := gatewaytest.Do(g.t, req, g.vault.CookieName())
	return reply{resp, b}
}

// withToken sends a request with Authorization: Bearer token.
func (g *tgw) withToken(method, path, token string, hdr ...string) reply {
	g.t.Helper()
	var body io.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader(`{"sql":"SELECT 1","database_id":1}`)
		hdr = append(hdr, "Content-Type", "application/json")
	}
	return g.do(method, path, body, append([]string{"Authorization", "Bearer " + token}, hdr...)...)
}

var csrfRE = regexp.MustCompile(`id="csrf_token" value="([^"]+)"`)

// signIn logs user in through the gateway and returns the Cookie header
// value of the gateway session.
func (g *tgw) signIn(user, password string) string {
	g.t.Helper()
	r := g.do("GET", "/login/", nil)
	var cookie string
	for _, c := range r.Cookies() {
		if c.Name == g.vault.CookieName() {
			cookie = c.Name + "=" + c.Value
		}
	}
	m := csrfRE.FindStringSubmatch(r.body)
	if cookie == "" || m == nil {
		g.t.Fatalf("GET /login/: no cookie or csrf token (%d)", r.StatusCode)
	}
	form := url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}}
	r = g.do("POST", "/login/", strings.NewReader(form.Encode()), "Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded")
	if r.StatusCode != http.StatusFound {
		g.t.Fatalf("POST /login/: %d", r.StatusCode)
	}
	for _, c := range r.Cookies() {
		if c.Name == g.vault.CookieName() {
			cookie = c.Name + "=" + c.Value
		}
	}
	return cookie
}

// create makes a token directly through the Manager.
func (g *tgw) create(owner accesstoken.Owner, scopes []string, ttl time.Duration, cidrs ...string) string {
	g.t.Helper()
	tok, _, err := g.m.Create(context.Background(), owner, "test token", scopes, ttl, cidrs)
	if err != nil {
		g.t.Fatal(err)
	}
	return tok
}

// eventually polls cond for up to five seconds (pub/sub is asynchronous).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
