package apijwt

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"
)

var (
	key = []byte("a-superset-secret-key-of-32-bytes!!")
	t0  = time.Unix(1_780_000_000, 0)
)

// forge is testkit.Forge.
func forge(t testing.TB, header, claims map[string]any, k []byte) string {
	t.Helper()
	return testkit.Forge(t, header, claims, k)
}

func signRaw(signed string, k []byte) string {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func goodClaims() map[string]any {
	iat := t0.Unix()
	return map[string]any{"fresh": true, "iat": iat, "jti": "j1", "type": "access", "sub": "2", "nbf": iat, "csrf": "c", "exp": iat + 900}
}

func hs() map[string]any { return map[string]any{"alg": "HS256", "typ": "JWT"} }

// with is testkit.With.
func with(m map[string]any, kv ...any) map[string]any { return testkit.With(m, kv...) }

func TestMintVerify(t *testing.T) {
	tok, err := Mint(key, MintOptions{Subject: "7", Fresh: true, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Key: key}.Verify(tok, Access, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "7" || c.Type != Access || !c.Fresh || c.JTI == "" || c.CSRF == "" ||
		!c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(15*time.Minute)) || !c.NotBefore.Equal(t0) {
		t.Errorf("claims = %+v", c)
	}
	rt, _ := Mint(key, MintOptions{Subject: "7", Type: Refresh, Now: t0})
	c, err = Verifier{Key: key}.Verify(rt, Refresh, t0.Add(29*24*time.Hour))
	if err != nil || c.Type != Refresh || c.Fresh {
		t.Fatalf("refresh: %v %+v", err, c)
	}
	if _, err := Mint(nil, MintOptions{Subject: "1", Now: t0}); !errors.Is(err, ErrMint) {
		t.Errorf("mint without key: %v", err)
	}
}

type attackCase struct {
	name   string
	token  string
	want   Type
	reason string
}

func attackCases(t testing.TB) []attackCase {
	now := t0.Add(time.Minute)
	return []attackCase{
		{"good", forge(t, hs(), goodClaims(), key), Access, ""},
		{"alg none", forge(t, map[string]any{"alg": "none"}, goodClaims(), nil), Access, "alg_not_allowed"},
		{"alg None", forge(t, map[string]any{"alg": "None", "typ": "JWT"}, goodClaims(), nil), Access, "alg_not_allowed"},
		{"alg NONE", forge(t, map[string]any{"alg": "NONE"}, goodClaims(), nil), Access, "alg_not_allowed"},
		{"alg nOnE signed", forge(t, map[string]any{"alg": "nOnE"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"alg hs256 lower", forge(t, map[string]any{"alg": "hs256"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"alg missing", forge(t, map[string]any{"typ": "JWT"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"HS512", forge(t, map[string]any{"alg": "HS512"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"RS256 key confusion", forge(t, map[string]any{"alg": "RS256"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"ES256", forge(t, map[string]any{"alg": "ES256"}, goodClaims(), key), Access, "alg_not_allowed"},
		{"wrong key", forge(t, hs(), goodClaims(), []byte("CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET")), Access, "bad_signature"},
		{"empty signature", forge(t, hs(), goodClaims(), nil), Access, "bad_signature"},
		{"jwk header", forge(t, with(hs(), "jwk", map[string]any{"kty": "oct", "k": "AAAA"}), goodClaims(), key), Access, "bad_header"},
		{"jku header", forge(t, with(hs(), "jku", "https://evil.example/jwks"), goodClaims(), key), Access, "bad_header"},
		{"kid header", forge(t, with(hs(), "kid", "../../dev/null"), goodClaims(), key), Access, "bad_header"},
		{"x5u header", forge(t, with(hs(), "x5u", "https://evil.example/c"), goodClaims(), key), Access, "bad_header"},
		{"crit header", forge(t, with(hs(), "crit", []string{"b64"}, "b64", false), goodClaims(), key), Access, "bad_header"},
		{"typ other", forge(t, with(hs(), "typ", "at+jwt"), goodClaims(), key), Access, "bad_header"},
		{"expired", forge(t, hs(), with(goodClaims(), "exp", t0.Unix()+60), key), Access, "expired"},
		{"exp now", forge(t, hs(), with(goodClaims(), "exp", now.Unix()), key), Access, "expired"},
		{"missing exp", forge(t, hs(), with(goodClaims(), "exp", nil), key), Access, "missing_exp"},
		{"exp string", forge(t, hs(), with(goodClaims(), "exp", "9999999999"), key), Access, "malformed"},
		{"nbf future", forge(t, hs(), with(goodClaims(), "nbf", now.Unix()+10), key), Access, "not_yet_valid"},
		{"missing iat", forge(t, hs(), with(goodClaims(), "iat", nil), key), Access, "missing_iat"},
		{"iat far future", forge(t, hs(), with(goodClaims(), "iat", now.Unix()+86400, "exp", now.Unix()+90000), key), Access, "iat_in_future"},
		{"missing sub", forge(t, hs(), with(goodClaims(), "sub", nil), key), Access, "missing_sub"},
		{"numeric sub", forge(t, hs(), with(goodClaims(), "sub", 2), key), Access, "invalid_sub"},
		{"object sub", forge(t, hs(), with(goodClaims(), "sub", map[string]any{"id": 1}), key), Access, "invalid_sub"},
		{"empty sub", forge(t, hs(), with(goodClaims(), "sub", ""), key), Access, "invalid_sub"},
		{"refresh as access", forge(t, hs(), with(goodClaims(), "type", "refresh"), key), Access, "wrong_type"},
		{"access as refresh", forge(t, hs(), goodClaims(), key), Refresh, "wrong_type"},
		{"missing type", forge(t, hs(), with(goodClaims(), "type", nil), key), "", "wrong_type"},
		{"guest type", forge(t, hs(), with(goodClaims(), "type", "guest"), key), "", "wrong_type"},
		{"16 KB", forge(t, hs(), with(goodClaims(), "pad", strings.Repeat("x", 16<<10)), key), Access, "too_large"},
		{"two segments", "a.b", Access, "malformed"},
		{"garbage", "!!!.!!!.!!!", Access, "malformed"},
		{"claims not json, unsigned", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + ".bm90anNvbg.c2ln", Access, "bad_signature"},
		{"claims not json, signed", signRaw(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`))+".bm90anNvbg", key), Access, "malformed"},
		{"padded segment", strings.Replace(forge(t, hs(), goodClaims(), key), ".", "=.", 1), Access, "malformed"},
		{"empty", "", Access, "malformed"},
	}
}

// TestAttacks is the attacker's side: each forged or stale token is refused
// with its own reason.
func TestAttacks(t *testing.T) {
	v := Verifier{Key: key}
	now := t0.Add(time.Minute)
	for _, c := range attackCases(t) {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(c.token, c.want, now)
			if got := Reason(err); got != c.reason {
				t.Fatalf("reason = %q (%v), want %q", got, err, c.reason)
			}
			if (err == nil) != (claims != nil) {
				t.Fatalf("claims %v with err %v", claims, err)
			}
		})
	}
}

func TestZeroVerifierRefuses(t *testing.T) {
	tok, _ := Mint(key, MintOptions{Subject: "1", Now: t0})
	if _, err := (Verifier{}).Verify(tok, "", t0); Reason(err) != "bad_signature" {
		t.Fatalf("zero verifier: %v", err)
	}
}

func TestLeeway(t *testing.T) {
	tok := forge(t, hs(), with(goodClaims(), "iat", t0.Unix()+3, "nbf", t0.Unix()+3), key)
	if _, err := (Verifier{Key: key}).Verify(tok, Access, t0); Reason(err) != "not_yet_valid" {
		t.Fatalf("no leeway: %v", err)
	}
	if _, err := (Verifier{Key: key, Leeway: 5 * time.Second}).Verify(tok, Access, t0); err != nil {
		t.Fatalf("leeway: %v", err)
	}
}

func TestReason(t *testing.T) {
	if Reason(nil) != "" || Reason(errors.New("x")) != "other" {
		t.Fatal("Reason of nil/other")
	}
}

func FuzzVerify(f *testing.F) {
	for _, c := range attackCases(f) {
		f.Add(c.token)
	}
	f.Add(forge(f, hs(), with(goodClaims(), "fresh", 1780000500), key))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verifier{Key: key}.Verify(tok, "", t0.Add(time.Minute))
		if err != nil {
			if c != nil || Reason(err) == "other" {
				t.Fatalf("claims %v / unclassified err %v", c, err)
			}
			return
		}
		if c.Subject == "" || (c.Type != Access && c.Type != Refresh) || c.IssuedAt.IsZero() || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted incomplete claims %+v", c)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	tok, _ := Mint(key, MintOptions{Subject: "42", Now: t0})
	v := Verifier{Key: key}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, Access, t0); err != nil {
			b.Fatal(err)
		}
	}
}
