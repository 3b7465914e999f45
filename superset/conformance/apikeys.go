package conformance

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// RunAPIKeys states what the gateway relies on about Flask-AppBuilder
// 5.3.0's API keys (FAB_API_KEY_ENABLED = True, with tg.APIKeyPrefixes as
// FAB_API_KEY_PREFIXES) against tg: the fake Superset with Options.APIKeys
// and the real 6.1.0 on the FAB 5.3.0 environment. It makes keys of its
// own and revokes them.
func RunAPIKeys(t *testing.T, tg Target) {
	if len(tg.APIKeyPrefixes) == 0 {
		t.Fatal("conformance: RunAPIKeys needs Target.APIKeyPrefixes (the target's FAB_API_KEY_PREFIXES)")
	}
	t.Run("CreateUseRevoke", func(t *testing.T) { testAPIKeyLifecycle(t, tg) })
	t.Run("ScopesNotEnforced", func(t *testing.T) { testAPIKeyScopesNotEnforced(t, tg) })
	t.Run("HeaderReading", func(t *testing.T) { testAPIKeyHeader(t, tg) })
	t.Run("OtherUsersKey", func(t *testing.T) { testAPIKeyOtherUser(t, tg) })
}

// createdOn is marshmallow's dump of FAB's naive datetime.now(): ISO 8601
// with no zone, so the gateway cannot place it in time without knowing
// Superset's host time zone.
var createdOn = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$`)

// keyChars is what follows the prefix: secrets.token_urlsafe(32).
var keyChars = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// makeKey creates a key as cr with only a Bearer JWT (FAB's APIs are
// exempt from CSRF) and returns the JWT and the result.
func makeKey(t *testing.T, tg Target, cr Credentials, body map[string]any) (string, map[string]any) {
	t.Helper()
	c := newClient(t, tg)
	jwt := c.mustAPILogin(cr, false).Access
	r := c.do(http.MethodPost, "/api/v1/security/api_keys/", body, bearer(jwt))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/security/api_keys/ as %s: %d %.300s, want 201", cr.Username, r.StatusCode, r.body)
	}
	res, _ := r.json(t)["result"].(map[string]any)
	if res == nil {
		t.Fatalf("POST /api/v1/security/api_keys/: no result: %s", r.body)
	}
	return jwt, res
}

// An admin makes a key; it is the first prefix + token_urlsafe(32), shown
// once; it signs in on a @protect'ed API as its owner; its record (GET
// /<uuid>, with the key itself) holds scopes, active and a zone-less
// created_on; DELETE revokes it (200) and it is then refused (401).
func testAPIKeyLifecycle(t *testing.T, tg Target) {
	jwt, res := makeKey(t, tg, tg.Admin, map[string]any{"name": "conformance", "scopes": "dashboards:read,api:read"})
	key, _ := res["key"].(string)
	uuid, _ := res["uuid"].(string)
	prefix := tg.APIKeyPrefixes[0]
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || !keyChars.MatchString(rest) || res["key_prefix"] != prefix || uuid == "" {
		t.Fatalf("new key: %v; want %s + 43 base64url characters, key_prefix %s", res, prefix, prefix)
	}
	if s, _ := res["created_on"].(string); !createdOn.MatchString(s) {
		t.Errorf("created_on %q: want ISO 8601 without a zone", res["created_on"])
	}
	c := newClient(t, tg)
	me := c.get("/api/v1/me/", bearer(key))
	if me.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/me/ with the key: %d %.300s", me.StatusCode, me.body)
	}
	if u, _ := me.json(t)["result"].(map[string]any); u == nil || u["username"] != tg.Admin.Username {
		t.Errorf("GET /api/v1/me/ with the key: %s; want the owner", me.body)
	}
	rec := c.get("/api/v1/security/api_keys/"+uuid, bearer(key))
	if rec.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/security/api_keys/<uuid> with the key itself: %d %.300s", rec.StatusCode, rec.body)
	}
	r, _ := rec.json(t)["result"].(map[string]any)
	if r == nil || r["uuid"] != uuid || r["scopes"] != "dashboards:read,api:read" || r["active"] != true || r["revoked_on"] != nil {
		t.Errorf("the key's record: %s", rec.body)
	}
	if _, has := r["key"]; has {
		t.Errorf("the key's record shows the key: %s", rec.body)
	}
	del := c.do(http.MethodDelete, "/api/v1/security/api_keys/"+uuid, nil, bearer(jwt))
	if del.StatusCode != http.StatusOK {
		t.Fatalf("DELETE the key: %d %.300s", del.StatusCode, del.body)
	}
	if r := c.get("/api/v1/me/", bearer(key)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/me/ with the revoked key: %d %.300s, want 401", r.StatusCode, r.body)
	}
	rec = c.get("/api/v1/security/api_keys/"+uuid, bearer(jwt))
	if r, _ := rec.json(t)["result"].(map[string]any); r == nil || r["active"] != true || r["revoked_on"] == nil {
		// FAB sets revoked_on and leaves active True: is_active is
		// computed, the column is not cleared.
		t.Errorf("the revoked key's record: %s; want revoked_on set (active stays true)", rec.body)
	}
	// FAB's response_401 for a key it cannot validate.
	wantJSON(t, c.get("/api/v1/me/", bearer(prefix+strings.Repeat("A", 43))), http.StatusUnauthorized, `{"message":"Not authorized"}`)
}

// FAB stores scopes but never checks them: a dashboards:read key writes a
// dashboard and makes another key.
func testAPIKeyScopesNotEnforced(t *testing.T, tg Target) {
	jwt, res := makeKey(t, tg, tg.Admin, map[string]any{"name": "narrow", "scopes": "dashboards:read"})
	key, _ := res["key"].(string)
	c := newClient(t, tg)
	r := c.do(http.MethodPost, "/api/v1/security/api_keys/", map[string]any{"name": "made-by-a-key"}, bearer(key))
	if r.StatusCode != http.StatusCreated {
		t.Errorf("a dashboards:read key making a key: %d %.200s; want 201 (FAB ignores scopes)", r.StatusCode, r.body)
	}
	if more, _ := r.json(t)["result"].(map[string]any); more != nil {
		c.do(http.MethodDelete, "/api/v1/security/api_keys/"+more["uuid"].(string), nil, bearer(jwt))
	}
	c.do(http.MethodDelete, "/api/v1/security/api_keys/"+res["uuid"].(string), nil, bearer(jwt))
}

// FAB reads a key only as "bearer " (any case, one space) + the key; a
// key after a tab goes to flask-jwt-extended as a JWT and fails there.
func testAPIKeyHeader(t *testing.T, tg Target) {
	jwt, res := makeKey(t, tg, tg.Admin, map[string]any{"name": "header", "scopes": "api:read"})
	key, _ := res["key"].(string)
	c := newClient(t, tg)
	for _, h := range []string{"bearer " + key, "BEARER " + key, "Bearer  " + key + " "} {
		if r := c.get("/api/v1/me/", header("Authorization", h)); r.StatusCode != http.StatusOK {
			t.Errorf("Authorization %q…: %d, want 200", h[:9], r.StatusCode)
		}
	}
	if r := c.get("/api/v1/me/", header("Authorization", "Bearer\t"+key)); r.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("Authorization Bearer<TAB>key: %d %.200s, want 422 (flask-jwt-extended: not a JWT)", r.StatusCode, r.body)
	}
	c.do(http.MethodDelete, "/api/v1/security/api_keys/"+res["uuid"].(string), nil, bearer(jwt))
}

// A key's record is its owner's only: another user's uuid is 404, for
// the key of anyone else as for no key.
func testAPIKeyOtherUser(t *testing.T, tg Target) {
	jwt, res := makeKey(t, tg, tg.Admin, map[string]any{"name": "owner", "scopes": "api:read"})
	uuid, _ := res["uuid"].(string)
	c := newClient(t, tg)
	if r := c.get("/api/v1/security/api_keys/"+uuid+"x", bearer(jwt)); r.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown uuid: %d, want 404", r.StatusCode)
	}
	// Gamma may make keys too (every role has the ApiKey permissions
	// after `superset init`), but not read or revoke admin's.
	gjwt, gres := makeKey(t, tg, tg.Gamma, map[string]any{"name": "gamma"})
	other := newClient(t, tg)
	if r := other.get("/api/v1/security/api_keys/"+uuid, bearer(gjwt)); r.StatusCode != http.StatusNotFound {
		t.Errorf("Gamma reads admin's key record: %d, want 404", r.StatusCode)
	}
	if r := other.do(http.MethodDelete, "/api/v1/security/api_keys/"+uuid, nil, bearer(gjwt)); r.StatusCode != http.StatusNotFound {
		t.Errorf("Gamma revokes admin's key: %d, want 404", r.StatusCode)
	}
	other.do(http.MethodDelete, "/api/v1/security/api_keys/"+gres["uuid"].(string), nil, bearer(gjwt))
	c.do(http.MethodDelete, "/api/v1/security/api_keys/"+uuid, nil, bearer(jwt))
}
