package guestjwt

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"
)

var (
	key = []byte("guest-secret-guest-secret-guest-secret")
	aud = "http://superset.example/"
	t0  = time.Unix(1_780_000_000, 250_000_000)
)

// forge is testkit.Forge.
func forge(t testing.TB, header, claims map[string]any, k []byte) string {
	t.Helper()
	return testkit.Forge(t, header, claims, k)
}

func good() map[string]any {
	iat := float64(t0.UnixNano()) / 1e9
	return map[string]any{
		"user":      map[string]any{"username": "guest"},
		"resources": []any{map[string]any{"type": "dashboard", "id": "3f0c"}},
		"rls_rules": []any{},
		"iat":       iat, "exp": iat + 300, "aud": aud, "type": "guest",
	}
}

// with is testkit.With.
func with(m map[string]any, kv ...any) map[string]any { return testkit.With(m, kv...) }

var hs = map[string]any{"alg": "HS256", "typ": "JWT"}

func TestMintVerify(t *testing.T) {
	ds := int64(4)
	tok, err := Mint(key, MintOptions{
		User:      User{Username: "g", FirstName: "G"},
		Resources: []Resource{{Type: "dashboard", ID: "1"}, {Type: "dashboard", ID: "abc-uuid"}},
		RLSRules:  []RLSRule{{Dataset: &ds, Clause: "x = 1"}},
		Audience:  aud, Now: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Key: key, Audience: aud}.Verify(tok, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if c.User.Username != "g" || len(c.Resources) != 2 || c.Resources[1].ID != "abc-uuid" || len(c.RLSRules) != 1 ||
		*c.RLSRules[0].Dataset != 4 || c.IssuedAt.Sub(t0).Abs() > time.Microsecond || c.ExpiresAt.Sub(c.IssuedAt).Round(time.Millisecond) != 300*time.Second {
		t.Errorf("claims %+v", c)
	}
	if _, err := Mint(key, MintOptions{Now: t0, Algorithm: "RS256"}); err == nil {
		t.Error("minted RS256 with a shared secret")
	}
}

func TestGoldenPyJWT(t *testing.T) {
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Guest         string `json:"guest"`
		GuestSecret   string `json:"guest_secret"`
		GuestAudience string `json:"guest_audience"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	v := Verifier{Key: []byte(g.GuestSecret), Audience: g.GuestAudience}
	c, err := v.Verify(g.Guest, time.Unix(1795395519, 0))
	if err != nil {
		t.Fatal(err)
	}
	if c.IssuedAt.Nanosecond() == 0 {
		t.Error("float iat lost its fraction")
	}
	if c.User.Username != "embed" || c.Resources[0].ID != "5b1a6c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b" || c.RLSRules[0].Clause != "region = 'EU'" {
		t.Errorf("claims %+v", c)
	}
}

func TestAttacks(t *testing.T) {
	v := Verifier{Key: key, Audience: aud}
	now := t0.Add(time.Minute)
	cases := []struct {
		name, token, reason string
		v                   *Verifier
	}{
		{"good", forge(t, hs, good(), key), "", nil},
		{"numeric resource id", forge(t, hs, with(good(), "resources", []any{map[string]any{"type": "dashboard", "id": 7}}), key), "", nil},
		{"alg none", forge(t, map[string]any{"alg": "none"}, good(), nil), "alg_not_allowed", nil},
		{"alg NoNe", forge(t, map[string]any{"alg": "NoNe"}, good(), nil), "alg_not_allowed", nil},
		{"RS256", forge(t, map[string]any{"alg": "RS256"}, good(), key), "alg_not_allowed", nil},
		{"HS512 not allowed", forge(t, map[string]any{"alg": "HS512"}, good(), key), "alg_not_allowed", nil},
		{"RS256 even if allowed", forge(t, map[string]any{"alg": "RS256"}, good(), key), "alg_not_allowed", &Verifier{Key: key, Algorithms: []string{"RS256", "HS256"}}},
		{"wrong key", forge(t, hs, good(), []byte("test-guest-secret-change-me")), "bad_signature", nil},
		{"kid", forge(t, with(hs, "kid", "x"), good(), key), "bad_header", nil},
		{"jku", forge(t, with(hs, "jku", "http://evil/"), good(), key), "bad_header", nil},
		{"expired", forge(t, hs, with(good(), "exp", float64(now.Unix())-1), key), "expired", nil},
		{"no exp", forge(t, hs, with(good(), "exp", nil), key), "missing_exp", nil},
		{"no iat", forge(t, hs, with(good(), "iat", nil), key), "missing_iat", nil},
		{"iat future", forge(t, hs, with(good(), "iat", float64(now.Unix())+100), key), "iat_in_future", nil},
		{"nbf future", forge(t, hs, with(good(), "nbf", float64(now.Unix())+100), key), "not_yet_valid", nil},
		{"wrong aud", forge(t, hs, with(good(), "aud", "http://other/"), key), "wrong_audience", nil},
		{"no aud", forge(t, hs, with(good(), "aud", nil), key), "wrong_audience", nil},
		{"aud list", forge(t, hs, with(good(), "aud", []any{"x", aud}), key), "", nil},
		{"type access", forge(t, hs, with(good(), "type", "access"), key), "wrong_type", nil},
		{"no type", forge(t, hs, with(good(), "type", nil), key), "wrong_type", nil},
		{"empty resources", forge(t, hs, with(good(), "resources", []any{}), key), "missing_resources", nil},
		{"no resources", forge(t, hs, with(good(), "resources", nil), key), "missing_claim", nil},
		{"no rls_rules", forge(t, hs, with(good(), "rls_rules", nil), key), "missing_claim", nil},
		{"no user", forge(t, hs, with(good(), "user", nil), key), "missing_claim", nil},
		{"resource id object", forge(t, hs, with(good(), "resources", []any{map[string]any{"type": "dashboard", "id": map[string]any{}}}), key), "malformed", nil},
		{"resources not list", forge(t, hs, with(good(), "resources", "all"), key), "malformed", nil},
		{"too large", forge(t, hs, with(good(), "pad", strings.Repeat("x", 20<<10)), key), "too_large", nil},
		{"zero verifier", forge(t, hs, good(), key), "bad_signature", &Verifier{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vv := v
			if c.v != nil {
				vv = *c.v
			}
			claims, err := vv.Verify(c.token, now)
			if got := Reason(err); got != c.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, c.reason)
			}
			if (err == nil) != (claims != nil) {
				t.Fatal("claims and error disagree")
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(forge(f, hs, good(), key))
	f.Add(forge(f, hs, with(good(), "resources", []any{map[string]any{"type": "dashboard", "id": 7}}), key))
	f.Add(forge(f, map[string]any{"alg": "none"}, good(), nil))
	f.Add("x.y.z")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verifier{Key: key, Audience: aud}.Verify(tok, t0.Add(time.Second))
		if err != nil {
			if c != nil || Reason(err) == "other" {
				t.Fatalf("claims %v, err %v", c, err)
			}
			return
		}
		if len(c.Resources) == 0 || c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted incomplete claims %+v", c)
		}
	})
}
