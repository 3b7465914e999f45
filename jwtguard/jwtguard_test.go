package jwtguard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/redis"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// Every forged, confused, stale or misused token is refused by the gateway
// with 401 and a reason, and Superset never sees the request.
func TestAttackerTokensNeverReachSuperset(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	ok := claims(now, nil)
	big := claims(now, map[string]any{"pad": strings.Repeat("A", 16<<10)})
	cases := []struct {
		name, path, token, reason string
		kind                      string
	}{
		{"alg none", "/api/v1/me/", craft(map[string]any{"alg": "none", "typ": "JWT"}, ok, ""), "alg_not_allowed", principal.APIJWT.String()},
		{"alg None", "/api/v1/me/", craft(map[string]any{"alg": "None"}, ok, ""), "alg_not_allowed", principal.APIJWT.String()},
		{"alg NONE", "/api/v1/me/", craft(map[string]any{"alg": "NONE"}, ok, ""), "alg_not_allowed", principal.APIJWT.String()},
		{"alg nOnE signed", "/api/v1/me/", craft(map[string]any{"alg": "nOnE"}, ok, secretKey), "alg_not_allowed", principal.APIJWT.String()},
		{"alg hs256 lowercase", "/api/v1/me/", craft(map[string]any{"alg": "hs256"}, ok, secretKey), "alg_not_allowed", principal.APIJWT.String()},
		{"wrong key", "/api/v1/me/", craft(hs, ok, "another-key-another-key-another-key"), "bad_signature", principal.APIJWT.String()},
		{"RS256 header, HMAC with the secret", "/api/v1/me/", craft(map[string]any{"alg": "RS256", "typ": "JWT"}, ok, secretKey), "alg_not_allowed", principal.APIJWT.String()},
		{"ES256 header", "/api/v1/me/", craft(map[string]any{"alg": "ES256", "typ": "JWT"}, ok, secretKey), "alg_not_allowed", principal.APIJWT.String()},
		{"embedded jwk", "/api/v1/me/", craft(map[string]any{"alg": "HS256", "jwk": map[string]any{"kty": "oct", "k": b64("x")}}, ok, secretKey), "bad_header", principal.APIJWT.String()},
		{"jku", "/api/v1/me/", craft(map[string]any{"alg": "HS256", "jku": "https://evil.example/jwks"}, ok, secretKey), "bad_header", principal.APIJWT.String()},
		{"kid", "/api/v1/me/", craft(map[string]any{"alg": "HS256", "kid": "../../dev/null"}, ok, secretKey), "bad_header", principal.APIJWT.String()},
		{"expired", "/api/v1/me/", craft(hs, claims(now, map[string]any{"exp": now.Add(-time.Second).Unix(), "iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix()}), secretKey), "expired", principal.APIJWT.String()},
		{"nbf in the future", "/api/v1/me/", craft(hs, claims(now, map[string]any{"nbf": now.Add(time.Hour).Unix()}), secretKey), "not_yet_valid", principal.APIJWT.String()},
		{"missing iat", "/api/v1/me/", craft(hs, claims(now, map[string]any{"iat": nil}), secretKey), "missing_iat", principal.APIJWT.String()},
		{"iat far in the future", "/api/v1/me/", craft(hs, claims(now, map[string]any{"iat": now.Add(24 * 365 * time.Hour).Unix()}), secretKey), "iat_in_future", principal.APIJWT.String()},
		{"non-string sub", "/api/v1/me/", craft(hs, claims(now, map[string]any{"sub": 3}), secretKey), "invalid_sub", principal.APIJWT.String()},
		{"missing sub", "/api/v1/me/", craft(hs, claims(now, map[string]any{"sub": nil}), secretKey), "missing_sub", principal.APIJWT.String()},
		{"16 KB token", "/api/v1/me/", craft(hs, big, secretKey), "too_large", principal.APIJWT.String()},
		{"garbage", "/api/v1/me/", "junk", "malformed", principal.APIJWT.String()},
		{"refresh token as access", "/api/v1/me/", e.mint(apijwt.Refresh, "3"), "wrong_type", principal.APIJWT.String()},
		{"access token on refresh", "/api/v1/security/refresh", e.mint(apijwt.Access, "3"), "wrong_type", principal.RefreshJWT.String()},
	}
	for _, c := range cases {
		method := http.MethodGet
		if c.kind == principal.RefreshJWT.String() {
			method = http.MethodPost
		}
		before := e.obs.count(c.kind, c.reason)
		r := e.do(method, c.path, "Bearer "+c.token)
		if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.body, `{"msg": "`) || r.hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q", c.name, r.code, r.body)
		}
		if strings.Contains(r.body, c.token) {
			t.Errorf("%s: token echoed", c.name)
		}
		if e.obs.count(c.kind, c.reason) != before+1 {
			t.Errorf("%s: refusal %q not counted (%v)", c.name, c.reason, e.obs.refused)
		}
		if ev := e.aud.Last(); ev.Event != "jwt.refused" || ev.Reason != c.reason || ev.RequestID == "" {
			t.Errorf("%s: audit %+v", c.name, ev)
		}
		if e.reached("Bearer " + c.token) {
			t.Errorf("%s: reached Superset", c.name)
		}
	}
	// Header tricks.
	good := e.mint(apijwt.Access, "3")
	// Two Authorization fields: refused by request hygiene before any
	// credential is read (duplicate_header, 400).
	if r := e.do("GET", "/api/v1/me/", "Bearer "+good, "Bearer "+good); r.code != 400 {
		t.Errorf("two Authorization fields: %d %s", r.code, r.body)
	}
	for _, h := range [][]string{
		{"Basic eA==, Bearer x, Bearer " + good}, // two bearer elements
		{"Bearer"},                               // no token
		{"Bearer " + good + " extra"},
	} {
		if r := e.do("GET", "/api/v1/me/", h...); r.code != 401 || e.obs.count(principal.APIJWT.String(), string(policy.ReasonBadAuthorizationHeader)) == 0 {
			t.Errorf("header %q: %d %s", h, r.code, r.body)
		}
	}
	if e.reached("Bearer " + good) {
		t.Error("an ambiguous header reached Superset")
	}
	// The good token itself passes; under a lowercase scheme (which
	// Superset ignores) it is still checked.
	if r := e.do("GET", "/api/v1/me/", "Bearer "+good); r.code != 200 {
		t.Fatalf("good token: %d %s", r.code, r.body)
	}
	forged := craft(map[string]any{"alg": "HS256"}, claims(now, nil), "wrong-key-wrong-key-wrong-key-wrong")
	if r := e.do("GET", "/api/v1/me/", "bearer "+forged); r.code != 401 || e.reached("bearer "+forged) {
		t.Fatalf("lowercase scheme: %d", r.code)
	}
}

func TestPassThrough(t *testing.T) {
	e := newEnv(t)
	for _, auth := range []string{"", "Basic YWRtaW46eA==", "Bearer sgw_abc_def"} {
		var r reply
		if auth == "" {
			r = e.do("GET", "/health")
		} else {
			r = e.do("GET", "/health", auth)
		}
		if r.code != 200 {
			t.Errorf("%q: %d", auth, r.code)
		}
		if auth != "" && !e.reached(auth) {
			t.Errorf("%q did not reach Superset", auth)
		}
	}
}

func TestRefreshChecksEpochAndType(t *testing.T) {
	e := newEnv(t)
	refresh := e.mint(apijwt.Refresh, "3")
	e.clk.Advance(time.Second)
	if r := e.do("POST", "/api/v1/security/refresh", "Bearer "+refresh); r.code != 200 {
		t.Fatalf("refresh before revocation: %d %s", r.code, r.body)
	}
	if _, err := e.ep.Stamp(context.Background(), "3", epoch.Reason{Trigger: epoch.TriggerAdmin}); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/v1/security/refresh/", "Bearer "+refresh)
	if r.code != 401 || e.obs.count(principal.RefreshJWT.String(), string(policy.ReasonRevokedUser)) != 1 || !strings.Contains(r.body, "revoked") {
		t.Fatalf("revoked refresh: %d %s", r.code, r.body)
	}
	if ev := e.aud.Last(); ev.Subject != "user:3" {
		t.Fatalf("audit subject %q", ev.Subject)
	}
}

func TestRevokeJTI(t *testing.T) {
	e := newEnv(t)
	tok := e.mint(apijwt.Access, "2")
	other := e.mint(apijwt.Access, "2")
	c, err := apijwt.Verifier{Key: []byte(secretKey)}.Verify(tok, "", e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/api/v1/me/", "Bearer "+tok); r.code != 200 {
		t.Fatalf("before: %d", r.code)
	}
	if err := e.guard.RevokeJTI(context.Background(), c.JTI, c.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/api/v1/me/", "Bearer "+tok); r.code != 401 || e.obs.count(principal.APIJWT.String(), string(policy.ReasonRevokedJTI)) != 1 {
		t.Fatalf("revoked jti: %d %s", r.code, r.body)
	}
	if r := e.do("GET", "/api/v1/me/", "Bearer "+other); r.code != 200 {
		t.Fatalf("other token of the same user: %d", r.code)
	}
	if err := e.guard.RevokeJTI(context.Background(), "", c.ExpiresAt); !errors.Is(err, jwtguard.ErrBadJTI) {
		t.Fatalf("empty jti: %v", err)
	}
}

type downEpochs struct{}

func (downEpochs) IssuedAfter(context.Context, string, time.Time, time.Duration) (policy.Decision, error) {
	return policy.Decision{}, fmt.Errorf("epoch: store unavailable: %w", store.ErrUnavailable)
}

// A store that cannot answer gives 503 with Retry-After, not 401: nobody is
// logged out by an outage, and the request does not reach Superset.
func TestStoreDownAnswers503(t *testing.T) {
	obs := &refusals{checked: map[string]int{}, refused: map[string]int{}}
	g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)}, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: "3", Now: time.Now()})
	reached := false
	pl := gatewaytest.Pipeline(t, gateway.Parts{JWT: g, Epochs: downEpochs{},
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Observer: obs, RetryAfter: 3 * time.Second})})
	h := pl.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	req := httptest.NewRequest("GET", "/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "3" || reached || obs.count(principal.APIJWT.String(), string(policy.ReasonStoreUnavailable)) != 1 {
		t.Fatalf("store down: %d %q reached=%v", rec.Code, rec.Header().Get("Retry-After"), reached)
	}
}

// A jti revoked on one replica is refused on another: at once through
// pub/sub although the other had cached "not revoked" for an hour.
func TestRevokeJTIAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	newGuard := func() *jwtguard.Guard {
		st, err := redis.New(context.Background(), redis.Options{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)},
			Revocations: st, JTICacheTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b := newGuard(), newGuard()
	tok, _ := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: "3", JTI: "jti-1", Now: time.Now()})
	if _, d, err := b.Verify(context.Background(), tok, apijwt.Access); err != nil || !d.Allow {
		t.Fatalf("before: %+v %v", d, err)
	}
	if err := a.RevokeJTI(context.Background(), "jti-1", time.Now().Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, d, err := b.Verify(context.Background(), tok, apijwt.Access)
		if err != nil {
			t.Fatal(err)
		}
		if d.Reason == policy.ReasonRevokedJTI {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b never saw the revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
