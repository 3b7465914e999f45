//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// fabSuperset bootstraps and starts a one-node Superset 6.1.0 on the
// Flask-AppBuilder 5.3.0 venv (make superset-env-fab, SUPERSET_FAB_VENV)
// with FAB_API_KEY_ENABLED, for t alone.
func fabSuperset(t *testing.T, prefixes []string) (*harness.Superset, *harness.Cluster) {
	t.Helper()
	venv := os.Getenv("SUPERSET_FAB_VENV")
	if venv == "" {
		t.Fatal("SUPERSET_FAB_VENV is empty: run make superset-env-fab (the FAB API key tests need Flask-AppBuilder 5.3.0)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := harness.Bootstrap(ctx, harness.Options{Venv: venv, Log: os.Stderr, FABAPIKeys: true, FABAPIKeyPrefixes: prefixes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := s.Start(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
		c.Stop()
	})
	return s, c
}

// fabKeyInfo is FAB 5.3.0's ApiKeyCreateResponseSchema / ApiKeyResponseSchema.
type fabKeyInfo struct {
	UUID      string  `json:"uuid"`
	Name      string  `json:"name"`
	Key       string  `json:"key"`
	KeyPrefix string  `json:"key_prefix"`
	Scopes    *string `json:"scopes"`
	Active    *bool   `json:"active"`
	CreatedOn string  `json:"created_on"`
	RevokedOn *string `json:"revoked_on"`
}

// createFABKey makes a key as a (JWT + CSRF) at Superset itself.
func createFABKey(t *testing.T, a *harness.API, name, scopes string) fabKeyInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body := map[string]any{"name": name}
	if scopes != "" {
		body["scopes"] = scopes
	}
	var out struct {
		Result fabKeyInfo `json:"result"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/security/api_keys/", body, &out); err != nil {
		t.Fatalf("create a FAB API key at Superset: %v", err)
	}
	return out.Result
}

// withBearer is GET path at base with Authorization: Bearer tok.
func withBearer(t *testing.T, base, tok, method, path string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil || b.Len() > 1<<20 {
			break
		}
	}
	return resp.StatusCode, b.String(), resp.Header
}

// TestFABAPIKeysRefuse: what Superset 6.1.0 + FAB 5.3.0 do with API keys
// (checked at Superset directly), then the gateway's default
// superset.fab_api_keys: refuse from the attacker's side.
func TestFABAPIKeysRefuse(t *testing.T) {
	s, c := fabSuperset(t, []string{"sst_", "acme_"})
	tg := c.Target
	node := c.Nodes[0].URL

	// Superset itself: an admin makes a key; the key signs in on a
	// FAB-protected API. These are the facts docs/superset-6.1.md records.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := harness.NewAPI(ctx, node, "admin", tg.Admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.FetchCSRF(ctx); err != nil {
		t.Fatal(err)
	}
	k := createFABKey(t, a, "e2e", "chart:read")
	if !strings.HasPrefix(k.Key, "sst_") || len(k.Key) != len("sst_")+43 || k.KeyPrefix != "sst_" || k.UUID == "" || k.CreatedOn == "" ||
		k.Scopes == nil || *k.Scopes != "chart:read" {
		t.Fatalf("Superset's new key: %+v; want sst_ + 43 characters (token_urlsafe(32)), key_prefix sst_, its scopes and created_on", k)
	}
	code, body, _ := withBearer(t, node, k.Key, http.MethodGet, "/api/v1/me/")
	if code != http.StatusOK || !strings.Contains(body, `"username":"admin"`) {
		t.Fatalf("Superset, GET /api/v1/me/ with the key: %d %.300s; want 200 as admin", code, body)
	}
	// FAB stores scopes but never enforces them: a chart:read key lists
	// the owner's API keys.
	code, body, _ = withBearer(t, node, k.Key, http.MethodGet, "/api/v1/security/api_keys/")
	if code != http.StatusOK || !strings.Contains(body, k.UUID) {
		t.Fatalf("Superset, GET /api/v1/security/api_keys/ with a chart:read key: %d %.300s; want 200 (scopes are not enforced)", code, body)
	}
	if code, body, _ := withBearer(t, node, "acme_"+strings.Repeat("A", 43), http.MethodGet, "/api/v1/me/"); code != http.StatusUnauthorized {
		t.Fatalf("Superset, a forged key of the second prefix: %d %.200s; want 401", code, body)
	}

	// The gateway, default mode, told both prefixes.
	admTok, admYAML := adminToken(t)
	g := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: s, Upstreams: []string{node},
		DataDir: t.TempDir(), Extra: []string{admYAML}, SupersetExtra: []string{"fab_api_key_prefixes: [sst_, acme_]"}})

	for _, tc := range []struct{ name, key string }{
		{"the real key", k.Key},
		{"a forged key", "sst_" + strings.Repeat("B", 43)},
		{"the second prefix", "acme_" + k.Key[4:]},
		{"sst_ and JWT-looking garbage", "sst_eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"},
		{"oversized", "sst_" + strings.Repeat("C", 32<<10)},
	} {
		code, body, h := withBearer(t, g.URL, tc.key, http.MethodGet, "/api/v1/me/")
		if code != http.StatusUnauthorized || !strings.Contains(body, "API keys are not accepted by this gateway") ||
			h.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("gateway, %s: %d %.200s; want 401 with the API key message", tc.name, code, body)
		}
		if strings.Contains(body, "sst_") || strings.Contains(body, "acme_") {
			t.Errorf("gateway, %s: the answer echoes the key", tc.name)
		}
	}
	if n := metric(t, g, "superset_gateway_refusals_total", `credential="fab_api_key"`, `reason="fab_api_key"`); n != 5 {
		t.Errorf("refusals counted as fab_api_key: %v, want 5", n)
	}
	if n := metric(t, g, "superset_gateway_refusals_total", `reason="malformed"`); n != 0 {
		t.Errorf("refusals counted as malformed: %v, want 0 (a key is never a malformed JWT)", n)
	}

	// The management routes: refused whoever asks, even Superset's admin
	// with a valid JWT; nothing reaches Superset.
	jwt := epLogin(t, g.URL, tg.Admin).bearer
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		for _, p := range []string{"/api/v1/security/api_keys/", "/api/v1/security/api_keys/" + k.UUID} {
			if m == http.MethodPost && p != "/api/v1/security/api_keys/" {
				continue
			}
			code, body, _ := withBearer(t, g.URL, jwt, m, p)
			if code != http.StatusForbidden || !strings.Contains(body, "API key management is disabled") {
				t.Errorf("gateway, admin JWT, %s %s: %d %.200s; want 403", m, p, code, body)
			}
		}
	}
	// The admin's JWT still works elsewhere, and the key is still there
	// (the DELETE never reached Superset).
	if code, body, _ := withBearer(t, g.URL, jwt, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Errorf("gateway, admin JWT, GET /api/v1/me/: %d %.200s", code, body)
	}
	if code, body, _ := withBearer(t, node, k.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Errorf("Superset, the key after the gateway refused its DELETE: %d %.200s; want still valid", code, body)
	}

	// Audited, with the reason, never the key.
	code, raw := (&epAPI{base: g.URL, bearer: admTok}).call(t, http.MethodGet, "/-/admin/api/v1/audit?since=10m&limit=1000", nil)
	var out struct {
		Events []map[string]any `json:"events"`
	}
	if code != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("GET audit: %d %.200s", code, raw)
	}
	var keyEv, mgmtEv int
	for _, ev := range out.Events {
		switch {
		case ev["event"] == "fab_api_key.refused" && ev["reason"] == "fab_api_key":
			keyEv++
		case ev["reason"] == "fab_api_key_management":
			mgmtEv++
		}
	}
	if keyEv == 0 || mgmtEv == 0 {
		t.Errorf("audit: %d fab_api_key.refused events, %d fab_api_key_management; want both", keyEv, mgmtEv)
	}
	if strings.Contains(string(raw), k.Key[4:20]) {
		t.Error("the audit log holds the key")
	}
}
