package fabkey_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/fabkey"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const fakeSecret = "test-superset-secret-key-0123456789abcdef"

// flakyStore fails every call while down is set (a store outage).
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (s *flakyStore) setDown(v bool) { s.mu.Lock(); s.down = v; s.mu.Unlock() }
func (s *flakyStore) isDown() bool   { s.mu.Lock(); defer s.mu.Unlock(); return s.down }

func (s *flakyStore) Get(ctx context.Context, k string) ([]byte, error) {
	if s.isDown() {
		return nil, store.ErrUnavailable
	}
	return s.Store.Get(ctx, k)
}

// enfEnv is the gateway's request path with the enforcer, the real JWT
// stage and real epochs, in front of the fake Superset with API keys on.
type enfEnv struct {
	t      *testing.T
	clk    *testkit.Clock
	fake   *fakesuperset.Fake
	st     *flakyStore
	ep     *epoch.Epochs
	obs    *counts
	aud    *testkit.Events
	front  string
	mu     sync.Mutex
	seen   []string // method path Authorization that reached Superset
	upDown bool     // Superset answers 502 to everything
}

func newEnfEnv(t *testing.T) *enfEnv {
	t.Helper()
	e := &enfEnv{t: t, clk: testkit.NewClock(time.Now().Truncate(time.Second)), obs: &counts{}, aud: &testkit.Events{}}
	e.fake = fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret, Now: e.clk.Now, APIKeys: true})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		down := e.upDown
		e.mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		e.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{Now: e.clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	e.st = &flakyStore{Store: bs}
	e.ep, err = epoch.New(epoch.Options{Store: bs, Now: e.clk.Now, CacheTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(fakeSecret)}, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := upstream.New(upstream.Options{Nodes: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	enf, err := fabkey.NewEnforcer(fabkey.EnforcerOptions{Store: e.st, Superset: client.Through(pool),
		CacheTTL: time.Minute, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := enf.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.front = gatewaytest.Front(t, gateway.Parts{JWT: g, FABKeys: enf, Epochs: e.ep, Now: e.clk.Now,
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Observer: e.obs, Auditor: e.aud, RetryAfter: 7 * time.Second,
			RequestInfo: gatewaytest.RequestInfo})}, pool, nil).URL
	return e
}

type answer struct {
	code int
	body string
	hdr  http.Header
}

func (e *enfEnv) do(method, path, auth string, body any) answer {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.front+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, b := gatewaytest.Do(e.t, req, "")
	return answer{resp.StatusCode, b, resp.Header}
}

func (e *enfEnv) adminJWT() string {
	e.t.Helper()
	a := e.do(http.MethodPost, "/api/v1/security/login", "", map[string]any{"username": "admin",
		"password": fakesuperset.AdminPassword, "provider": "db"})
	var tok struct {
		Access string `json:"access_token"`
	}
	if a.code != 200 || json.Unmarshal([]byte(a.body), &tok) != nil {
		e.t.Fatalf("login: %d %s", a.code, a.body)
	}
	return "Bearer " + tok.Access
}

// create makes a key through the gateway as the admin's JWT.
func (e *enfEnv) create(jwt string, scopes any) (key, uuid string) {
	e.t.Helper()
	body := map[string]any{"name": "k"}
	if scopes != nil {
		body["scopes"] = scopes
	}
	a := e.do(http.MethodPost, "/api/v1/security/api_keys/", jwt, body)
	var out struct {
		Result struct{ Key, UUID string } `json:"result"`
	}
	if a.code != http.StatusCreated || json.Unmarshal([]byte(a.body), &out) != nil || out.Result.Key == "" {
		e.t.Fatalf("create a key through the gateway: %d %s", a.code, a.body)
	}
	return out.Result.Key, out.Result.UUID
}

func (e *enfEnv) reachedWith(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.seen {
		if strings.HasSuffix(s, " Bearer "+key) {
			n++
		}
	}
	return n
}

func TestEnforceOverTheWire(t *testing.T) {
	e := newEnfEnv(t)
	jwt := e.adminJWT()
	key, uuid := e.create(jwt, "dashboards:read, api:read")

	// The key acts as its owner, within its scopes.
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+key, nil); a.code != 200 || !strings.Contains(a.body, `"username":"admin"`) {
		t.Fatalf("GET /api/v1/me/ with the key: %d %s", a.code, a.body)
	}
	if a := e.do(http.MethodGet, "/api/v1/dashboard/1", "Bearer "+key, nil); a.code != 200 {
		t.Fatalf("GET a dashboard with the key: %d %s", a.code, a.body)
	}
	// Out of scope: a write, and making more keys with the key itself.
	if a := e.do(http.MethodPost, "/api/v1/dashboard/", "Bearer "+key, map[string]any{"dashboard_title": "x"}); a.code != 403 ||
		!strings.Contains(a.body, "No access-token scope allows this request") {
		t.Errorf("POST a dashboard with a read key: %d %s; want 403", a.code, a.body)
	}
	if a := e.do(http.MethodPost, "/api/v1/security/api_keys/", "Bearer "+key, map[string]any{"name": "more"}); a.code != 403 {
		t.Errorf("a key making a key: %d %s; want 403", a.code, a.body)
	}
	if e.obs.Get("fab_api_key no_scope") != 2 {
		t.Errorf("scope refusals counted: %d, want 2", e.obs.Get("fab_api_key no_scope"))
	}
	// Resolved once (GET the key's record, GET /me) then cached; the key
	// reached Superset for the two allowed requests only.
	if n := e.reachedWith(key); n != 4 {
		t.Errorf("requests with the key at Superset: %d, want 4 (2 resolution + 2 allowed)", n)
	}
	if ev := e.aud.Last(); ev.Event != "fab_api_key.refused" || ev.Subject != "fab_api_key:"+uuid || ev.Actor != "user:1" {
		t.Errorf("audit of a scope refusal: %+v", ev)
	}

	// A key narrower than what the route needs names the missing scope.
	narrow, _ := e.create(jwt, "dashboards:read")
	if a := e.do(http.MethodGet, "/api/v1/chart/1", "Bearer "+narrow, nil); a.code != 403 || !strings.Contains(a.body, "API key lacks the scope charts:read") {
		t.Errorf("GET a chart with a dashboards:read key: %d %s", a.code, a.body)
	}
	// FAB's free text that is no gateway scope grants nothing.
	odd, _ := e.create(jwt, "chart:write,admin")
	if a := e.do(http.MethodGet, "/api/v1/dashboard/1", "Bearer "+odd, nil); a.code != 403 {
		t.Errorf("a key with unknown scopes: %d %s; want 403", a.code, a.body)
	}
	// No scopes at all: refused, with its own reason.
	for _, scopes := range []any{nil, ""} {
		none, _ := e.create(jwt, scopes)
		if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+none, nil); a.code != 403 || !strings.Contains(a.body, "API key has no scopes") {
			t.Errorf("a key with scopes %v: %d %s; want 403 fab_api_key_no_scopes", scopes, a.code, a.body)
		}
	}
	if e.obs.Get("fab_api_key fab_api_key_no_scopes") != 2 {
		t.Errorf("no-scope refusals: %d", e.obs.Get("fab_api_key fab_api_key_no_scopes"))
	}

	// The owner's epoch: a key made before it is refused after it, with
	// the epoch's reason; one made after it works.
	e.clk.Advance(time.Second)
	if _, err := e.ep.Stamp(context.Background(), "1", epoch.Reason{Trigger: epoch.TriggerAdmin, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+key, nil); a.code != 401 || !strings.Contains(a.body, "Invalid API key") {
		t.Errorf("a key made before the owner's epoch: %d %s; want 401", a.code, a.body)
	}
	if e.obs.Get("fab_api_key revoked_user") != 1 {
		t.Errorf("epoch refusals: %d", e.obs.Get("fab_api_key revoked_user"))
	}
	jwt = e.adminJWT() // the old JWT is as revoked as the key
	fresh, freshUUID := e.create(jwt, "api:read")
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+fresh, nil); a.code != 200 {
		t.Errorf("a key made after the epoch: %d %s", a.code, a.body)
	}

	// Revoked through the gateway: dropped from the cache at once.
	if a := e.do(http.MethodDelete, "/api/v1/security/api_keys/"+freshUUID, jwt, nil); a.code != 200 {
		t.Fatalf("DELETE the key through the gateway: %d %s", a.code, a.body)
	}
	before := e.reachedWith(fresh)
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+fresh, nil); a.code != 401 {
		t.Errorf("the revoked key: %d %s; want 401", a.code, a.body)
	}
	if e.reachedWith(fresh) != before || e.obs.Get("fab_api_key fab_api_key_unknown") != 1 {
		t.Errorf("the revoked key reached Superset or was not refused as unknown (unknown: %d)", e.obs.Get("fab_api_key fab_api_key_unknown"))
	}

	// Revoked at Superset directly: refused once the cache entry expires.
	direct, _ := e.create(jwt, "api:read")
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+direct, nil); a.code != 200 {
		t.Fatalf("the direct key: %d", a.code)
	}
	if !e.fake.SetActive(1, false) {
		t.Fatal("deactivate admin")
	}
	e.clk.Advance(61 * time.Second)
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+direct, nil); a.code != 401 || !strings.Contains(a.body, "API key has been revoked") {
		t.Errorf("a key whose owner was deactivated at Superset, after the cache TTL: %d %s", a.code, a.body)
	}
	// Replaying the dead key costs Superset nothing more within the TTL.
	n := e.reachedWith(direct)
	for range 3 {
		if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+direct, nil); a.code != 401 {
			t.Errorf("the dead key replayed: %d", a.code)
		}
	}
	if e.reachedWith(direct) != n {
		t.Errorf("a dead key replayed 3 times reached Superset %d more times, want 0", e.reachedWith(direct)-n)
	}
	e.fake.SetActive(1, true)
}

// The attacker's side under enforce: nothing resolves without the
// registry and Superset both saying yes, and nothing unresolved reaches
// Superset.
func TestEnforceAttacker(t *testing.T) {
	e := newEnfEnv(t)
	jwt := e.adminJWT()
	key, _ := e.create(jwt, "api:read")
	for _, tc := range []struct{ name, auth, reason string }{
		{"forged", "Bearer sst_" + strings.Repeat("A", 43), "fab_api_key_unknown"},
		{"real key, one character changed", "Bearer " + key[:len(key)-1] + flip(key[len(key)-1]), "fab_api_key_unknown"},
		{"JWT-looking garbage", "Bearer sst_eyJhbGciOiJIUzI1NiJ9.e30.sig", "malformed"},
		{"oversized", "Bearer sst_" + strings.Repeat("A", 8000), "malformed"},
		{"tab-separated real key (FAB reads it as a JWT)", "Bearer\t" + key, "malformed"},
		{"real key with a trailing comma field", "Bearer " + key + ",Bearer x", "malformed"},
	} {
		before := e.obs.Get("fab_api_key " + tc.reason)
		a := e.do(http.MethodGet, "/api/v1/me/", tc.auth, nil)
		if a.code != 401 || e.obs.Get("fab_api_key "+tc.reason) != before+1 {
			t.Errorf("%s: %d %s; want 401 with reason %s", tc.name, a.code, a.body, tc.reason)
		}
	}
	e.mu.Lock()
	for _, s := range e.seen {
		if strings.Contains(s, "AAAA") || strings.Contains(s, "Bearer sst_eyJ") || strings.Contains(s, "Bearer x") {
			t.Errorf("an unresolved key reached Superset: %.80s", s)
		}
	}
	e.mu.Unlock()
	// A key made at Superset directly (not through the gateway): unknown.
	direct := directKey(t, e)
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+direct, nil); a.code != 401 || !strings.Contains(a.body, "Invalid API key") {
		t.Errorf("a key made around the gateway: %d %s", a.code, a.body)
	}
}

// Fail closed: a store outage or an unreachable Superset while resolving
// is 503 with Retry-After, never an accepted or a refused key.
func TestEnforceFailsClosed(t *testing.T) {
	e := newEnfEnv(t)
	key, _ := e.create(e.adminJWT(), "api:read")
	e.st.setDown(true)
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+key, nil); a.code != 503 || a.hdr.Get("Retry-After") != "7" {
		t.Errorf("store down: %d %q %s", a.code, a.hdr.Get("Retry-After"), a.body)
	}
	e.st.setDown(false)
	e.mu.Lock()
	e.upDown = true
	e.mu.Unlock()
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+key, nil); a.code != 503 || a.hdr.Get("Retry-After") != "7" {
		t.Errorf("Superset down: %d %q %s", a.code, a.hdr.Get("Retry-After"), a.body)
	}
	e.mu.Lock()
	e.upDown = false
	e.mu.Unlock()
	if a := e.do(http.MethodGet, "/api/v1/me/", "Bearer "+key, nil); a.code != 200 {
		t.Errorf("both back: %d %s", a.code, a.body)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// directKey makes a key at the fake itself, around the gateway.
func directKey(t *testing.T, e *enfEnv) string {
	t.Helper()
	srv := httptest.NewServer(e.fake)
	defer srv.Close()
	c := client.Client{BaseURL: srv.URL}
	tok, err := c.Login(context.Background(), "admin", fakesuperset.AdminPassword, "db", false)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/security/api_keys/", strings.NewReader(`{"name":"direct","scopes":"api:read"}`))
	req.Header.Set("Authorization", "Bearer "+tok.Access)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct{ Key string } `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Result.Key == "" {
		t.Fatalf("direct key: %d %v", resp.StatusCode, err)
	}
	return out.Result.Key
}
