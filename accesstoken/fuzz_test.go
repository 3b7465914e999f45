package accesstoken

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"unicode"
)

// FuzzParse: Parse never panics, and accepts exactly the strings that are
// a well-formed token with a matching checksum.
func FuzzParse(f *testing.F) {
	tok, _, _, _ := Generate(bytes.NewReader(bytes.Repeat([]byte{7}, 30)))
	for _, s := range []string{tok, tok[:len(tok)-1] + "0", tok + "x", "sgw_", "", "Bearer " + tok,
		"sgw_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_00000000",
		"sgw_AAAAAAAAAAAAAAAA_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_00000000",
		"sgw_aaaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_+0000000",
		"sgw_\xff\xfeaaaaaaaaaaaaaa_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_00000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := Parse(s)
		if err != nil {
			if id != "" || secret != "" {
				t.Fatal("parts returned with an error")
			}
			return
		}
		if !ValidID(id) || len(secret) != SecretLen || withChecksum(Prefix+id+"_"+secret) != s {
			t.Fatalf("accepted %q", s)
		}
	})
}

// FuzzTokenFrom: whatever Authorization values arrive (one or two
// headers), a word Superset would see as starting with "sgw_" is claimed
// by the guard, so it is refused or exchanged, never forwarded. Superset's
// view is modelled independently: Latin-1 decoding, Python's whitespace
// (Unicode spaces plus 0x1c–0x1f) and commas.
func FuzzTokenFrom(f *testing.F) {
	tok, _, _, _ := Generate(bytes.NewReader(bytes.Repeat([]byte{3}, 30)))
	for _, s := range []string{"Bearer " + tok, "bearer " + tok, "Bearer\x85" + tok, "Bearer\xa0" + tok,
		"Bearer\u0085" + tok, "Bearer\x1c" + tok, "Basic eA==," + tok, "Bearer eyJ.sgw_x.y", "", "sgw_"} {
		f.Add(s, "")
		f.Add(s, "Bearer "+tok)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		vals := []string{a}
		if b != "" {
			vals = append(vals, b)
		}
		got, ok, bad := tokenFrom(http.Header{"Authorization": vals})
		supersetSees := false
		for _, v := range vals {
			runes := make([]rune, len(v))
			for i := 0; i < len(v); i++ {
				runes[i] = rune(v[i]) // Latin-1
			}
			for _, w := range strings.FieldsFunc(string(runes), func(r rune) bool {
				return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) || r == ','
			}) {
				supersetSees = supersetSees || strings.HasPrefix(w, Prefix)
			}
		}
		if supersetSees && !ok {
			t.Fatalf("%q: Superset would see an access token the guard does not claim", vals)
		}
		if ok && !bad && (len(vals) != 1 || got != a[7:] || strings.ContainsAny(got, " \t,")) {
			t.Fatalf("%q: accepted %q as the token", vals, got)
		}
	})
}
