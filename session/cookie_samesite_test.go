package session

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/store/bolt"
)

// TestCookieSameSite: the attribute the browser sees on the gateway cookie
// (and on its deletion), for each mode, and None refused without Secure.
func TestCookieSameSite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   http.SameSite
		secure bool
		want   string // in the Set-Cookie line
		err    bool
	}{
		{name: "zero is lax", mode: 0, want: "; SameSite=Lax"},
		{name: "default mode is lax", mode: http.SameSiteDefaultMode, want: "; SameSite=Lax"},
		{name: "lax", mode: http.SameSiteLaxMode, secure: true, want: "; Secure; SameSite=Lax"},
		{name: "strict", mode: http.SameSiteStrictMode, want: "; SameSite=Strict"},
		{name: "none secure", mode: http.SameSiteNoneMode, secure: true, want: "; Secure; SameSite=None"},
		{name: "none without secure", mode: http.SameSiteNoneMode, err: true},
		{name: "unknown mode", mode: http.SameSite(42), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCookieCodec(testKeys(1), tc.secure, 0, WithSameSite(tc.mode))
			if tc.err {
				if err == nil {
					t.Fatalf("NewCookieCodec accepted SameSite %d with secure=%v", tc.mode, tc.secure)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, err := c.Encode(bytes.Repeat([]byte{3}, IDLen))
			if err != nil {
				t.Fatal(err)
			}
			for _, ck := range []*http.Cookie{c.Cookie(v), c.Cookie("")} {
				line := ck.String()
				if !strings.Contains(line, tc.want) || !strings.Contains(line, "; HttpOnly") {
					t.Errorf("Set-Cookie %q: want %q and HttpOnly", line, tc.want)
				}
			}
		})
	}
}

// TestVaultRefusesSameSiteNoneWithoutSecure: the option reaches the codec
// through Options, so a misconfiguration fails at start, not in a browser.
func TestVaultRefusesSameSiteNoneWithoutSecure(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = New(Options{Store: st, SupersetSecretKey: "k", Keys: testKeys(1), SameSite: http.SameSiteNoneMode})
	if err == nil || !strings.Contains(err.Error(), "SameSite=None") {
		t.Fatalf("New with SameSite=None and Secure=false: %v, want a SameSite=None error", err)
	}
}
