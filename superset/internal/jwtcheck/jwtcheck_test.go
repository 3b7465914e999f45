package jwtcheck

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func tok(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30.sig" }

func TestHeader(t *testing.T) {
	allowed := []string{"HS256"}
	cases := []struct {
		token string
		want  error
	}{
		{tok(`{"alg":"HS256","typ":"JWT"}`), nil},
		{tok(`{"alg":"HS256"}`), nil},
		{tok(`{"alg":"HS256","typ":"jwt"}`), nil},
		{tok(`{"alg":"none"}`), ErrAlgNotAllowed},
		{tok(`{"alg":"HS256 "}`), ErrAlgNotAllowed},
		{tok(`{"alg":["HS256"]}`), ErrAlgNotAllowed},
		{tok(`{"alg":"HS256","kid":"1"}`), ErrBadHeader},
		{tok(`{"alg":"HS256","typ":1}`), ErrBadHeader},
		{tok(`null`), ErrMalformed},
		{tok(`[]`), ErrMalformed},
		{"a.b", ErrMalformed},
		{"a.b.c.d", ErrMalformed},
		{"!!.e30.x", ErrMalformed},
		{tok(`{"alg":"HS256","x":"` + string(make([]byte, 2000)) + `"}`), ErrMalformed},
	}
	for _, c := range cases {
		_, err := Header(c.token, allowed)
		if !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("Header(%q) = %v, want %v", c.token, err, c.want)
		}
	}
}

func TestNumericDate(t *testing.T) {
	m := map[string]any{"i": json.Number("1780000000"), "f": json.Number("1780000000.5"), "s": "1", "n": nil, "big": json.Number("1e300"), "x": 12.0}
	if tm, ok, err := NumericDate(m, "i"); err != nil || !ok || !tm.Equal(time.Unix(1780000000, 0)) {
		t.Errorf("int: %v %v %v", tm, ok, err)
	}
	if tm, ok, err := NumericDate(m, "f"); err != nil || !ok || !tm.Equal(time.Unix(1780000000, 5e8)) {
		t.Errorf("float: %v %v %v", tm, ok, err)
	}
	if tm, ok, err := NumericDate(m, "x"); err != nil || !ok || tm.Unix() != 12 {
		t.Errorf("float64: %v %v %v", tm, ok, err)
	}
	for _, k := range []string{"n", "absent"} {
		if _, ok, err := NumericDate(m, k); ok || err != nil {
			t.Errorf("%s: %v %v", k, ok, err)
		}
	}
	for _, k := range []string{"s", "big"} {
		if _, _, err := NumericDate(m, k); !errors.Is(err, ErrNotNumber) {
			t.Errorf("%s: %v", k, err)
		}
	}
}

func FuzzHeader(f *testing.F) {
	f.Add(tok(`{"alg":"HS256","typ":"JWT"}`))
	f.Add(tok(`{"alg":"none"}`))
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		alg, err := Header(s, []string{"HS256", "HS512"})
		if err == nil && alg != "HS256" && alg != "HS512" {
			t.Fatalf("accepted alg %q", alg)
		}
	})
}
