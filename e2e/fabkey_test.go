//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
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
	return ownSuperset(t, harness.Options{Venv: venv, FABAPIKeys: true, FABAPIKeyPrefixes: prefixes})
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

// TestFABAPIKeys: what Superset 6.1.0 + FAB 5.3.0 do with API keys
// (checked at Superset directly), then both superset.fab_api_keys modes
// from outside, on one Superset.
func TestFABAPIKeys(t *testing.T) {
	s, c := fabSuperset(t, []string{"sst_", "acme_"})
	// The fake's API keys hold to the same facts (fakesuperset's
	// TestConformanceAPIKeys runs this against it).
	t.Run("conformance", func(t *testing.T) { conformance.RunAPIKeys(t, c.Target) })
	t.Run("refuse", func(t *testing.T) { fabKeysRefuse(t, s, c) })
	t.Run("enforce", func(t *testing.T) { fabKeysEnforce(t, s, c) })
}

// fabKeysRefuse: Superset's own behaviour, then the gateway's default
// superset.fab_api_keys: refuse from the attacker's side.
func fabKeysRefuse(t *testing.T, s *harness.Superset, c *harness.Cluster) {
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
	t.Logf("FAB 5.3.0 created_on as dumped: %q", k.CreatedOn)
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
	} else {
		t.Logf("Superset, a forged key: %d %s", code, strings.TrimSpace(body))
	}
	// Who may make keys: the roles after `superset init` (recorded in
	// docs/superset-6.1.md).
	for _, cr := range []struct {
		name string
		pw   string
	}{{"alice", tg.Alpha.Password}, {"bob", tg.Gamma.Password}} {
		ua, err := harness.NewAPI(ctx, node, cr.name, cr.pw)
		if err == nil {
			err = ua.FetchCSRF(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		err = ua.Do(ctx, http.MethodPost, "/api/v1/security/api_keys/", map[string]any{"name": "x"}, nil)
		t.Logf("Superset, %s (POST /api/v1/security/api_keys/): %v", cr.name, err)
	}
	// A key whose header FAB does not read as a key (tab after Bearer)
	// goes to flask-jwt-extended as a JWT.
	req, _ := http.NewRequest(http.MethodGet, node+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer\t"+k.Key)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Logf("Superset, Bearer<TAB>key: %d", resp.StatusCode)
		if resp.StatusCode == http.StatusOK {
			t.Error("Superset accepted a tab-separated key; the gateway's reading must change")
		}
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
	time.Sleep(1100 * time.Millisecond) // past the new store's global epoch (whole-second iat)
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

// fabKeysEnforce: superset.fab_api_keys: enforce against the real FAB
// 5.3.0: a key made through the gateway works within its scopes, is
// refused after its owner's epoch, after its revocation (through the
// gateway at once, at Superset within the cache TTL), and keys the gateway
// did not see made are refused.
func fabKeysEnforce(t *testing.T, s *harness.Superset, c *harness.Cluster) {
	tg := c.Target
	node := c.Nodes[0].URL
	admTok, admYAML := adminToken(t)
	g := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: s, Upstreams: []string{node},
		DataDir: t.TempDir(), Extra: []string{admYAML},
		SupersetExtra: []string{"fab_api_keys: enforce", "fab_api_key_prefixes: [sst_, acme_]", "fab_api_key_cache_ttl: 2s"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A new store stamps the global epoch at the gateway's first start,
	// and a JWT's iat is whole seconds: one signed in that same second
	// is refused. Sign in from the next second on.
	time.Sleep(1100 * time.Millisecond)
	viaGateway := func() *harness.API {
		t.Helper()
		a, err := harness.NewAPI(ctx, g.URL, "admin", tg.Admin.Password)
		if err == nil {
			err = a.FetchCSRF(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := viaGateway()
	k := createFABKey(t, a, "e2e-enforce", "dashboards:read,api:read")
	dash := "/api/v1/dashboard/" + strconv.Itoa(c.Target.DashboardID)

	// Within its scopes, as its owner.
	if code, body, _ := withBearer(t, g.URL, k.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK || !strings.Contains(body, `"username":"admin"`) {
		t.Fatalf("gateway, the key, GET /api/v1/me/: %d %.300s", code, body)
	}
	if code, body, _ := withBearer(t, g.URL, k.Key, http.MethodGet, dash); code != http.StatusOK {
		t.Fatalf("gateway, the key, GET %s: %d %.300s", dash, code, body)
	}
	// Out of scope: refused at the gateway (Superset would have let it).
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, dash},
		{http.MethodPost, "/api/v1/security/api_keys/"},
		{http.MethodDelete, "/api/v1/security/api_keys/" + k.UUID},
	} {
		if code, body, _ := withBearer(t, g.URL, k.Key, tc.method, tc.path); code != http.StatusForbidden {
			t.Errorf("gateway, a read key, %s %s: %d %.200s; want 403", tc.method, tc.path, code, body)
		}
	}
	narrow := createFABKey(t, a, "e2e-narrow", "dashboards:read")
	if code, body, _ := withBearer(t, g.URL, narrow.Key, http.MethodGet, "/api/v1/chart/"); code != http.StatusForbidden ||
		!strings.Contains(body, "API key lacks the scope charts:read") {
		t.Errorf("gateway, a dashboards:read key, GET /api/v1/chart/: %d %.200s", code, body)
	}
	none := createFABKey(t, a, "e2e-none", "")
	if code, body, _ := withBearer(t, g.URL, none.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusForbidden ||
		!strings.Contains(body, "API key has no scopes") {
		t.Errorf("gateway, a key without scopes: %d %.200s", code, body)
	}

	// Attacker's side: forged, another prefix, garbage, a key made
	// around the gateway (at Superset directly).
	da, err := harness.NewAPI(ctx, node, "admin", tg.Admin.Password)
	if err == nil {
		err = da.FetchCSRF(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	around := createFABKey(t, da, "e2e-around", "api:read")
	for _, tc := range []struct{ name, key string }{
		{"forged", "sst_" + strings.Repeat("D", 43)},
		{"other prefix", "acme_" + k.Key[4:]},
		{"garbage", "sst_eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"},
		{"oversized", "sst_" + strings.Repeat("E", 32<<10)},
		{"made around the gateway", around.Key},
	} {
		if code, body, _ := withBearer(t, g.URL, tc.key, http.MethodGet, "/api/v1/me/"); code != http.StatusUnauthorized {
			t.Errorf("gateway, %s: %d %.200s; want 401", tc.name, code, body)
		}
	}
	if n := metric(t, g, "superset_gateway_refusals_total", `credential="fab_api_key"`, `reason="fab_api_key_unknown"`); n != 3 {
		t.Errorf("unknown-key refusals: %v, want 3 (forged, other prefix, made around)", n)
	}

	// Revoked at Superset directly: refused once the cache TTL (2s) ran out.
	direct := createFABKey(t, a, "e2e-direct", "api:read")
	if code, _, _ := withBearer(t, g.URL, direct.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Fatalf("gateway, a fresh key: %d", code)
	}
	if err := da.Do(ctx, http.MethodDelete, "/api/v1/security/api_keys/"+direct.UUID, nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if code, body, _ := withBearer(t, g.URL, direct.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusUnauthorized || !strings.Contains(body, "API key has been revoked") {
		t.Errorf("gateway, a key revoked at Superset, after the cache TTL: %d %.200s", code, body)
	}

	// Revoked through the gateway: refused at once (well inside the TTL).
	viaGW := createFABKey(t, a, "e2e-via", "api:read")
	if code, _, _ := withBearer(t, g.URL, viaGW.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Fatalf("gateway, a fresh key: %d", code)
	}
	if err := a.Do(ctx, http.MethodDelete, "/api/v1/security/api_keys/"+viaGW.UUID, nil, nil); err != nil {
		t.Fatalf("DELETE the key through the gateway: %v", err)
	}
	if code, body, _ := withBearer(t, g.URL, viaGW.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusUnauthorized {
		t.Errorf("gateway, a key just revoked through it: %d %.200s", code, body)
	}

	// The owner's epoch: the key made before it is refused (it is still
	// valid at Superset); a key made after it works.
	if code, out := adminPost(t, g.URL, admTok, "users/"+strconv.Itoa(s.AdminID())+"/revoke"); code != http.StatusOK {
		t.Fatalf("stamp admin's epoch: %d %v", code, out)
	}
	time.Sleep(10 * time.Millisecond)
	if code, body, _ := withBearer(t, g.URL, k.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusUnauthorized {
		t.Errorf("gateway, a key made before its owner's epoch: %d %.200s; want 401", code, body)
	}
	if code, _, _ := withBearer(t, node, k.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Errorf("Superset no longer takes the key (%d): the epoch test proves nothing", code)
	}
	if n := metric(t, g, "superset_gateway_refusals_total", `credential="fab_api_key"`, `reason="revoked_user"`); n < 1 {
		t.Errorf("epoch refusals of keys: %v", n)
	}
	time.Sleep(1100 * time.Millisecond) // the new JWT's iat past the epoch's second
	after := createFABKey(t, viaGateway(), "e2e-after", "api:read")
	if code, body, _ := withBearer(t, g.URL, after.Key, http.MethodGet, "/api/v1/me/"); code != http.StatusOK {
		t.Errorf("gateway, a key made after the epoch: %d %.200s", code, body)
	}

	// Audited with the key's uuid as subject, never the key.
	code, raw := (&epAPI{base: g.URL, bearer: admTok}).call(t, http.MethodGet, "/-/admin/api/v1/audit?since=10m&limit=1000", nil)
	if code != http.StatusOK {
		t.Fatalf("GET audit: %d", code)
	}
	if !strings.Contains(string(raw), `"fab_api_key:`+k.UUID+`"`) {
		t.Error("no audit event names the key by its uuid")
	}
	for _, key := range []string{k.Key, narrow.Key, none.Key, after.Key} {
		if strings.Contains(string(raw), key[4:]) {
			t.Error("the audit log holds a key")
		}
	}
}
