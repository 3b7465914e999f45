//go:build e2e

package e2e

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// oauthProvider is the pooled OAuth Superset's provider: FAB's "okta" code
// does GET <api_base_url>userinfo and names the user "okta_<sub>".
const oauthProvider = "okta"

// loginRow is one row of TestLoginMatrix: a sign-in method on one of
// Superset's session backends.
type loginRow struct {
	name string
	// key selects the pooled Superset (harness options: AUTH_TYPE and
	// SESSION_SERVER_SIDE, see setupMethod).
	key poolKey
	// gatewayExtra are the gateway config lines the method needs.
	gatewayExtra []string
	// authMethod is the admin API's auth_method of a session this
	// method's sign-in makes.
	authMethod string
	// loginPage is the status of GET /login/ without credentials: the
	// page (200), or FAB's refusal (302) under REMOTE_USER.
	loginPage int
	// user is whom the row signs in.
	user func(ps *pooledSuperset) conformance.Credentials
	// login signs cl in as cr the way a browser does with this method,
	// failing t if any of the method's own steps goes wrong.
	login func(t *testing.T, cl *gwClient, ps *pooledSuperset, cr conformance.Credentials)
	// extra checks what only this method has; nil if nothing.
	extra func(t *testing.T, gwURL string, ps *pooledSuperset)
}

// formRow: AUTH_DB, the login form's POST /login/.
func formRow(b sessionBackend) loginRow {
	return loginRow{
		name: "form/" + string(b), key: poolKey{methodForm, b}, authMethod: "form", loginPage: http.StatusOK,
		user: func(ps *pooledSuperset) conformance.Credentials { return ps.c.Target.Alpha },
		login: func(_ *testing.T, cl *gwClient, _ *pooledSuperset, cr conformance.Credentials) {
			cl.login(cr)
		},
	}
}

// oauthRow: AUTH_OAUTH, GET /login/okta → the test IdP → GET
// /oauth-authorized/okta, all through the gateway.
func oauthRow(b sessionBackend) loginRow {
	return loginRow{
		name: "oauth/" + string(b), key: poolKey{methodOAuth, b}, authMethod: "oauth:" + oauthProvider,
		loginPage: http.StatusOK,
		user: func(ps *pooledSuperset) conformance.Credentials {
			return conformance.Credentials{Username: oauthProvider + "_" + ps.idp.sub}
		},
		login: oauthLogin,
	}
}

// remoteUserRow: AUTH_REMOTE_USER, a GET /login/ carrying the header the
// single-sign-on proxy (127.0.0.1, trusted) sets.
func remoteUserRow(b sessionBackend) loginRow {
	return loginRow{
		name: "remote_user/" + string(b), key: poolKey{methodRemoteUser, b}, authMethod: "remote_user",
		loginPage:    http.StatusFound,
		gatewayExtra: []string{"trusted_proxies: [127.0.0.1/32]", "trusted_headers: [" + remoteUserHeader + "]"},
		user:         func(ps *pooledSuperset) conformance.Credentials { return ps.c.Target.Alpha },
		login: func(t *testing.T, cl *gwClient, _ *pooledSuperset, cr conformance.Credentials) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, cl.base+"/login/", nil)
			req.Header.Set(remoteUserHeader, cr.Username)
			if resp, _ := cl.do(req); resp.StatusCode != http.StatusFound {
				t.Fatalf("GET /login/ with %s: %d, want FAB's 302", remoteUserHeader, resp.StatusCode)
			}
		},
		extra: remoteUserHeaderFromOutside,
	}
}

// ldapRow: AUTH_LDAP, the same login form, the password checked against
// the pool's directory (FAB's AuthLDAPView); the gateway books it as a
// form sign-in.
func ldapRow(b sessionBackend) loginRow {
	return loginRow{
		name: "ldap/" + string(b), key: poolKey{methodLDAP, b}, authMethod: "form", loginPage: http.StatusOK,
		user: func(ps *pooledSuperset) conformance.Credentials { return ps.c.Target.Alpha },
		login: func(t *testing.T, cl *gwClient, ps *pooledSuperset, cr conformance.Credentials) {
			t.Helper()
			if !ps.dir.Bind(ps.dir.UserDN(cr.Username), cr.Password) {
				t.Fatalf("%s does not bind to the directory with the harness password", cr.Username)
			}
			ldapLogin(t, cl, cr.Username, cr.Password)
		},
	}
}

// loginMatrix is every sign-in method with both of Superset's session
// backends.
func loginMatrix() []loginRow {
	var rows []loginRow
	for _, b := range []sessionBackend{backendCookie, backendRedis} {
		rows = append(rows, formRow(b), oauthRow(b), remoteUserRow(b), ldapRow(b))
	}
	return rows
}

// TestLoginMatrix (issue 18): every sign-in method (form, OAuth,
// REMOTE_USER, LDAP) with Superset's client-side cookie sessions and with
// SESSION_SERVER_SIDE on Redis, each
// over the wire through the real gateway binary, on the pool's Supersets:
//   - fixation: an anonymous gateway id planted before the victim's
//     sign-in stays anonymous, and the sign-in rotates the gateway cookie;
//   - the session is booked as the user (admin API, with the method);
//   - an admin's revoke ends it;
//   - logout replay: a copy of the cookie taken before logout is refused;
//   - an admin's revoke on one of two replicas sharing a Redis store ends
//     the session on both (on the other within session.cache_ttl);
//   - every Set-Cookie the browser gets names the gateway's cookie only.
//
// The first four run on a gateway with the embedded store (the default),
// the replica check on the Redis store.
func TestLoginMatrix(t *testing.T) {
	bin := buildGateway(t)
	for _, row := range loginMatrix() {
		t.Run(row.name, func(t *testing.T) {
			t0 := time.Now()
			ps := supersetFor(t, row.key)
			t1 := time.Now()
			tok, adminYAML := adminToken(t)
			extra := append(append([]string{}, row.gatewayExtra...), adminYAML)
			ups := []string{ps.c.Target.BaseURL}
			solo := startGatewayT(t, harness.GatewayOptions{
				Binary: bin, Superset: ps.s, Upstreams: ups, DataDir: t.TempDir(), Extra: extra,
			})
			cr := row.user(ps)
			seen := &setCookies{}
			client := func(base string) *gwClient {
				cl := newGWClient(t, base)
				cl.c.Transport = seen.watch(http.DefaultTransport)
				return cl
			}

			// Fixation: the attacker's anonymous id, planted in the victim's
			// client, is worthless after her sign-in.
			attacker := client(solo.URL)
			resp, _ := attacker.get("/login/")
			planted := attacker.session()
			if resp.StatusCode != row.loginPage || planted == "" {
				t.Fatalf("GET /login/ without credentials through the gateway: %d, gateway cookie %v; want %d and a cookie",
					resp.StatusCode, planted != "", row.loginPage)
			}
			if code, user := meAs(t, solo.URL, planted); code != http.StatusUnauthorized {
				t.Fatalf("the anonymous session: /api/v1/me/ %d as %q, want 401", code, user)
			}
			victim := client(solo.URL)
			victim.plant(planted)
			row.login(t, victim, ps, cr)
			fresh := victim.session()
			if fresh == "" || fresh == planted {
				t.Fatalf("the sign-in did not rotate the gateway session (planted id kept: %v)", fresh == planted)
			}
			code, id, user := meID(t, solo.URL, fresh)
			if code != http.StatusOK || user != cr.Username {
				t.Fatalf("the victim's new session: /api/v1/me/ %d as %q, want 200 as %s", code, user, cr.Username)
			}
			if code, user := meAs(t, solo.URL, planted); code != http.StatusUnauthorized {
				t.Fatalf("FIXATION: the planted pre-login id after the victim's sign-in: /api/v1/me/ %d as %q, want 401", code, user)
			}

			// Booked as hers, with the method.
			list := adminSessions(t, solo.URL, tok, id)
			if len(list) != 1 || list[0].UserID != id || list[0].AuthMethod != row.authMethod {
				t.Errorf("admin API sessions of %s (user %s): %+v, want her one session, auth_method %s", cr.Username, id, list, row.authMethod)
			}

			// An admin's revoke ends it.
			if code, out := adminPost(t, solo.URL, tok, "users/"+id+"/revoke"); code != http.StatusOK {
				t.Fatalf("revoke %s: %d %v", id, code, out)
			}
			if code, user := meAs(t, solo.URL, fresh); code != http.StatusUnauthorized {
				t.Errorf("her session after an admin's revoke: /api/v1/me/ %d as %q, want 401", code, user)
			}

			// Logout replay, on a session signed in after the revoke.
			time.Sleep(5 * time.Millisecond) // past the revoke's millisecond
			again := client(solo.URL)
			row.login(t, again, ps, cr)
			copied := again.session()
			if code, user := meAs(t, solo.URL, copied); code != http.StatusOK || user != cr.Username {
				t.Fatalf("signed in again after the revoke: /api/v1/me/ %d as %q, want 200 as %s", code, user, cr.Username)
			}
			if resp, _ := again.get("/logout/"); resp.StatusCode/100 != 3 {
				t.Fatalf("GET /logout/: %d, want a redirect", resp.StatusCode)
			}
			if code, user := meAs(t, solo.URL, copied); code != http.StatusUnauthorized {
				t.Errorf("REPLAY: the cookie copied before logout: /api/v1/me/ %d as %q, want 401", code, user)
			}

			// Two replicas on one Redis store: a session made on A works on
			// B; an admin's revoke on B ends it on B at once and on A
			// within session.cache_ttl (1s by default).
			rd := redistest.Start(t, redistest.Options{})
			keys := writeCookieKeys(t)
			replica := func() *harness.Gateway {
				return startGatewayT(t, harness.GatewayOptions{
					Binary: bin, Superset: ps.s, Upstreams: ups, DataDir: t.TempDir(), Extra: extra,
					RedisURL: rd.URL(), CookieKeysFile: keys,
				})
			}
			a, b := replica(), replica()
			onA := client(a.URL)
			row.login(t, onA, ps, cr)
			sid := onA.session()
			if code, user := meAs(t, a.URL, sid); code != http.StatusOK || user != cr.Username {
				t.Fatalf("signed in on replica A: /api/v1/me/ %d as %q, want 200 as %s", code, user, cr.Username)
			}
			if code, user := meAs(t, b.URL, sid); code != http.StatusOK || user != cr.Username {
				t.Fatalf("a session from replica A on replica B: /api/v1/me/ %d as %q, want 200 as %s", code, user, cr.Username)
			}
			if n := len(adminSessions(t, b.URL, tok, id)); n != 1 {
				t.Errorf("replica B lists %d sessions of %s, want the one signed in on A", n, cr.Username)
			}
			if code, out := adminPost(t, b.URL, tok, "users/"+id+"/revoke"); code != http.StatusOK {
				t.Fatalf("revoke %s on replica B: %d %v", id, code, out)
			}
			if code, user := meAs(t, b.URL, sid); code != http.StatusUnauthorized {
				t.Errorf("on replica B after its revoke: /api/v1/me/ %d as %q, want 401", code, user)
			}
			start := time.Now()
			const bound = time.Second // session.cache_ttl default
			for {
				code, user := meAs(t, a.URL, sid)
				if code == http.StatusUnauthorized {
					t.Logf("revoke on replica B refused on replica A after %s (bound %s)", time.Since(start).Round(time.Millisecond), bound)
					break
				}
				if time.Since(start) > bound+500*time.Millisecond {
					t.Fatalf("revoke on B not enforced on A after %s (cache_ttl %s): /api/v1/me/ %d as %q", time.Since(start), bound, code, user)
				}
				time.Sleep(10 * time.Millisecond)
			}

			if row.extra != nil {
				row.extra(t, solo.URL, ps)
			}

			// Only the gateway's cookie ever reached the browser.
			names := seen.names()
			if len(names) == 0 {
				t.Error("no Set-Cookie seen at all: the check below proves nothing")
			}
			for _, n := range names {
				if n != gatewayCookie {
					t.Errorf("the browser got a cookie named %q through the gateway; only %q may be set", n, gatewayCookie)
				}
			}
			t.Logf("%s: Superset ready in %s, checks %s", row.name, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		})
	}
}

// oauthLogin signs cl in through the gateway with the pooled IdP: the
// login page's provider link, the provider's approval, the callback. The
// gateway cookie must not change before the user is known, and Superset
// must have sent the provider the gateway's callback URL.
func oauthLogin(t *testing.T, cl *gwClient, ps *pooledSuperset, _ conformance.Credentials) {
	t.Helper()
	before := cl.session()
	resp, _ := cl.get("/login/" + oauthProvider + "?next=" + url.QueryEscape("/superset/welcome/"))
	toIdP := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(toIdP, ps.idp.URL+"/authorize?") {
		t.Fatalf("GET /login/%s through the gateway: %d %q, want 302 to %s/authorize", oauthProvider, resp.StatusCode, toIdP, ps.idp.URL)
	}
	if before != "" && cl.session() != before {
		t.Fatalf("the gateway session changed before the user was known (at /login/%s)", oauthProvider)
	}
	noFollow := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(toIdP)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("provider /authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ps.idp.mu.Lock()
	sent := ps.idp.redirectURI
	ps.idp.mu.Unlock()
	if want := cl.base + "/oauth-authorized/" + oauthProvider; sent != want {
		t.Fatalf("Superset's redirect_uri is %q, want the gateway's %q", sent, want)
	}
	resp, _ = cl.get(back.RequestURI())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/superset/welcome/" {
		t.Fatalf("GET /oauth-authorized/%s through the gateway: %d %q, want 302 /superset/welcome/",
			oauthProvider, resp.StatusCode, resp.Header.Get("Location"))
	}
	// The browser goes on working with the new cookie.
	if resp, _ := cl.get("/superset/welcome/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /superset/welcome/ after the OAuth login: %d", resp.StatusCode)
	}
}

// remoteUserHeaderFromOutside: a client that bypasses the sign-on proxy
// (127.0.0.2, outside trusted_proxies) and names itself admin. The gateway
// removes the header, so Superset signs nobody in.
func remoteUserHeaderFromOutside(t *testing.T, gwURL string, ps *pooledSuperset) {
	t.Helper()
	direct := newGWClient(t, gwURL)
	direct.c.Transport = &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
	}).DialContext}
	req, _ := http.NewRequest(http.MethodGet, gwURL+"/login/", nil)
	req.Header.Set(remoteUserHeader, ps.c.Target.Admin.Username)
	direct.do(req)
	if code, user := meAs(t, gwURL, direct.session()); code != http.StatusUnauthorized {
		t.Errorf("%s from outside trusted_proxies: /api/v1/me/ %d as %q, want 401 (header removed)", remoteUserHeader, code, user)
	}
}

// setCookies records the name of every cookie the gateway sets on the
// clients it watches.
type setCookies struct {
	mu   sync.Mutex
	seen []string
}

func (s *setCookies) watch(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil {
			s.mu.Lock()
			// The raw headers, not resp.Cookies(), which drops what it
			// cannot parse.
			for _, line := range resp.Header.Values("Set-Cookie") {
				name, _, _ := strings.Cut(line, "=")
				s.seen = append(s.seen, strings.TrimSpace(name))
			}
			s.mu.Unlock()
		}
		return resp, err
	})
}

func (s *setCookies) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
