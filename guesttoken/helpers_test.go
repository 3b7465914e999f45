package guesttoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store/bolt"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/principal"

	"github.com/superset-gateway/superset-gateway/guesttoken"

	"github.com/golang-jwt/jwt/v5"

	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

const (
	testSecret   = "a-strong-guest-secret-for-tests-0123456789abcdef"
	testAudience = "http://superset.test/"
)

// t0 is the fake clock's start; tokens in tests are minted around it.
var t0 = time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)

type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// mint signs a Superset-shaped token issued at iat for dashboards ids.
func mint(t testing.TB, key string, iat time.Time, ids ...string) string {
	t.Helper()
	res := make([]guestjwt.Resource, len(ids))
	for i, id := range ids {
		res[i] = guestjwt.Resource{Type: "dashboard", ID: id}
	}
	tok, err := guestjwt.Mint([]byte(key), guestjwt.MintOptions{
		User: guestjwt.User{Username: "embed"}, Resources: res, Audience: testAudience, Now: iat,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signRaw signs arbitrary claims with HS256, for tokens Superset would
// never issue.
func signRaw(t testing.TB, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validClaims are the claims of a good token, to be spoiled by a test.
func validClaims(iat time.Time) jwt.MapClaims {
	f := float64(iat.UnixNano()) / 1e9
	return jwt.MapClaims{
		"user": map[string]any{"username": "embed"}, "resources": []any{map[string]any{"type": "dashboard", "id": "1"}},
		"rls_rules": []any{}, "iat": f, "exp": f + 300, "aud": testAudience, "type": "guest",
	}
}

// algNone builds an unsigned token with alg "none".
func algNone(claims jwt.MapClaims) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}

// recObserver records metrics.
type recObserver struct {
	mu      sync.Mutex
	checked int
	refused map[string]int
	issued  map[string]int
	revoked map[string]int
	reasons []string
}

func newRecObserver() *recObserver {
	return &recObserver{refused: map[string]int{}, issued: map[string]int{}, revoked: map[string]int{}}
}

func (o *recObserver) ObserveGuestTokenChecked() { o.mu.Lock(); o.checked++; o.mu.Unlock() }

// ObserveCredentialRefusal is the gateway refusal writer's counter.
func (o *recObserver) ObserveCredentialRefusal(_, r string) {
	o.mu.Lock()
	o.refused[r]++
	o.reasons = append(o.reasons, r)
	o.mu.Unlock()
}
func (o *recObserver) ObserveGuestTokenIssued(d string) { o.mu.Lock(); o.issued[d]++; o.mu.Unlock() }
func (o *recObserver) ObserveGuestTokenRevocation(s string) {
	o.mu.Lock()
	o.revoked[s]++
	o.mu.Unlock()
}

func (o *recObserver) checkedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.checked
}

// lastReason is the reason of the latest refusal, "" if none.
func (o *recObserver) lastReason() policy.Reason {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reasons) == 0 {
		return ""
	}
	return policy.Reason(o.reasons[len(o.reasons)-1])
}

type recAuditor struct {
	mu     sync.Mutex
	events []guesttoken.AuditEvent
}

func (a *recAuditor) Audit(_ context.Context, ev guesttoken.AuditEvent) {
	a.mu.Lock()
	a.events = append(a.events, ev)
	a.mu.Unlock()
}

func (a *recAuditor) all() []guesttoken.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]guesttoken.AuditEvent(nil), a.events...)
}

// openBolt opens a bbolt store at path, closed at cleanup.
func openBolt(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newBolt(t testing.TB) *bolt.Store {
	return openBolt(t, filepath.Join(t.TempDir(), "gw.db"))
}

// connectRedis connects to srv, closed at cleanup.
func connectRedis(t testing.TB, srv *redistest.Server) *redis.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, redis.Options{URL: srv.URL(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// stores yields one fresh store per backend, for tests that must hold on
// both.
func stores(t *testing.T) map[string]func(t *testing.T) guesttoken.Store {
	return map[string]func(t *testing.T) guesttoken.Store{
		"bolt": func(t *testing.T) guesttoken.Store { return newBolt(t) },
		"redis": func(t *testing.T) guesttoken.Store {
			return connectRedis(t, redistest.Start(t, redistest.Options{}))
		},
	}
}

// env is a guard behind a real proxy.Gateway in front of a backend that
// records what reached it.
type env struct {
	t      testing.TB
	clock  *fakeClock
	obs    *recObserver
	aud    *recAuditor
	rev    *guesttoken.Revoker
	guard  *guesttoken.Guard
	gw     *httptest.Server
	mu     sync.Mutex
	seen   []seenReq
	marked atomic.Int64 // requests the guard marked (FromContext) before the backend
}

type seenReq struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	CL           int64
}

type envOpt func(*guesttoken.Options, *guesttoken.RevokerOptions)

func newEnv(t testing.TB, st guesttoken.Store, backend http.HandlerFunc, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), obs: newRecObserver(), aud: &recAuditor{}}
	ro := guesttoken.RevokerOptions{Store: st, CacheTTL: time.Second, Now: e.clock.Now, Observer: e.obs}
	o := guesttoken.Options{
		Verifier: guestjwt.Verifier{Key: []byte(testSecret), Audience: testAudience},
		Now:      e.clock.Now, Observer: e.obs, Auditor: e.aud,
		Caller: func(r *http.Request) guesttoken.Caller {
			return guesttoken.Caller{Actor: r.Header.Get("X-Test-Actor"), RequestID: proxy.RequestID(r), IP: proxy.ClientIP(r).String()}
		},
	}
	for _, f := range opts {
		f(&o, &ro)
	}
	var err error
	if e.rev, err = guesttoken.NewRevoker(ro); err != nil {
		t.Fatal(err)
	}
	o.Revoker = e.rev
	if e.guard, err = guesttoken.New(o); err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.seen = append(e.seen, seenReq{r.Method, r.URL.Path, r.Header.Clone(), body, r.ContentLength})
		e.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if backend != nil {
			backend(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":"ok"}`)
	}))
	t.Cleanup(be.Close)
	e.gw = httptest.NewServer(e.gateway(t, be.URL))
	t.Cleanup(e.gw.Close)
	return e
}

// gateway builds the real proxy with the gateway's request path (the
// guest-token stage, its revocation check and issuance hook), and a probe
// behind it that sees the principal.
func (e *env) gateway(t testing.TB, backend string) http.Handler {
	t.Helper()
	u, _ := url.Parse(backend)
	// A real session vault too, as in production: a browser or API
	// client's Superset cookies (CSRF) live there, never with guests.
	st, err := bolt.Open(filepath.Join(t.TempDir(), "sessions.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	vault, err := session.New(session.Options{Store: st, Keys: []session.KeyPair{gatewaytest.KeyPair(5)},
		SupersetSecretKey: "fake-superset-secret-key-0123456789abcdef", IdleTimeout: time.Hour, AbsoluteTimeout: 4 * time.Hour,
		AnonymousIdleTimeout: 10 * time.Minute, CacheTTL: time.Minute, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	pl := gatewaytest.Pipeline(t, gateway.Parts{Guests: e.guard, GuestRevoked: e.rev, GuestIssuance: func(resp *http.Response) error {
		// As the wiring composes them: issuance, then Superset's own
		// per-dashboard revoke (upstream.go).
		if err := e.guard.ModifyResponse(resp); err != nil {
			return err
		}
		return e.rev.ModifyResponse(resp)
	},
		Sessions: vault, Now: e.clock.Now,
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Observer: e.obs, RetryAfter: 7 * time.Second})})
	probe := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := principal.FromContext(r.Context()); ok && p.Kind == principal.Guest {
				e.marked.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
	gw, err := proxy.New(proxy.Options{
		Upstream:       toBackend{u},
		Middleware:     []func(http.Handler) http.Handler{pl.Middleware, probe},
		ModifyResponse: pl.ModifyResponse,
		Now:            e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

// toBackend is the simplest upstream: every request to one URL.
type toBackend struct{ u *url.URL }

func (b toBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host = b.u.Scheme, b.u.Host
	return http.DefaultTransport.RoundTrip(r2)
}

func (e *env) reached() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

func (e *env) last() seenReq {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		e.t.Fatal("backend received nothing")
	}
	return e.seen[len(e.seen)-1]
}

// get sends GET path with the token in the header and returns the status.
func (e *env) get(path, token string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+path, nil)
	if token != "" {
		req.Header.Set("X-GuestToken", token)
	}
	return e.do(req).StatusCode
}

func (e *env) do(req *http.Request) *http.Response {
	e.t.Helper()
	resp, err := e.gw.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// wantRefused asserts that a request with token is refused with status
// and reason and never reaches the backend.
func (e *env) wantRefused(token string, status int, reason policy.Reason) {
	e.t.Helper()
	before := e.reached()
	if got := e.get("/api/v1/chart/data", token); got != status {
		e.t.Errorf("status %d, want %d (reason %q)", got, status, e.obs.lastReason())
	}
	if e.reached() != before {
		e.t.Errorf("refused request reached the backend")
	}
	if got := e.obs.lastReason(); got != reason {
		e.t.Errorf("reason %q, want %q", got, reason)
	}
}

func (e *env) wantAllowed(token string) {
	e.t.Helper()
	before := e.reached()
	if got := e.get("/api/v1/chart/data", token); got != http.StatusOK {
		e.t.Errorf("status %d, want 200 (reason %q)", got, e.obs.lastReason())
	}
	if e.reached() != before+1 {
		e.t.Errorf("allowed request did not reach the backend")
	}
}

// failingStore answers every call with store.ErrUnavailable.
type failingStore struct{}

func (failingStore) MaxInt64(context.Context, string, int64) (int64, error) {
	return 0, store.ErrUnavailable
}
func (failingStore) GetInt64(context.Context, string) (int64, error) { return 0, store.ErrUnavailable }
func (failingStore) SAdd(context.Context, string, ...string) error   { return store.ErrUnavailable }
func (failingStore) SMembers(context.Context, string) ([]string, error) {
	return nil, store.ErrUnavailable
}
func (failingStore) Publish(context.Context, string, []byte) error { return store.ErrUnavailable }
func (failingStore) Subscribe(context.Context, ...string) (<-chan store.Message, error) {
	return nil, store.ErrUnavailable
}

// countingStore counts reads and writes of the store it wraps.
type countingStore struct {
	guesttoken.Store
	gets, writes atomic.Int64
}

func (c *countingStore) GetInt64(ctx context.Context, k string) (int64, error) {
	c.gets.Add(1)
	return c.Store.GetInt64(ctx, k)
}

func (c *countingStore) MaxInt64(ctx context.Context, k string, v int64) (int64, error) {
	c.writes.Add(1)
	return c.Store.MaxInt64(ctx, k, v)
}

// stubResolver resolves from a table.
type stubResolver map[string][]string

func (s stubResolver) Aliases(_ context.Context, ref string) ([]string, error) {
	if a, ok := s[ref]; ok {
		return a, nil
	}
	return nil, errors.New("superset unreachable")
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
