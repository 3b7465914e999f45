package fabkey

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
)

// A key as FAB 5.3.0 makes one: prefix + secrets.token_urlsafe(32).
const key = "sst_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"

func header(vals ...string) http.Header {
	h := http.Header{}
	for _, v := range vals {
		h.Add("Authorization", v)
	}
	return h
}

func TestKeyReadsTheHeaderAsFABAndJWTExtendedDo(t *testing.T) {
	d := NewDetector(nil)
	for _, tc := range []struct {
		name string
		h    http.Header
		key  string // "" means no key
	}{
		{"plain", header("Bearer " + key), key},
		{"lower-case scheme", header("bearer " + key), key},
		{"upper-case scheme", header("BEARER " + key), key},
		{"trailing Python whitespace stripped", header("Bearer " + key + "\x85\xa0 "), key},
		{"leading spaces after the scheme", header("Bearer   " + key), key},
		{"tab after the scheme (FAB misses it, jwt-extended's split sees it)", header("Bearer\t" + key), key},
		{"NEL after the scheme", header("Bearer\x85" + key), key},
		{"two fields joined as gunicorn joins them", header("Bearer "+key, "Bearer x"), key + ",Bearer x"},
		{"key-looking JWT garbage", header("Bearer sst_eyJhbGciOiJIUzI1NiJ9.e30.x"), "sst_eyJhbGciOiJIUzI1NiJ9.e30.x"},
		{"prefix alone", header("Bearer sst_"), "sst_"},
		{"a JWT", header("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"), ""},
		{"a gateway access token", header("Bearer sgw_abc"), ""},
		{"another prefix", header("Bearer acme_" + key[4:]), ""},
		{"prefix case differs (FAB's startswith is case-sensitive)", header("Bearer SST_" + key[4:]), ""},
		{"Basic scheme", header("Basic " + key), ""},
		{"no header", http.Header{}, ""},
		{"scheme only", header("Bearer "), ""},
		{"prefix inside the token", header("Bearer x" + key), ""},
	} {
		got, ok := d.Key(tc.h)
		if ok != (tc.key != "") || got != tc.key {
			t.Errorf("%s: Key = %q, %v; want %q", tc.name, got, ok, tc.key)
		}
	}
}

func TestKeyConfiguredPrefixes(t *testing.T) {
	d := NewDetector([]string{"acme_", "sst_"})
	for _, v := range []string{"Bearer acme_abc", "Bearer sst_abc"} {
		if _, ok := d.Key(header(v)); !ok {
			t.Errorf("%q: not a key with prefixes acme_, sst_", v)
		}
	}
	only := NewDetector([]string{"acme_"})
	if _, ok := only.Key(header("Bearer sst_abc")); ok {
		t.Error("sst_ is a key with prefixes [acme_]: the configured list replaces FAB's default, as FAB_API_KEY_PREFIXES does")
	}
}

func TestIsManagementPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/api/v1/security/api_keys":           true,
		"/api/v1/security/api_keys/":          true,
		"/api/v1/security/api_keys/abc-uuid":  true,
		"/api/v1/security/api_keys/_info":     true,
		"//api/v1/security/api_keys/":         true,
		"/api/v1/security/x/../api_keys/":     true,
		"/api/v1/security/./api_keys":         true,
		"/api/v1/security/api_keysx":          false,
		"/api/v1/security/API_KEYS/":          false, // Flask routes case-sensitively: a 404 there
		"/api/v1/security/login":              false,
		"/api/v1/security/users/":             false,
		"/api/v1/security/api_keys_elsewhere": false,
	} {
		if got := IsManagementPath(p); got != want {
			t.Errorf("IsManagementPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestRefuser(t *testing.T) {
	f := NewRefuser([]string{"sst_"})
	r := httptest.NewRequest(http.MethodGet, "/api/v1/me/", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	p, d, err := f.Authenticate(context.Background(), r, &principal.Exchange{})
	if err != nil || d.Allow || d.Reason != policy.ReasonFABAPIKey || p.Kind != principal.FABAPIKey || p.UserID != "" {
		t.Fatalf("key: %+v %+v %v; want a fab_api_key refusal of kind fab_api_key and no user", p, d, err)
	}
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
	if p, d, err := f.Authenticate(context.Background(), r, &principal.Exchange{}); err != nil || !d.Allow || p.Kind != principal.None {
		t.Fatalf("JWT: %+v %+v %v; want left to the JWT stage", p, d, err)
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		r := httptest.NewRequest(m, "/api/v1/security/api_keys/", nil)
		if d := f.Check(r); d.Allow || d.Reason != policy.ReasonFABAPIKeyManagement {
			t.Errorf("%s /api/v1/security/api_keys/: %+v, want fab_api_key_management", m, d)
		}
	}
	if d := f.Check(httptest.NewRequest(http.MethodGet, "/api/v1/me/", nil)); !d.Allow {
		t.Errorf("/api/v1/me/: %+v, want allowed", d)
	}
}

// The detector's promise to the pipeline: whatever bearer either reading
// sees starting with a prefix is a key; nothing else is; it never panics.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"Bearer " + key, "bearer\x85sst_x", "Bearer sst_a,Bearer b", "Bearer eyJ.a.b",
		"Bearer  sst_\xa0", "Bearer", "sst_x", "Bearer sgw_x", "BEARER\tsst_" + strings.Repeat("A", 5000)} {
		f.Add(s)
	}
	d := NewDetector([]string{"sst_", "acme_"})
	f.Fuzz(func(t *testing.T, v string) {
		h := header(v)
		got, ok := d.Key(h)
		if ok != (got != "") {
			t.Fatalf("Key(%q) = %q, %v", v, got, ok)
		}
		if ok && !strings.HasPrefix(got, "sst_") && !strings.HasPrefix(got, "acme_") {
			t.Fatalf("Key(%q) = %q: not prefixed", v, got)
		}
		if tok, fab := fabReading(v); fab && (strings.HasPrefix(tok, "sst_") || strings.HasPrefix(tok, "acme_")) && !ok {
			t.Fatalf("Key(%q): FAB reads key %q, the detector none", v, tok)
		}
		if ok && !strings.Contains(v, got) {
			t.Fatalf("Key(%q) = %q: not from the header", v, got)
		}
	})
}
