package accesstoken

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGenerateParse(t *testing.T) {
	re := regexp.MustCompile(`^` + Pattern + `$`)
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, id, secret, err := Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(tok) || len(tok) != TokenLen {
			t.Fatalf("token %d does not match the documented pattern", i)
		}
		gid, gsecret, err := Parse(tok)
		if err != nil || gid != id || gsecret != secret {
			t.Fatalf("Parse = %q %v", gid, err)
		}
		if seen[id] {
			t.Fatal("duplicate id")
		}
		seen[id] = true
	}
	tok, _, _, _ := Generate(bytes.NewReader(make([]byte, 30)))
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrMalformed},
		{"sgw_", ErrMalformed},
		{strings.Replace(tok, "sgw_", "sgx_", 1), ErrMalformed},
		{strings.ToUpper(tok), ErrMalformed},
		{tok[:len(tok)-1] + "g", ErrMalformed},
		{tok + "0", ErrMalformed},
		{tok[:19] + "_" + tok[20:], ErrMalformed},
		{tok[:len(tok)-1] + map[bool]string{true: "1", false: "0"}[tok[len(tok)-1] == '0'], ErrChecksum},
		{tok[:10] + map[bool]string{true: "b", false: "a"}[tok[10] == 'a'] + tok[11:], ErrChecksum},
	} {
		if _, _, err := Parse(c.in); !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) = %v, want %v", c.in, err, c.want)
		}
	}
	if !ValidID(strings.Repeat("a", IDLen)) || ValidID("A234567890123456") || ValidID("short") {
		t.Error("ValidID")
	}
}

func TestSealer(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s1, _ := NewSealer([][]byte{k1})
	s21, _ := NewSealer([][]byte{k2, k1})
	v := s1.Seal([]byte("plain"), "ad")
	if bytes.Contains(v, []byte("plain")) {
		t.Fatal("plaintext visible")
	}
	p, stale, err := s21.Open(v, "ad")
	if err != nil || string(p) != "plain" || !stale {
		t.Fatalf("Open with rotated keys = %q %v %v", p, stale, err)
	}
	if _, _, err := s21.Open(v, "other"); !errors.Is(err, ErrSeal) {
		t.Fatal("wrong additional data opened")
	}
	v[len(v)-1] ^= 1
	if _, _, err := s1.Open(v, "ad"); !errors.Is(err, ErrSeal) {
		t.Fatal("tampered value opened")
	}
	if _, _, err := s1.Open([]byte("x"), "ad"); !errors.Is(err, ErrSeal) {
		t.Fatal("garbage opened")
	}
	if _, err := NewSealer(nil); !errors.Is(err, ErrConfig) {
		t.Fatal("no keys accepted")
	}
	if _, err := NewSealer([][]byte{[]byte("short")}); !errors.Is(err, ErrConfig) {
		t.Fatal("short key accepted")
	}
}

func TestNeedsCSRF(t *testing.T) {
	for _, c := range []struct {
		m, p string
		want bool
	}{
		{"GET", "/api/v1/sqllab/results/", false},
		{"POST", "/api/v1/sqllab/execute/", true},
		{"POST", "/api/v1/chart/data", false},
		{"POST", "/api/v1/chart/data/", false},
		{"PUT", "/api/v1/chart/data", true},
		{"DELETE", "/api/v1/dashboard/1", true},
	} {
		if got := NeedsCSRF(c.m, c.p); got != c.want {
			t.Errorf("NeedsCSRF(%s %s) = %v", c.m, c.p, got)
		}
	}
}

func TestTokenFrom(t *testing.T) {
	tok, _, _, _ := Generate(nil)
	for _, c := range []struct {
		vals    []string
		ok, bad bool
	}{
		{nil, false, false},
		{[]string{"Bearer " + tok}, true, false},
		{[]string{"bearer " + tok}, true, false},
		{[]string{"Bearer eyJhbGciOi.eyJzgw_x.sgw_sig"}, false, false}, // a JWT that merely contains sgw_
		{[]string{"Basic eA=="}, false, false},
		{[]string{"Basic eA==, Bearer " + tok}, true, true},
		{[]string{"Bearer " + tok + ",Bearer x"}, true, true},
		{[]string{"Bearer " + tok + " x"}, true, true},
		{[]string{"Bearer x", "Bearer " + tok}, true, true},
		{[]string{"Token " + tok}, true, true},
	} {
		h := map[string][]string{}
		if c.vals != nil {
			h["Authorization"] = c.vals
		}
		got, ok, bad := tokenFrom(h)
		if ok != c.ok || bad != c.bad || (ok && !bad && got != tok) {
			t.Errorf("tokenFrom(%q) = %v %v", c.vals, ok, bad)
		}
	}
}

func TestDerive(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{2}, 64)
	p1, err := DerivePepper(a)
	p2, _ := DerivePepper(a)
	if err != nil || len(p1) != 32 || !bytes.Equal(p1, p2) || bytes.Equal(p1, a[:32]) {
		t.Fatal("DerivePepper is not a stable 32-byte derivation")
	}
	if _, err := DerivePepper([]byte("short")); !errors.Is(err, ErrConfig) {
		t.Fatal("short pepper source accepted")
	}
	ks, err := DeriveSealKeys([][]byte{b, a})
	if err != nil || len(ks) != 2 || bytes.Equal(ks[0], ks[1]) || bytes.Equal(ks[1], p1) {
		t.Fatal("DeriveSealKeys")
	}
	if _, err := NewSealer(ks); err != nil {
		t.Fatal(err)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second:                  "1 second",
		3 * time.Second:              "3 seconds",
		30 * time.Second:             "30 seconds",
		90 * time.Second:             "90 seconds",
		time.Minute:                  "1 minute",
		5 * time.Minute:              "5 minutes",
		90 * time.Minute:             "90 minutes",
		time.Hour:                    "1 hour",
		12 * time.Hour:               "12 hours",
		36 * time.Hour:               "36 hours",
		24 * time.Hour:               "1 day",
		7 * 24 * time.Hour:           "7 days",
		90 * 24 * time.Hour:          "90 days",
		365 * 24 * time.Hour:         "365 days",
		1500 * time.Millisecond:      "1.5s",
		0:                            "0s",
		24*time.Hour + time.Second:   "86401 seconds",
		2*time.Hour + 30*time.Minute: "150 minutes",
		-time.Hour:                   "-1h0m0s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
