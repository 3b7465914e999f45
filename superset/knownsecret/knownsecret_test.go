package knownsecret

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type golden struct {
	Vectors []struct {
		ID         string `json:"id"`
		Cookie     string `json:"cookie"`
		GuestToken string `json:"guest_token"`
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

// TestGolden: a cookie and a guest token signed by Superset 6.1.0's own
// libraries (Flask 2.3.3 / itsdangerous, PyJWT 2.10.1; testdata/gen_golden.py)
// under every built-in entry are named by that entry, and under an unlisted
// random key by none.
func TestGolden(t *testing.T) {
	g := loadGolden(t)
	ids := map[string]bool{}
	for _, e := range List() {
		ids[e.ID] = true
	}
	seen := 0
	for _, v := range g.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			cv, ok := SessionCookie(v.Cookie)
			if !ok {
				t.Fatal("cookie not recognised as a signed Flask cookie")
			}
			gv, ok := GuestToken(v.GuestToken)
			if !ok {
				t.Fatal("guest token not recognised as an HMAC JWT")
			}
			for name, verify := range map[string]Verifier{"cookie": cv, "guest_token": gv} {
				m, found := FindBuiltin(verify)
				if v.ID == "unlisted" {
					if found {
						t.Errorf("%s under an unlisted key matched %q", name, m.ID)
					}
					continue
				}
				if !found || m.ID != v.ID {
					t.Errorf("%s: match = %q (found %v), want %q", name, m.ID, found, v.ID)
				}
				if strings.Contains(m.ID+m.Source, valueOf(v.ID)) && len(valueOf(v.ID)) > 8 {
					t.Errorf("%s: match names the secret itself", name)
				}
			}
		})
		if ids[v.ID] {
			seen++
		}
	}
	if seen != len(ids) {
		t.Errorf("golden.json covers %d of %d built-in entries: rerun testdata/gen_golden.py", seen, len(ids))
	}
}

func valueOf(id string) string {
	for _, e := range List() {
		if e.ID == id {
			return e.Value
		}
	}
	return ""
}

// TestTamperedSignature: a cookie or token whose payload was changed after
// signing verifies under no key, so a forger cannot make a real key "match".
func TestTamperedSignature(t *testing.T) {
	g := loadGolden(t)
	v := g.Vectors[0]
	cookie := strings.Replace(v.Cookie, ".ahilAA.", ".ahilAB.", 1)
	if cv, ok := SessionCookie(cookie); !ok {
		t.Fatal("tampered cookie not recognised")
	} else if m, found := FindBuiltin(cv); found {
		t.Errorf("tampered cookie matched %q", m.ID)
	}
	parts := strings.Split(v.GuestToken, ".")
	token := parts[0] + "." + parts[1] + "x." + parts[2]
	if gv, ok := GuestToken(token); ok {
		if m, found := FindBuiltin(gv); found {
			t.Errorf("tampered token matched %q", m.ID)
		}
	}
}

func TestNotSigned(t *testing.T) {
	for _, c := range []string{"", "abc", "no-dots", strings.Repeat("a.", 20000)} {
		if _, ok := SessionCookie(c); ok {
			t.Errorf("SessionCookie(%.20q) ok", c)
		}
	}
	for _, tok := range []string{"", "a.b", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.AA"} {
		if _, ok := GuestToken(tok); ok {
			t.Errorf("GuestToken(%q) ok", tok)
		}
	}
}

// writeWordlist writes n lines of decoys with the key at line at (0: none).
func writeWordlist(t testing.TB, n, at int, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "words.txt")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		if i == at {
			fmt.Fprintf(w, "%s\r\n", key)
			continue
		}
		fmt.Fprintf(w, "decoy-secret-%08d\n", i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWordlistMillion streams 10^6 lines with the real key on the last one
// and reports how long it took (the figure docs/audit.md quotes).
func TestWordlistMillion(t *testing.T) {
	g := loadGolden(t)
	var cookie string
	for _, v := range g.Vectors {
		if v.ID == "superset-helm-chart" {
			cookie = v.Cookie
		}
	}
	const n = wordlistLines
	p := writeWordlist(t, n, n, "thisISaSECRET_1234")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cv, _ := SessionCookie(cookie)
	m, found, st, err := ScanWordlist(context.Background(), f, cv)
	if err != nil {
		t.Fatal(err)
	}
	if !found || m.ID != fmt.Sprintf("wordlist:%d", n) {
		t.Fatalf("match = %+v found=%v, want line %d", m, found, n)
	}
	if st.Lines != n || st.Tried != n {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("%d-line wordlist, session cookie: %s (%d lines tried)", n, st.Elapsed, st.Tried)
}

func TestWordlistEdgeCases(t *testing.T) {
	verify := func(s []byte) bool { return string(s) == "the-key" }
	long := strings.Repeat("x", 200<<10)
	in := "\n\n" + long + "\nshort\n" + strings.Repeat("y", MaxLineBytes+1) + "\nthe-key"
	m, found, st, err := ScanWordlist(context.Background(), strings.NewReader(in), verify)
	if err != nil || !found {
		t.Fatalf("found=%v err=%v", found, err)
	}
	if m.ID != "wordlist:6" || st.Skipped != 2 || st.Tried != 2 {
		t.Errorf("match %q stats %+v", m.ID, st)
	}
	if strings.Contains(m.ID, "the-key") {
		t.Error("match names the secret")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := ScanWordlist(ctx, strings.NewReader("a\nb\n"), verify); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
	if _, _, _, err := ScanWordlist(context.Background(), io.MultiReader(strings.NewReader("a\n"), errReader{}), verify); !errors.Is(err, ErrWordlist) {
		t.Errorf("read error: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func BenchmarkWordlistCookie(b *testing.B) {
	g := loadGolden(b)
	cv, _ := SessionCookie(g.Vectors[0].Cookie)
	p := writeWordlist(b, 100_000, 0, "")
	for b.Loop() {
		f, _ := os.Open(p)
		_, _, _, _ = ScanWordlist(context.Background(), f, cv)
		f.Close()
	}
}
