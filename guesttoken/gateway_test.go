package guesttoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/policy"

	"github.com/golang-jwt/jwt/v5"

	"github.com/superset-gateway/superset-gateway/internal/redistest"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// TestValidTokenPassesBodyIntact: a valid token in the header, an
// urlencoded form and a multipart form reaches Superset with the body
// byte-identical and the Content-Length unchanged, and the request is
// marked as guest traffic for the session layer.
func TestValidTokenPassesBodyIntact(t *testing.T) {
	spool := t.TempDir()
	e := newEnv(t, newBolt(t), nil, func(o *guesttoken.Options, _ *guesttoken.RevokerOptions) {
		o.FormMemoryBytes, o.MaxFormBytes, o.SpoolDir = 4096, 1<<20, spool
	})
	tok := mint(t, testSecret, t0.Add(-time.Minute), "1")

	e.wantAllowed(tok)
	if got := e.last().Header.Get("X-GuestToken"); got != tok {
		t.Errorf("Superset did not receive the header token")
	}

	mp, mpCT := guesttoken.MultipartBody(t, [2]string{`form-data; name="form_data"`, `{"slice_id": 7, "résumé": "ü"}`},
		[2]string{`form-data; name="csv"; filename="a.csv"`, strings.Repeat("a,b\n1,2\n", 30000)}, // spooled to disk
		[2]string{`form-data; name="guest_token"`, tok})
	for _, c := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "form_data=%7B%22slice_id%22%3A7%7D&guest_token=" + tok + "&x=%zz+"},
		{mpCT, string(mp)},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/api/v1/chart/data?type=csv", strings.NewReader(c.body))
		req.Header.Set("Content-Type", c.ct)
		if resp := e.do(req); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d (%s)", c.ct, resp.StatusCode, e.obs.lastReason())
		}
		got := e.last()
		if !bytes.Equal(got.Body, []byte(c.body)) || got.CL != int64(len(c.body)) {
			t.Errorf("%s: Superset got %d bytes (CL %d), want the %d sent", c.ct, len(got.Body), got.CL, len(c.body))
		}
	}
	if e.marked.Load() != 3 {
		t.Errorf("%d requests marked as guest traffic, want 3", e.marked.Load())
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	// A form larger than the gateway inspects is refused, not waved
	// through: the token could be past the part that was read.
	before := e.reached()
	big := strings.NewReader("x=" + strings.Repeat("y", 2<<20) + "&guest_token=" + tok)
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/api/v1/chart/data", big)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp := e.do(req); resp.StatusCode != http.StatusRequestEntityTooLarge || e.reached() != before {
		t.Errorf("oversized form: %d, reached %d", resp.StatusCode, e.reached()-before)
	}
	// Plain traffic passes unmarked and unchecked.
	before = e.obs.checkedCount()
	if e.get("/api/v1/me/", "") != http.StatusOK || e.marked.Load() != 3 || e.obs.checkedCount() != before {
		t.Errorf("request without token was marked or checked")
	}
}

// TestRevocationScopes runs the revocation contract against both stores.
func TestRevocationScopes(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := ctxT(t)
			e := newEnv(t, open(t), nil, func(_ *guesttoken.Options, ro *guesttoken.RevokerOptions) {
				ro.Resolver = stubResolver{
					"sales":  {"12", "sales", "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"},
					"12":     {"12", "sales", "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"},
					"others": {"13", "ops"},
				}
			})
			old := t0.Add(-time.Minute)
			a, aUUID, b := mint(t, testSecret, old, "12"), mint(t, testSecret, old, "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b"), mint(t, testSecret, old, "13")
			both := mint(t, testSecret, old, "13", "12")
			for _, tok := range []string{a, aUUID, b, both} {
				e.wantAllowed(tok)
			}

			// Revoking dashboard A by slug refuses tokens naming its
			// numeric id and its embed uuid, and leaves B working.
			rv, err := e.rev.RevokeDashboardRef(ctx, "sales", t0.Add(-30*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(rv.Aliases) != 3 || rv.Scope != "dashboard" || !rv.RevokedBefore.Equal(t0.Add(-30*time.Second)) {
				t.Errorf("revocation %+v", rv)
			}
			e.wantRefused(a, http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantRefused(aUUID, http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantRefused(both, http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantRefused(mint(t, testSecret, old, "5B1A6C1E-2F3D-4E5F-8A9B-0C1D2E3F4A5B"), http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantRefused(mint(t, testSecret, old, "012"), http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantAllowed(b)

			// A token minted after the revocation works again.
			e.wantAllowed(mint(t, testSecret, t0.Add(-29*time.Second), "12"))

			// An earlier stamp never moves the stored one backwards.
			if rv, err := e.rev.RevokeDashboard(ctx, []string{"12"}, t0.Add(-time.Hour)); err != nil || !rv.RevokedBefore.Equal(t0.Add(-30*time.Second)) {
				t.Errorf("backwards stamp: %+v %v", rv, err)
			}

			// Global revocation refuses all, whatever the dashboard.
			if _, err := e.rev.RevokeAll(ctx, t0.Add(-10*time.Second)); err != nil {
				t.Fatal(err)
			}
			e.wantRefused(b, http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantRefused(mint(t, testSecret, t0.Add(-11*time.Second), "99"), http.StatusUnauthorized, guesttoken.ReasonRevoked)
			e.wantAllowed(mint(t, testSecret, t0.Add(-9*time.Second), "13"))

			list, err := e.rev.List(ctx)
			if err != nil || len(list) != 4 || list[0].Scope != "global" {
				t.Errorf("List: %+v %v", list, err)
			}
			e.obs.mu.Lock()
			defer e.obs.mu.Unlock()
			if e.obs.revoked["dashboard"] != 2 || e.obs.revoked["global"] != 1 {
				t.Errorf("revocation metrics %v", e.obs.revoked)
			}
		})
	}
}

// TestResolverFailureStampsNothing: when Superset cannot resolve the
// dashboard, the revocation fails clearly and writes nothing.
func TestResolverFailureStampsNothing(t *testing.T) {
	cs := &countingStore{Store: newBolt(t)}
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: cs, Resolver: stubResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rev.RevokeDashboardRef(ctxT(t), "sales", t0)
	if !errors.Is(err, guesttoken.ErrResolve) || !strings.Contains(err.Error(), "superset unreachable") {
		t.Fatalf("err %v, want guesttoken.ErrResolve with the cause", err)
	}
	if cs.writes.Load() != 0 {
		t.Errorf("%d stamps written after a failed resolution", cs.writes.Load())
	}
	noRes, _ := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: cs})
	if _, err := noRes.RevokeDashboardRef(ctxT(t), "sales", t0); !errors.Is(err, guesttoken.ErrNoResolver) {
		t.Errorf("no resolver: %v", err)
	}
	for _, bad := range [][]string{nil, {""}, {"ok", "bad\x00"}, {strings.Repeat("x", 300)}} {
		if _, err := rev.RevokeDashboard(ctxT(t), bad, t0); !errors.Is(err, guesttoken.ErrBadAlias) {
			t.Errorf("aliases %q: %v, want ErrBadAlias", bad, err)
		}
	}
	if cs.writes.Load() != 0 {
		t.Errorf("stamps written for bad aliases")
	}
}

// TestRevocationSurvivesBoltReopen: an acknowledged revocation holds after
// the gateway restarts on the same file.
func TestRevocationSurvivesBoltReopen(t *testing.T) {
	path := t.TempDir() + "/gw.db"
	st := openBolt(t, path)
	e := newEnv(t, st, nil)
	tok := mint(t, testSecret, t0.Add(-time.Minute), "12")
	if _, err := e.rev.RevokeDashboard(ctxT(t), []string{"12", "sales"}, t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, openBolt(t, path), nil)
	e2.wantRefused(tok, http.StatusUnauthorized, guesttoken.ReasonRevoked)
	e2.wantAllowed(mint(t, testSecret, t0, "12"))
}

// TestRevocationSurvivesRedisRestart: with appendonly, a revocation
// answered without error survives kill -9 of Redis and a gateway restart.
func TestRevocationSurvivesRedisRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	e := newEnv(t, connectRedis(t, srv), nil)
	tok := mint(t, testSecret, t0.Add(-time.Minute), "12")
	if _, err := e.rev.RevokeAll(ctxT(t), t0.Add(-2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rev.RevokeDashboard(ctxT(t), []string{"12"}, t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart(t)
	e2 := newEnv(t, connectRedis(t, srv), nil)
	e2.wantRefused(tok, http.StatusUnauthorized, guesttoken.ReasonRevoked)
	e2.wantRefused(mint(t, testSecret, t0.Add(-2500*time.Millisecond), "13"), http.StatusUnauthorized, guesttoken.ReasonRevoked)
	e2.wantAllowed(mint(t, testSecret, t0, "12"))
}

// TestStoreDownFailsClosed: when the store cannot answer, guest requests
// get 503 with Retry-After and never reach Superset; requests without a
// token are not affected.
func TestStoreDownFailsClosed(t *testing.T) {
	e := newEnv(t, failingStore{}, nil)
	tok := mint(t, testSecret, t0.Add(-time.Minute), "12")
	before := e.reached()
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/api/v1/chart/data", nil)
	req.Header.Set("X-GuestToken", tok)
	resp := e.do(req)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("status %d Retry-After %q, want 503 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e.reached() != before || e.obs.lastReason() != guesttoken.ReasonStoreUnavailable {
		t.Errorf("reached %d, reason %q", e.reached()-before, e.obs.lastReason())
	}
	if e.get("/api/v1/me/", "") != http.StatusOK {
		t.Errorf("plain request refused")
	}
	if _, err := e.rev.RevokeAll(ctxT(t), t0); !errors.Is(err, guesttoken.ErrUnavailable) {
		t.Errorf("RevokeAll on a down store: %v", err)
	}

	// A real Redis going away: fail closed once the cached stamps expire.
	srv := redistest.Start(t, redistest.Options{})
	e2 := newEnv(t, connectRedis(t, srv), nil)
	e2.wantAllowed(tok)
	srv.Kill()
	e2.clock.Advance(2 * time.Second) // past the 1s cache TTL
	e2.wantRefused(tok, http.StatusServiceUnavailable, guesttoken.ReasonStoreUnavailable)
}

// TestAttackerTokens: everything an attacker can forge is refused at the
// gateway and never reaches Superset.
func TestAttackerTokens(t *testing.T) {
	e := newEnv(t, newBolt(t), nil)
	iat := t0.Add(-time.Minute)
	spoil := func(f func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims(iat)
		f(c)
		return c
	}
	good := signRaw(t, testSecret, validClaims(iat))
	parts := strings.Split(good, ".")
	forgedPayload, _ := json.Marshal(spoil(func(c jwt.MapClaims) {
		c["resources"] = []any{map[string]any{"type": "dashboard", "id": "999"}}
	}))
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedPayload) + "." + parts[2]
	cases := []struct {
		name, token string
		reason      policy.Reason
	}{
		{"forged signature", forged, "bad_signature"},
		{"alg none", algNone(validClaims(iat)), "alg_not_allowed"},
		{"alg HS512 not allowed", hs512(t, validClaims(iat)), "alg_not_allowed"},
		{"wrong secret", signRaw(t, "another-long-secret-nobody-configured-here", validClaims(iat)), "bad_signature"},
		{"missing iat", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { delete(c, "iat") })), "missing_iat"},
		{"string iat", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { c["iat"] = "1779278340" })), "malformed"},
		{"missing exp", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { delete(c, "exp") })), "missing_exp"},
		{"empty resources", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { c["resources"] = []any{} })), "missing_resources"},
		{"type access", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { c["type"] = "access" })), "wrong_type"},
		{"no type", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { delete(c, "type") })), "wrong_type"},
		{"wrong audience", signRaw(t, testSecret, spoil(func(c jwt.MapClaims) { c["aud"] = "http://evil/" })), "wrong_audience"},
		{"expired", mint(t, testSecret, t0.Add(-time.Hour), "1"), "expired"},
		{"iat in the future", mint(t, testSecret, t0.Add(time.Hour), "1"), "iat_in_future"},
		{"kid header", "eyJhbGciOiJIUzI1NiIsImtpZCI6IjEifQ." + parts[1] + "." + parts[2], "bad_header"},
		{"garbage", "not-a-jwt", "malformed"},
		{"16 KB token", strings.Repeat("a", 16<<10+1), guesttoken.ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.wantRefused(c.token, http.StatusUnauthorized, c.reason)
		})
	}
	e.wantAllowed(good)

	t.Run("header and form disagree", func(t *testing.T) {
		other := mint(t, testSecret, iat, "2")
		before := e.reached()
		req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/api/v1/chart/data", strings.NewReader("guest_token="+other))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-GuestToken", good)
		if resp := e.do(req); resp.StatusCode != http.StatusBadRequest || e.reached() != before || e.obs.lastReason() != guesttoken.ReasonAmbiguous {
			t.Errorf("status %d, reached %d, reason %q", resp.StatusCode, e.reached()-before, e.obs.lastReason())
		}
	})
	t.Run("revoked token smuggled in the form", func(t *testing.T) {
		if _, err := e.rev.RevokeDashboard(ctxT(t), []string{"7"}, t0.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		revoked := mint(t, testSecret, iat, "7")
		body, ct := guesttoken.MultipartBody(t, [2]string{`form-data; name="guest_token"`, revoked})
		before := e.reached()
		req, _ := http.NewRequest(http.MethodPost, e.gw.URL+"/api/v1/chart/data", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if resp := e.do(req); resp.StatusCode != http.StatusUnauthorized || e.reached() != before {
			t.Errorf("status %d, reached %d", resp.StatusCode, e.reached()-before)
		}
	})
	t.Run("refusal body is Superset-shaped", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/api/v1/chart/data", nil)
		req.Header.Set("X-GuestToken", forged)
		resp := e.do(req)
		var v map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v["msg"] == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("body %v (%v), content type %q", v, err, resp.Header.Get("Content-Type"))
		}
	})
	if e.obs.checkedCount() < len(cases) {
		t.Errorf("checked %d", e.obs.checkedCount())
	}
}

// TestDefaultSecret: tokens signed with Superset's published default
// secret are refused and audited, unless the operator opted out.
func TestDefaultSecret(t *testing.T) {
	e := newEnv(t, newBolt(t), nil)
	tok := mint(t, guesttoken.DefaultGuestSecret, t0.Add(-time.Minute), "1")
	req, _ := http.NewRequest(http.MethodGet, e.gw.URL+"/api/v1/chart/data", nil)
	req.Header.Set("X-GuestToken", tok)
	req.Header.Set("X-Test-Actor", "embedder")
	if resp := e.do(req); resp.StatusCode != http.StatusUnauthorized || e.obs.lastReason() != guesttoken.ReasonDefaultSecret {
		t.Fatalf("status %d reason %q", resp.StatusCode, e.obs.lastReason())
	}
	// Even when expired, the default signature is what matters.
	e.clock.Advance(2 * time.Second)
	e.wantRefused(mint(t, guesttoken.DefaultGuestSecret, t0.Add(-time.Hour), "1"), http.StatusUnauthorized, guesttoken.ReasonDefaultSecret)
	// Every one reaches the auditor, which throttles refusals
	// (audit.Logger.Refusal, tested there).
	e.wantRefused(tok, http.StatusUnauthorized, guesttoken.ReasonDefaultSecret)
	evs := e.aud.all()
	if len(evs) != 3 || evs[0].Event != "guest_token.default_secret" || evs[0].Reason != string(guesttoken.ReasonDefaultSecret) || evs[0].Actor != "embedder" || evs[0].RequestID == "" || evs[0].Outcome != "denied" {
		t.Errorf("audit events %+v", evs)
	}

	// The gateway configured with the default itself refuses all …
	refuseAll := newEnv(t, newBolt(t), nil, func(o *guesttoken.Options, _ *guesttoken.RevokerOptions) {
		o.Verifier.Key = []byte(guesttoken.DefaultGuestSecret)
	})
	refuseAll.wantRefused(tok, http.StatusUnauthorized, guesttoken.ReasonDefaultSecret)
	// … unless the operator opted out.
	optOut := newEnv(t, newBolt(t), nil, func(o *guesttoken.Options, _ *guesttoken.RevokerOptions) {
		o.Verifier.Key, o.AllowDefaultSecret = []byte(guesttoken.DefaultGuestSecret), true
	})
	optOut.wantAllowed(tok)
}

// TestLifetimeCap: a token living longer than the cap is refused.
func TestLifetimeCap(t *testing.T) {
	e := newEnv(t, newBolt(t), nil, func(o *guesttoken.Options, _ *guesttoken.RevokerOptions) { o.Policy.MaxLifetime = 10 * time.Minute })
	long, err := guestjwt.Mint([]byte(testSecret), guestjwt.MintOptions{
		Resources: []guestjwt.Resource{{Type: "dashboard", ID: "1"}}, Audience: testAudience, Now: t0.Add(-time.Minute), TTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.wantRefused(long, http.StatusUnauthorized, guesttoken.ReasonLifetime)
	e.wantAllowed(mint(t, testSecret, t0.Add(-time.Minute), "1"))
}

// TestNegativeCache: unknown dashboards are looked up once per TTL, and a
// revocation on this replica is seen at once despite the cache.
func TestNegativeCache(t *testing.T) {
	cs := &countingStore{Store: newBolt(t)}
	e := newEnv(t, cs, nil)
	tok := mint(t, testSecret, t0.Add(-time.Minute), "404")
	e.wantAllowed(tok)
	first := cs.gets.Load()
	if first != 2 { // global + dashboard:404
		t.Errorf("%d reads on a cold cache, want 2", first)
	}
	for range 5 {
		e.wantAllowed(tok)
	}
	if cs.gets.Load() != first {
		t.Errorf("absent keys read again within the TTL: %d reads", cs.gets.Load())
	}
	e.clock.Advance(1100 * time.Millisecond)
	tok = mint(t, testSecret, e.clock.Now().Add(-time.Second), "404")
	e.wantAllowed(tok)
	if cs.gets.Load() != first+2 {
		t.Errorf("expired entries not read again: %d reads", cs.gets.Load())
	}
	if _, err := e.rev.RevokeDashboard(ctxT(t), []string{"404"}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.wantRefused(tok, http.StatusUnauthorized, guesttoken.ReasonRevoked)
}

// TestCacheBounded: the cache never grows past its bound.
func TestCacheBounded(t *testing.T) {
	st := newBolt(t)
	rev, _ := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: st, CacheMaxEntries: 64, Now: newClock().Now})
	for i := range 1000 {
		if _, _, err := rev.RevokedBefore(ctxT(t), guesttoken.DashboardKey(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := rev.CacheLen(); n > 64 {
		t.Errorf("cache holds %d entries, bound 64", n)
	}
}

// TestPubSubInvalidation: a revocation on one replica reaches another
// through pub/sub long before its (one hour) cache TTL.
func TestPubSubInvalidation(t *testing.T) {
	for name, open := range stores(t) {
		if name == "bolt" {
			continue // one process per bbolt file: replicas need Redis
		}
		t.Run(name, func(t *testing.T) {
			st := open(t)
			long := func(_ *guesttoken.Options, ro *guesttoken.RevokerOptions) { ro.CacheTTL = time.Hour }
			a, b := newEnv(t, st, nil, long), newEnv(t, st, nil, long)
			ctx, cancel := context.WithCancel(context.Background())
			subscribed := make(chan struct{}, 1)
			b.rev.OnSubscribed(func() { subscribed <- struct{}{} })
			if err := b.rev.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cancel)
			<-subscribed

			tok := mint(t, testSecret, t0.Add(-time.Minute), "12")
			b.wantAllowed(tok) // now cached on b as "not stamped"
			if _, err := a.rev.RevokeDashboard(ctxT(t), []string{"12"}, t0.Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for b.get("/api/v1/chart/data", tok) != http.StatusUnauthorized {
				if time.Now().After(deadline) {
					t.Fatal("replica b never saw the revocation")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func hs512(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFormShapesOfRevokedToken (issue 12, finding 1): a revoked token in
// a body Werkzeug reads as a form never reaches Superset, whatever media
// type spelling, line ending or parameter form carries it, on GET too;
// a copy with junk in its signature segment (which PyJWT still verifies:
// its base64 decoding skips bytes outside the alphabet) is checked on its
// claims; the same shapes with a valid token pass byte for byte.
func TestFormShapesOfRevokedToken(t *testing.T) {
	e := newEnv(t, newBolt(t), nil)
	iat := t0.Add(-time.Minute)
	if _, err := e.rev.RevokeDashboard(ctxT(t), []string{"7"}, t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	revoked, valid := mint(t, testSecret, iat, "7"), mint(t, testSecret, iat, "8")
	const ue = "application/x-www-form-urlencoded"
	part := func(b, nl, disp string) func(string) string {
		return func(tok string) string {
			return "--" + b + nl + "Content-Disposition: " + disp + nl + nl + tok + nl + "--" + b + "--" + nl
		}
	}
	urlenc := func(tok string) string { return "guest_token=" + tok }
	shapes := []struct {
		name, ct string
		body     func(string) string
	}{
		{"trailing NEL", ue + "\x85", urlenc},
		{"leading NBSP", "\xa0" + ue, urlenc},
		{"bare LF", "multipart/form-data; boundary=B", part("B", "\n", `form-data; name="guest_token"`)},
		{"bare CR", "multipart/form-data; boundary=B", part("B", "\r", `form-data; name="guest_token"`)},
		{"name continuation", "multipart/form-data; boundary=B", part("B", "\r\n", `form-data; name=guest; name*1=_token`)},
		{"extended name first", "multipart/form-data; boundary=B", part("B", "\r\n", `form-data; name*=utf-8''x; name=guest_token`)},
		{"two boundaries", "multipart/form-data; boundary*=utf-8''Y; boundary=X", part("X", "\r\n", `form-data; name=guest_token`)},
		{"junk in the signature", ue, func(tok string) string { return "guest_token=" + tok[:len(tok)-4] + "%20" + tok[len(tok)-4:] }},
		{"percent-encoded", ue, func(tok string) string { return "guest_token=" + strings.ReplaceAll(tok, ".", "%2E") }},
	}
	for _, s := range shapes {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			send := func(tok string) (*http.Response, string) {
				body := s.body(tok)
				req, _ := http.NewRequest(m, e.gw.URL+"/api/v1/dashboard/7", strings.NewReader(body))
				req.Header["Content-Type"] = []string{s.ct}
				return e.do(req), body
			}
			before := e.reached()
			if resp, _ := send(revoked); resp.StatusCode != http.StatusUnauthorized || e.reached() != before {
				t.Errorf("%s %s, revoked: status %d, reached %d, reason %q", m, s.name, resp.StatusCode, e.reached()-before, e.obs.lastReason())
			}
			resp, body := send(valid)
			if resp.StatusCode != http.StatusOK || e.reached() != before+1 {
				t.Errorf("%s %s, valid: status %d (%s)", m, s.name, resp.StatusCode, e.obs.lastReason())
				continue
			}
			if got := e.last(); string(got.Body) != body {
				t.Errorf("%s %s: Superset got %q, want %q", m, s.name, got.Body, body)
			}
		}
	}
}
