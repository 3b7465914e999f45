package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const strongSecret = "kU4n9Qx2Lr7Vt1Zp8Hc3Wm6Yb0Ds5Fg2Je7Ta4Nq"

func cookieKeyLine(hash, block []byte) string {
	return base64.StdEncoding.EncodeToString(hash) + " " + base64.StdEncoding.EncodeToString(block) + "\n"
}

func TestEnsureCookieKeysGeneratesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	j := &judge{}
	k1, p, created, err := (&Checked{Config: &Config{Store: Store{DataDir: dir}}, judge: j}).EnsureCookieKeys()
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("data_dir mode %v, want 0700", di.Mode().Perm())
	}
	if len(k1) != 1 || len(k1[0].Hash) != 64 || len(k1[0].Block) != 32 {
		t.Fatalf("keys %d, hash %d bytes, block %d bytes", len(k1), len(k1[0].Hash), len(k1[0].Block))
	}
	k2, _, created, err := (&Checked{Config: &Config{Store: Store{DataDir: dir}}, judge: j}).EnsureCookieKeys()
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if !bytes.Equal(k1[0].Hash, k2[0].Hash) || !bytes.Equal(k1[0].Block, k2[0].Block) {
		t.Fatal("keys changed across starts: every session would be lost")
	}
	// Another directory gets other keys.
	k3, _, _, err := (&Checked{Config: &Config{Store: Store{DataDir: t.TempDir()}}, judge: j}).EnsureCookieKeys()
	if err != nil || bytes.Equal(k1[0].Hash, k3[0].Hash) {
		t.Fatalf("keys not random: %v", err)
	}
	// A generated file replaced by a weak one is refused.
	os.WriteFile(p, []byte(cookieKeyLine(bytes.Repeat([]byte("a"), 64), bytes.Repeat([]byte("b"), 32))), 0o600)
	if _, _, _, err := (&Checked{Config: &Config{Store: Store{DataDir: dir}}, judge: j}).EnsureCookieKeys(); err == nil || !strings.Contains(err.Error(), "has too little entropy") {
		t.Fatalf("weak generated file: %v", err)
	}
}

func TestEnsureCookieKeysConcurrentStartsAgree(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]CookieKeyPair, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, _, err := (&Checked{Config: &Config{Store: Store{DataDir: dir}}, judge: &judge{}}).EnsureCookieKeys()
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if keys[i] == nil || !bytes.Equal(keys[i][0].Hash, keys[0][0].Hash) {
			t.Fatal("concurrent first starts produced different keys")
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

// FuzzParseKeyFiles feeds arbitrary content to the cookie-keys and
// admin-tokens parsers: no panic, and no error ever echoes a field of the
// file (which would print key material).
func FuzzParseKeyFiles(f *testing.F) {
	f.Add([]byte(cookieKeyLine([]byte(strongSecret+"Xq9"), []byte(strongSecret[:32]))))
	f.Add([]byte("ci " + strings.Repeat("ab", 32) + "\n# c\n\n"))
	f.Add([]byte("a b c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func() error{
			func() error { _, err := parseCookieKeys("k", data, &judge{}); return err },
			func() error { _, err := parseAdminTokens("k", data, &judge{}); return err },
		} {
			err := parse()
			if err == nil {
				continue
			}
			for _, field := range strings.Fields(string(data)) {
				if len(field) >= 12 && strings.Contains(err.Error(), field) {
					t.Fatalf("error %q echoes %q", err, field)
				}
			}
		}
	})
}
