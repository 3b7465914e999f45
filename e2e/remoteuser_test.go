//go:build e2e

package e2e

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// remoteUserHeader is what the single-sign-on proxy in front of the
// gateway would set; Superset's config copies it into REMOTE_USER.
const remoteUserHeader = "X-Remote-User"

// TestRemoteUserLoginRotatesSession (A1, REMOTE_USER): Superset with
// AUTH_TYPE = AUTH_REMOTE_USER behind the gateway, the user named by a
// header the sign-on proxy adds. An attacker's anonymous gateway session
// is planted in the victim's client; the victim's GET /login/ carrying
// the header signs them in. Nothing in that request says "login" to the
// gateway (FAB signs in on a GET, on whatever page the proxy chooses), so
// only the change of Superset's own session identity can trigger the
// rotation: the planted id must stay anonymous and the new one be alice.
func TestRemoteUserLoginRotatesSession(t *testing.T) {
	t0 := time.Now()
	s, c := ownSuperset(t, harness.Options{RemoteUserHeader: remoteUserHeader})
	// The sign-on proxy is 127.0.0.1; clients reaching the gateway any
	// other way (127.0.0.2 here) must not get the header through.
	g := gatewayFor(t, s, []string{c.Target.BaseURL}, "trusted_proxies: [127.0.0.1/32]", "trusted_headers: ["+remoteUserHeader+"]")
	t.Logf("REMOTE_USER Superset + gateway up in %s", time.Since(t0).Round(time.Millisecond))

	// Without the header FAB refuses the login (flash + redirect): that
	// answer gives the attacker an anonymous gateway session.
	attacker := newGWClient(t, g.URL)
	resp, _ := attacker.get("/login/")
	planted := attacker.session()
	if resp.StatusCode != http.StatusFound || planted == "" {
		t.Fatalf("GET /login/ without %s: %d, gateway cookie %v", remoteUserHeader, resp.StatusCode, planted != "")
	}
	if code, _ := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("anonymous session: /api/v1/me/ %d, want 401", code)
	}

	victim := newGWClient(t, g.URL)
	victim.plant(planted)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/login/", nil)
	req.Header.Set(remoteUserHeader, c.Target.Alpha.Username)
	if resp, _ := victim.do(req); resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /login/ with %s: %d, want FAB's 302", remoteUserHeader, resp.StatusCode)
	}
	fresh := victim.session()
	if fresh == "" || fresh == planted {
		t.Fatalf("the REMOTE_USER login did not rotate the gateway session (changed: %v)", fresh != planted)
	}
	if code, user := meAs(t, g.URL, fresh); code != http.StatusOK || user != c.Target.Alpha.Username {
		t.Errorf("the new session: /api/v1/me/ %d as %q, want 200 as %s", code, user, c.Target.Alpha.Username)
	}
	if code, user := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Errorf("the planted id after the victim's login: /api/v1/me/ %d as %q, want 401", code, user)
	}

	// A client that bypasses the sign-on proxy and names itself admin:
	// the gateway removes the header, so Superset signs nobody in.
	direct := newGWClient(t, g.URL)
	direct.c.Transport = &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
	}).DialContext}
	req, _ = http.NewRequest(http.MethodGet, g.URL+"/login/", nil)
	req.Header.Set(remoteUserHeader, c.Target.Admin.Username)
	direct.do(req)
	if code, user := meAs(t, g.URL, direct.session()); code != http.StatusUnauthorized {
		t.Errorf("%s from outside trusted_proxies: /api/v1/me/ %d as %q, want 401 (header removed)", remoteUserHeader, code, user)
	}
}
