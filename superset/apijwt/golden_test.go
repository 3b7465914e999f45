package apijwt

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestGoldenFlaskJWTExtended verifies tokens minted by flask-jwt-extended
// 4.7.1 / PyJWT 2.10.1 (testdata/gen_golden.py) and compares their shape
// with Mint's.
func TestGoldenFlaskJWTExtended(t *testing.T) {
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Secret, Access, Refresh string }
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	v := Verifier{Key: []byte(g.Secret)}
	iat := time.Unix(1795395518, 0) // the tokens' own iat
	a, err := v.Verify(g.Access, Access, iat.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a.Subject != "1" || !a.Fresh || a.JTI == "" || a.CSRF == "" || a.ExpiresAt.Sub(a.IssuedAt) != 15*time.Minute || !a.NotBefore.Equal(a.IssuedAt) {
		t.Errorf("access claims %+v", a)
	}
	if _, err := v.Verify(g.Access, Access, iat.Add(15*time.Minute)); Reason(err) != "expired" {
		t.Errorf("access at exp: %v", err)
	}
	r, err := v.Verify(g.Refresh, Refresh, iat.Add(time.Hour))
	if err != nil || r.Fresh || r.ExpiresAt.Sub(r.IssuedAt) != 30*24*time.Hour {
		t.Errorf("refresh: %v %+v", err, r)
	}
	if _, err := v.Verify(g.Refresh, Access, iat.Add(time.Hour)); Reason(err) != "wrong_type" {
		t.Errorf("refresh as access: %v", err)
	}
	// Mint writes the same claim set in the same order as flask-jwt-extended.
	mine, _ := Mint([]byte(g.Secret), MintOptions{Subject: "1", Fresh: true, Now: iat})
	if keys(t, mine) != keys(t, g.Access) {
		t.Errorf("claim keys differ: %s vs %s", keys(t, mine), keys(t, g.Access))
	}
}

func keys(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}
