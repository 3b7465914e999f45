package flaskcookie

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// TestCSRFGolden checks against Flask-WTF 1.2.2's generate_csrf output
// (testdata/gen_csrf.py).
func TestCSRFGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/csrf.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Secret, Raw, Signed string
		Timestamp           int64
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(g.Timestamp, 0)
	if got := SignCSRF(g.Raw, g.Secret, ts); got != g.Signed {
		t.Errorf("SignCSRF = %s, want %s", got, g.Signed)
	}
	raw, err := VerifyCSRF(g.Signed, g.Secret, 7*24*time.Hour, ts.Add(time.Hour))
	if err != nil || raw != g.Raw {
		t.Errorf("VerifyCSRF = %q, %v", raw, err)
	}
	if _, err := VerifyCSRF(g.Signed, "other", 0, ts); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := VerifyCSRF(g.Signed, g.Secret, time.Hour, ts.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Errorf("old token: %v", err)
	}
	// A session-cookie signature is not a CSRF signature (different salt and
	// key derivation).
	c, _ := Encode(Session{"a": "b"}, g.Secret, ts)
	if _, err := VerifyCSRF(c, g.Secret, 0, ts); !errors.Is(err, ErrBadSignature) {
		t.Errorf("cookie as csrf: %v", err)
	}
}

func FuzzVerifyCSRF(f *testing.F) {
	f.Add("IjU4NGQzMzVlMzhjM2QyNDg5ODEzNzM2OTEyODQwOTFiYWE4MWI4MWIi.ahilAA.d5C07JJdLWttSVDvafaFDUj8vig")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := VerifyCSRF(s, "golden-secret-key-for-tests", 0, time.Unix(1780000000, 0))
		if err == nil && SignCSRF(raw, "golden-secret-key-for-tests", time.Unix(1780000000, 0)) == "" {
			t.Fatal("empty re-sign")
		}
	})
}
