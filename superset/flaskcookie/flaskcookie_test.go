package flaskcookie

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

type golden struct {
	Secret  string `json:"secret"`
	Vectors []struct {
		Name      string `json:"name"`
		Cookie    string `json:"cookie"`
		Timestamp int64  `json:"timestamp"`
	} `json:"vectors"`
}

func loadGolden(t testing.TB) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGolden decodes cookies produced by Flask 2.3.3 / itsdangerous 2.2.0
// (testdata/gen_golden.py, run with Superset 6.1.0's virtualenv).
func TestGolden(t *testing.T) {
	g := loadGolden(t)
	want := map[string]Session{
		"plain_user": {"_user_id": "1", "_fresh": true, "csrf_token": "0123456789abcdef0123456789abcdef01234567"},
		"flashes_tuple": {
			"_flashes":   []any{Tuple{"warning", "Invalid login. Please try again."}},
			"csrf_token": strings.Repeat("aa", 20),
		},
		"compressed": {"_user_id": "42", "csrf_token": strings.Repeat("ab", 20), "pad": strings.Repeat("x", 300)},
		"tagged": {
			"b":        []byte("\x00\x01hello"),
			"m":        Markup("<b>hi</b>"),
			"u":        UUID{0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78},
			"d":        time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
			"di":       map[string]any{" t": "x"},
			"_user_id": nil,
		},
		"numeric_user": {"_user_id": json.Number("7")},
		"empty":        {},
	}
	wantUser := map[string]string{"plain_user": "1", "compressed": "42", "numeric_user": "7"}
	for _, v := range g.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			now := time.Unix(v.Timestamp, 0).Add(time.Hour)
			s, ts, err := DecodeTimestamp(v.Cookie, g.Secret, 31*24*time.Hour, now)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if ts.Unix() != v.Timestamp {
				t.Errorf("timestamp = %d, want %d", ts.Unix(), v.Timestamp)
			}
			if !reflect.DeepEqual(s, want[v.Name]) {
				t.Errorf("session = %#v\nwant %#v", s, want[v.Name])
			}
			uid, ok := s.UserID()
			if uid != wantUser[v.Name] || ok != (wantUser[v.Name] != "") {
				t.Errorf("UserID = %q, %v", uid, ok)
			}
			// Our encoder must produce a cookie Decode accepts with the same
			// content, and must choose compression the same way Flask did.
			enc, err := Encode(s, g.Secret, time.Unix(v.Timestamp, 0))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(enc, ".") != strings.HasPrefix(v.Cookie, ".") {
				t.Errorf("compression choice differs: ours %q, Flask %q", enc, v.Cookie)
			}
			if !strings.HasPrefix(v.Cookie, ".") && enc != v.Cookie {
				t.Errorf("uncompressed encoding differs:\n ours  %s\n flask %s", enc, v.Cookie)
			}
			s2, err := Decode(enc, g.Secret, 0, now)
			if err != nil || !reflect.DeepEqual(s2, s) {
				t.Errorf("round trip: %v %#v", err, s2)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	g := loadGolden(t)
	good := g.Vectors[0].Cookie
	ts := time.Unix(g.Vectors[0].Timestamp, 0)
	const day = 24 * time.Hour
	cases := []struct {
		name   string
		value  string
		secret string
		now    time.Time
		want   error
	}{
		{"wrong secret", good, "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", ts, ErrBadSignature},
		{"expired", good, g.Secret, ts.Add(31*day + time.Second), ErrExpired},
		{"future", good, g.Secret, ts.Add(-time.Minute), ErrExpired},
		{"within skew", good, g.Secret, ts.Add(-MaxClockSkew), nil},
		{"exactly max age", good, g.Secret, ts.Add(31 * day), nil},
		{"empty", "", g.Secret, ts, ErrMalformed},
		{"no dots", "abc", g.Secret, ts, ErrMalformed},
		{"flipped sig", good[:len(good)-2] + flip(good[len(good)-2:]), g.Secret, ts, ErrBadSignature},
		{"bad sig encoding", good + "!!", g.Secret, ts, ErrBadSignature},
		{"payload swapped", swapPayload(good, "e30"), g.Secret, ts, ErrBadSignature},
		{"oversized", strings.Repeat("a", MaxValueLen+1), g.Secret, ts, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.value, c.secret, 31*day, c.now)
			if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func swapPayload(cookie, payload string) string {
	i := strings.LastIndexByte(cookie, '.')
	j := strings.LastIndexByte(cookie[:i], '.')
	return payload + cookie[j:]
}

// An attacker who knows the key (or a leaked one) must still not be able to
// exhaust memory with a zip bomb or a deeply nested payload.
func TestSignedHostilePayloads(t *testing.T) {
	const secret = "k"
	now := time.Unix(1_800_000_000, 0)
	signRaw := func(payload string) string {
		v, _ := Encode(Session{}, secret, now)
		i := strings.LastIndexByte(v, '.')
		j := strings.LastIndexByte(v[:i], '.')
		signed := payload + v[j:i]
		return signed + "." + base64.RawURLEncoding.EncodeToString(sign(secret, signed))
	}
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write([]byte(`{"a":"`))
	zw.Write(bytes.Repeat([]byte("A"), MaxDecompressed*4))
	zw.Write([]byte(`"}`))
	zw.Close()
	bomb := signRaw("." + base64.RawURLEncoding.EncodeToString(zb.Bytes()))
	if len(bomb) > MaxValueLen {
		t.Fatalf("bomb too large for the test: %d", len(bomb))
	}
	if _, err := Decode(bomb, secret, 0, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("zip bomb: err = %v", err)
	}
	deep := signRaw(base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("[", 1000) + strings.Repeat("]", 1000))))
	if _, err := Decode(deep, secret, 0, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: err = %v", err)
	}
	notObj := signRaw(base64.RawURLEncoding.EncodeToString([]byte(`[1]`)))
	if _, err := Decode(notObj, secret, 0, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("array session: err = %v", err)
	}
	badTag := signRaw(base64.RawURLEncoding.EncodeToString([]byte(`{"x":{" b":"%%%"}}`)))
	if _, err := Decode(badTag, secret, 0, now); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad tag: err = %v", err)
	}
}

func TestSessionAccessors(t *testing.T) {
	cases := []struct {
		v    any
		id   string
		isID bool
	}{
		{"3", "3", true}, {json.Number("12"), "12", true}, {nil, "", false}, {"", "", false}, {true, "", false},
	}
	for _, c := range cases {
		id, ok := Session{"_user_id": c.v}.UserID()
		if id != c.id || ok != c.isID {
			t.Errorf("UserID(%#v) = %q %v", c.v, id, ok)
		}
	}
	s := Session{"csrf_token": "tok", "_flashes": []any{Tuple{"warning", "m"}}}
	if s.CSRFToken() != "tok" || len(s.Flashes()) != 1 || s.Flashes()[0] != [2]string{"warning", "m"} {
		t.Errorf("accessors: %q %v", s.CSRFToken(), s.Flashes())
	}
	if got := (Session{"a": 1, "b": 2}).Keys(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Keys = %v", got)
	}
}

func FuzzDecode(f *testing.F) {
	g := loadGolden(f)
	for _, v := range g.Vectors {
		f.Add(v.Cookie, g.Secret)
	}
	f.Add("", "k")
	f.Add("..", "k")
	f.Add(".eJw.AAAA.AAAA", "k")
	f.Fuzz(func(t *testing.T, value, secret string) {
		now := time.Unix(1_780_000_100, 0)
		s, err := Decode(value, secret, 0, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrExpired) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Whatever decodes must re-encode and decode to the same thing.
		enc, err := Encode(s, secret, now)
		if err != nil {
			t.Fatalf("Encode of decoded session: %v", err)
		}
		s2, err := Decode(enc, secret, 0, now)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, s, s2)
		}
	})
}

// FuzzDecodeSigned reaches the payload parser: the fuzzed payload is
// signed with the key, as if the attacker knew it.
func FuzzDecodeSigned(f *testing.F) {
	f.Add([]byte(`{"_user_id":"1","csrf_token":"x"}`), false)
	f.Add([]byte(`{"_flashes":[{" t":["warning","m"]}],"d":{" d":"Fri, 01 May 2026 12:00:00 GMT"}}`), true)
	f.Add([]byte(`{"x":{" di":{" t__":{" b":"AAE="}}},"u":{" u":"12345678123456781234567812345678"}}`), true)
	f.Add([]byte(`{"a":{" m":"<b>"}}`), false)
	f.Fuzz(func(t *testing.T, payload []byte, compress bool) {
		const secret = "fuzz-key"
		now := time.Unix(1_780_000_000, 0)
		p := base64.RawURLEncoding.EncodeToString(payload)
		if compress {
			var zb bytes.Buffer
			zw := zlib.NewWriter(&zb)
			zw.Write(payload)
			zw.Close()
			p = "." + base64.RawURLEncoding.EncodeToString(zb.Bytes())
		}
		signed := p + "." + base64.RawURLEncoding.EncodeToString(timestamp(now))
		v := signed + "." + base64.RawURLEncoding.EncodeToString(sign(secret, signed))
		s, err := Decode(v, secret, time.Hour, now)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("signed payload refused with %v", err)
			}
			return
		}
		enc, err := Encode(s, secret, now)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, err := Decode(enc, secret, time.Hour, now)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v\n%#v\n%#v", err, s, s2)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	g := loadGolden(b)
	v := g.Vectors[0].Cookie // compressed, as a logged-in session is
	now := time.Unix(g.Vectors[0].Timestamp, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(v, g.Secret, 31*24*time.Hour, now); err != nil {
			b.Fatal(err)
		}
	}
}
