package knownsecret

import (
	"strings"
	"testing"
)

// FuzzVerifiers: whatever a node or an audited deployment sends as a cookie
// or a guest token, building and running the verifiers never panics, and a
// value the built-in list verifies is one the same entry verifies again.
func FuzzVerifiers(f *testing.F) {
	g := loadGolden(f)
	for _, v := range g.Vectors {
		f.Add(v.Cookie)
		f.Add(v.GuestToken)
	}
	f.Add("")
	f.Add("..")
	f.Add(".eJw.x.y")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		for _, mk := range []func(string) (Verifier, bool){SessionCookie, GuestToken} {
			v, ok := mk(s)
			if !ok {
				continue
			}
			m, found := FindBuiltin(v)
			if found && !v([]byte(valueOf(m.ID))) {
				t.Fatalf("match %q does not verify again", m.ID)
			}
			if found && strings.Contains(m.ID, valueOf(m.ID)) && len(valueOf(m.ID)) > 8 {
				t.Fatal("match carries the secret")
			}
		}
	})
}
