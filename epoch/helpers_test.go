package epoch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"

	"github.com/superset-gateway/superset-gateway/session"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/principal"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const secretKey = "test-superset-secret-key-0123456789abcdef"

// clock is the shared fake clock (internal/testkit).
type clock = testkit.Clock

func newClock() *clock {
	return testkit.NewClock(time.Now().Truncate(time.Second).Add(100 * time.Millisecond))
}

// stamps counts ObserveStamp calls by trigger.
type stamps struct{ testkit.Counter }

func (s *stamps) ObserveStamp(trigger string) { s.Inc(trigger) }
func (s *stamps) get(trigger string) int      { return s.Get(trigger) }

// events records audit events (internal/testkit).
type events = testkit.Events

func openBolt(t *testing.T, path string, clk *clock) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{Now: clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func redisStore(t testing.TB, srv *redistest.Server) *redis.Store {
	t.Helper()
	s, err := redis.New(context.Background(), redis.Options{URL: srv.URL(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// backends runs f against a real bbolt file and a real redis-server.
func backends(t *testing.T, f func(t *testing.T, st store.Store, clk *clock)) {
	t.Run("bolt", func(t *testing.T) {
		clk := newClock()
		f(t, openBolt(t, filepath.Join(t.TempDir(), "gw.db"), clk), clk)
	})
	t.Run("redis", func(t *testing.T) {
		f(t, redisStore(t, redistest.Start(t, redistest.Options{})), newClock())
	})
}

func newEpochs(t testing.TB, st epoch.Store, clk *clock, o epoch.Options) *epoch.Epochs {
	t.Helper()
	o.Store = st
	if o.Now == nil {
		o.Now = clk.Now
	}
	e, err := epoch.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// seen records what reached the fake Superset.
type seen struct {
	mu    sync.Mutex
	auths []string
}

func (s *seen) observe(r *http.Request) {
	s.mu.Lock()
	s.auths = append(s.auths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	s.mu.Unlock()
}

// stack is a real proxy.Gateway with jwtguard and the epoch hook, in front
// of the fake Superset.
type stack struct {
	t     *testing.T
	clk   *clock
	fake  *fakesuperset.Fake
	url   string
	seen  *seen
	ep    *epoch.Epochs
	front *httptest.Server
	obs   *stamps
	aud   *events
	// self records SelfStamped as the session layer would see it.
	selfMu sync.Mutex
	self   []int64
}

func newStack(t *testing.T, st store.Store, clk *clock) *stack {
	t.Helper()
	sn := &seen{}
	fake := fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now, Observe: sn.observe})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return newStackOn(t, st, clk, fake, srv.URL, sn)
}

// newStackOn is another gateway replica in front of an existing Superset.
func newStackOn(t *testing.T, st store.Store, clk *clock, fake *fakesuperset.Fake, supersetURL string, sn *seen) *stack {
	t.Helper()
	s := &stack{t: t, clk: clk, seen: sn, obs: &stamps{}, aud: &events{}, fake: fake, url: supersetURL}
	s.ep = newEpochs(t, st, clk, epoch.Options{CacheTTL: time.Minute, Observer: s.obs, Auditor: s.aud})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.ep.Start(ctx); err != nil {
		t.Fatal(err)
	}
	guard, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hook, err := epoch.NewHook(epoch.HookOptions{Epochs: s.ep, RequestInfo: func(r *http.Request) (string, string) {
		return proxy.RequestID(r), proxy.ClientIP(r).String()
	}})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := upstream.New(upstream.Options{Nodes: []string{s.url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	vault, err := session.New(session.Options{Store: st, Keys: []session.KeyPair{gatewaytest.KeyPair(7)}, SupersetSecretKey: secretKey,
		WhoAmI: session.WhoAmIVia(pool, clk.Now), IdleTimeout: time.Hour, AbsoluteTimeout: 4 * time.Hour,
		AnonymousIdleTimeout: 10 * time.Minute, CacheTTL: time.Minute, Now: clk.Now, Epochs: s.ep})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's own request path: the JWT stage, the stamp hook and
	// the session vault.
	s.front = gatewaytest.Front(t, gateway.Parts{JWT: guard, Stamp: hook, Epochs: s.ep, Sessions: selfRecorder{vault, s},
		Now: clk.Now}, pool, nil)
	return s
}

// selfRecorder is the session vault, recording the Exchange.SelfStamped
// its response hook sees: the stamp hook must have run before it.
type selfRecorder struct {
	*session.Vault
	s *stack
}

func (r selfRecorder) ModifyResponse(resp *http.Response) error {
	if x := principal.ExchangeFrom(resp.Request.Context()); x != nil && x.SelfStamped != 0 {
		r.s.selfMu.Lock()
		r.s.self = append(r.s.self, x.SelfStamped)
		r.s.selfMu.Unlock()
	}
	return r.Vault.ModifyResponse(resp)
}

type reply struct {
	code int
	body string
	hdr  http.Header
}

func (s *stack) do(method, path, bearer string, body any, hdr ...string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.front.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

// login is an API login through the gateway.
func (s *stack) login(user, pass string) (access, refresh string) {
	s.t.Helper()
	r := s.do("POST", "/api/v1/security/login", "", map[string]any{"username": user, "password": pass, "provider": "db", "refresh": true})
	if r.code != 200 {
		s.t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	var out struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		s.t.Fatal(err)
	}
	return out.Access, out.Refresh
}

func (s *stack) userEpoch(id string) int64 {
	s.t.Helper()
	u, _, err := s.ep.Epoch(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// flakyStore fails MaxInt64 (stamps) or GetInt64 (checks) on demand.
type flakyStore struct {
	store.Store
	failMax, failGet atomic.Bool
}

func (f *flakyStore) MaxInt64(ctx context.Context, key string, v int64) (int64, error) {
	if f.failMax.Load() {
		return 0, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return f.Store.MaxInt64(ctx, key, v)
}

func (f *flakyStore) GetInt64(ctx context.Context, key string) (int64, error) {
	if f.failGet.Load() {
		return 0, fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return f.Store.GetInt64(ctx, key)
}

func newJar(t *testing.T) http.CookieJar {
	t.Helper()
	j, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (s *stack) doJar(jar http.CookieJar, method, path, bearer, body string, hdr ...string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.front.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := &http.Client{Jar: jar}
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func jsonField(t *testing.T, body, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[key].(string)
	return s
}
