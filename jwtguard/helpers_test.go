package jwtguard_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const secretKey = "test-superset-secret-key-0123456789abcdef"

// clock is the shared fake clock (internal/testkit).
type clock = testkit.Clock

// refusals is an Observer.
type refusals struct {
	mu      sync.Mutex
	checked map[string]int
	refused map[string]int // "kind reason"
}

func (r *refusals) ObserveJWTChecked(kind string) {
	r.mu.Lock()
	r.checked[kind]++
	r.mu.Unlock()
}

func (r *refusals) ObserveCredentialRefusal(kind, reason string) {
	r.mu.Lock()
	r.refused[kind+" "+reason]++
	r.mu.Unlock()
}

func (r *refusals) count(kind, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused[kind+" "+reason]
}

// events records audit events (internal/testkit).
type events = testkit.Events

// env is a real proxy.Gateway with the guard in front of the fake Superset.
type env struct {
	t     *testing.T
	clk   *clock
	fake  *fakesuperset.Fake
	ep    *epoch.Epochs
	guard *jwtguard.Guard
	obs   *refusals
	aud   *events
	front *httptest.Server
	mu    sync.Mutex
	seen  []string // Authorization headers that reached Superset
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clk: testkit.NewClock(time.Now().Truncate(time.Second).Add(100 * time.Millisecond)), obs: &refusals{checked: map[string]int{}, refused: map[string]int{}}, aud: &events{}}
	e.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: e.clk.Now, Observe: func(r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, r.Header.Get("Authorization"))
		e.mu.Unlock()
	}})
	srv := httptest.NewServer(e.fake)
	t.Cleanup(srv.Close)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{Now: e.clk.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.ep, err = epoch.New(epoch.Options{Store: st, Now: e.clk.Now, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.guard, err = jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)},
		Revocations: st, Now: e.clk.Now, Observer: e.obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.guard.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := upstream.New(upstream.Options{Nodes: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.CloseIdleConnections)
	// The gateway's own request path, with the JWT stage only.
	e.front = gatewaytest.Front(t, gateway.Parts{JWT: e.guard, Epochs: e.ep, Now: e.clk.Now,
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Observer: e.obs, Auditor: e.aud, RetryAfter: 7 * time.Second,
			RequestInfo: gatewaytest.RequestInfo})}, pool, nil)
	return e
}

func (e *env) reached(auth string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.seen {
		if s == auth {
			return true
		}
	}
	return false
}

type reply struct {
	code int
	body string
	hdr  http.Header
}

func (e *env) do(method, path string, auth ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.front.URL+path, nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func (e *env) mint(typ apijwt.Type, sub string) string {
	e.t.Helper()
	tok, err := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: sub, Type: typ, Now: e.clk.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func b64(v any) string {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(x)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft signs header.payload with HMAC-SHA256 under key whatever the
// header says (key-confusion and alg tricks), or leaves the signature empty
// when key is "".
func craft(header, payload any, key string) string {
	in := b64(header) + "." + b64(payload)
	if key == "" {
		return in + "."
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func claims(now time.Time, over map[string]any) map[string]any {
	c := map[string]any{"fresh": true, "iat": now.Unix(), "jti": "j-" + now.String(), "type": "access", "sub": "3",
		"nbf": now.Unix(), "csrf": "c", "exp": now.Add(15 * time.Minute).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
