//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAuthorizationShapes (A2, attacker's side): Superset reads
// "Authorization" with flask-jwt-extended, which splits the Latin-1 decoded
// header with Python's str.split() — whose whitespace includes bytes 0x85
// and 0xa0 — and takes the comma-separated element whose first word is
// "Bearer". Every shape Superset accepts a JWT in must be seen and checked
// by the gateway too, or a revoked JWT would get through in that shape.
// The shapes are first tried straight at a node with a live JWT (what
// Superset accepts), then through the gateway with a revoked one.
func TestAuthorizationShapes(t *testing.T) {
	r := newEpRig(t)
	node := epLogin(t, r.e.c.Nodes[0].URL, r.e.c.Target.Admin)
	shapes := []struct{ name, prefix, suffix string }{
		{"plain", "Bearer ", ""},
		{"byte 0x85 (NEL in Latin-1)", "Bearer\x85", ""},
		{"byte 0xa0 (NBSP in Latin-1)", "Bearer\xa0", ""},
		{"tab", "Bearer\t", ""},
		{"two spaces", "Bearer  ", ""},
		{"after another credential", "Basic eA==, Bearer ", ""},
		{"trailing comma", "Bearer ", ","},
		{"leading comma and 0x85", ",\x85Bearer\x85", "\x85"},
		{"lower-case scheme", "bearer ", ""},
	}
	accepted := map[string]bool{}
	for _, s := range shapes {
		code := status(t, r.e.c.Nodes[0].URL, s.prefix+node.bearer+s.suffix)
		accepted[s.name] = code == http.StatusOK
		t.Logf("Superset, live JWT, %s: %d", s.name, code)
	}
	if !accepted["plain"] || !accepted["byte 0x85 (NEL in Latin-1)"] {
		t.Fatalf("Superset's parsing is not what this test assumes: %v", accepted)
	}

	u := r.newUser("shapes")
	c := r.signIn(r.a, u)
	for _, s := range shapes {
		if code := status(t, r.a.URL, s.prefix+c.access+s.suffix); code != http.StatusOK && accepted[s.name] {
			t.Fatalf("a live JWT in shape %q: %d through the gateway, 200 at Superset", s.name, code)
		}
	}
	r.revoke(u)
	deadline := time.Now().Add(epCacheTTL + epSlack)
	for _, s := range shapes {
		for {
			code := status(t, r.a.URL, s.prefix+c.access+s.suffix)
			if code != http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("a revoked JWT in shape %q still answers 200 through the gateway", s.name)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// status is GET /api/v1/me/ at base with Authorization set to auth as is.
func status(t *testing.T, base, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	req.Header["Authorization"] = []string{auth}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "invalid header") {
			t.Fatalf("the client refused to send %q: %v", fmt.Sprintf("%.20q", auth), err)
		}
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
