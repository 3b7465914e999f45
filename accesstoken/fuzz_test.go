package accesstoken

import (
	"bytes"
	"testing"
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
