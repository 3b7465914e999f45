//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/slapdtest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// The directory's groups and the Superset roles they map to
// (AUTH_ROLES_MAPPING, keyed by the group DN memberOf holds). Every LDAP
// user also gets ldapRegistrationRole.
const (
	ldapAdmins           = "superset-admins"   // admin → Admin
	ldapAlphas           = "superset-alphas"   // alice → Alpha, sql_lab
	ldapAnalysts         = "superset-analysts" // → Alpha
	ldapRegistrationRole = "Gamma"
)

// ldapEnv is one slapd and one Superset signing in against it
// (AUTH_TYPE = AUTH_LDAP), shared by the package's LDAP tests: a Superset
// start costs 30-60 s. The harness's admin, alice and bob are in the
// directory with their harness passwords and groups mapped to the roles
// they have under AUTH_DB, so form sign-ins as them work here too.
type ldapEnv struct {
	dir *slapdtest.Server
	s   *harness.Superset
	c   *harness.Cluster
}

// ldapStarted records that sharedLDAPEnv ran, so TestMain stops only what
// a test started.
var ldapStarted atomic.Bool

var sharedLDAPEnv = sync.OnceValues(func() (*ldapEnv, error) {
	ldapStarted.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return newLDAPEnv(ctx, harness.Options{})
})

// newLDAPEnv starts a slapd and a one-node Superset signing in against it,
// shaped by o otherwise (o.RedisURL for server-side sessions, say; Venv,
// Log and LDAP are filled in). The login matrix can start one per session
// backend; close stops both.
func newLDAPEnv(ctx context.Context, o harness.Options) (*ldapEnv, error) {
	t0 := time.Now()
	dir, err := slapdtest.New(slapdtest.Options{Groups: []string{ldapAdmins, ldapAlphas, ldapAnalysts}})
	if err != nil {
		return nil, fmt.Errorf("slapd: %w", err)
	}
	o.Venv, o.Log, o.LDAP = os.Getenv("SUPERSET_VENV"), os.Stderr, ldapOptions(dir)
	s, err := harness.Bootstrap(ctx, o)
	if err != nil {
		dir.Close()
		return nil, err
	}
	admin, alpha, gamma := s.Credentials()
	for _, u := range []slapdtest.User{
		{UID: admin.Username, Password: admin.Password, Groups: []string{ldapAdmins}},
		{UID: alpha.Username, Password: alpha.Password, Groups: []string{ldapAlphas}},
		{UID: gamma.Username, Password: gamma.Password},
	} {
		if err := dir.Add(u); err != nil {
			s.Close()
			dir.Close()
			return nil, err
		}
	}
	c, err := s.Start(ctx, 1)
	if err != nil {
		s.Close()
		dir.Close()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e: LDAP Superset (slapd %s) up in %s\n", dir.URL(), time.Since(t0).Round(time.Millisecond))
	return &ldapEnv{dir: dir, s: s, c: c}, nil
}

// close stops the Superset and the slapd.
func (e *ldapEnv) close() {
	e.c.Stop()
	e.s.Close()
	e.dir.Close()
}

// ldapOptions is the harness's AUTH_LDAP configuration for dir: a
// service-account search under ou=people, roles from memberOf.
func ldapOptions(dir *slapdtest.Server) *harness.LDAPServer {
	return &harness.LDAPServer{
		URL: dir.URL(), BindDN: dir.RootDN(), BindPassword: dir.RootPassword(), SearchBase: dir.PeopleBase(),
		UIDField: "uid", GroupField: "memberOf",
		RolesMapping: map[string][]string{
			dir.GroupDN(ldapAdmins):   {"Admin"},
			dir.GroupDN(ldapAlphas):   {"Alpha", "sql_lab"},
			dir.GroupDN(ldapAnalysts): {"Alpha"},
		},
		RegistrationRole: ldapRegistrationRole,
	}
}

// stopSharedLDAP stops the LDAP Superset and its slapd if a test started
// them (TestMain).
func stopSharedLDAP() {
	if !ldapStarted.Load() {
		return
	}
	if e, err := sharedLDAPEnv(); err == nil {
		e.close()
	}
}

// sharedLDAP returns the shared LDAP environment, printing Superset's and
// slapd's logs if t fails.
func sharedLDAP(t *testing.T) *ldapEnv {
	t.Helper()
	e, err := sharedLDAPEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.c.Logs())
			t.Log("slapd log (tail):\n" + e.dir.LogTail())
		}
	})
	return e
}

// person adds a directory user <prefix>-<random> (fresh per run, since
// Superset registers each at first sign-in) in groups, and returns the
// credentials.
func (e *ldapEnv) person(t *testing.T, prefix string, groups ...string) conformance.Credentials {
	t.Helper()
	cr := conformance.Credentials{Username: prefix + "-" + epRand(3), Password: "Ldap-" + epRand(8)}
	e.dir.AddUser(t, slapdtest.User{UID: cr.Username, Password: cr.Password,
		Mail: cr.Username + "@example.test", Groups: groups})
	return cr
}

// gateway starts a gateway in front of the LDAP Superset.
func (e *ldapEnv) gateway(t *testing.T, extra ...string) *harness.Gateway {
	t.Helper()
	return gatewayFor(t, e.s, []string{e.c.Target.BaseURL}, extra...)
}

// ldapLogin signs in through the gateway on Superset's login form, which
// under AUTH_LDAP checks the password against the directory (FAB's
// AuthLDAPView), and fails the test unless Superset signed the user in.
func ldapLogin(t *testing.T, cl *gwClient, username, password string) {
	t.Helper()
	resp := ldapLoginAttempt(t, cl, username, password)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("LDAP sign-in as %s through the gateway: %d %q, want 302 /", username, resp.StatusCode, resp.Header.Get("Location"))
	}
}

// ldapLoginAttempt posts the login form through the gateway and returns
// Superset's answer: 302 / on success, 302 /login/ (FAB's flash) on a
// refused credential.
func ldapLoginAttempt(t *testing.T, cl *gwClient, username, password string) *http.Response {
	t.Helper()
	resp, body := cl.get("/login/")
	m := csrfInput.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("GET /login/ through the gateway: %d, csrf input found: %v", resp.StatusCode, m != nil)
	}
	form := url.Values{"username": {username}, "password": {password}, "csrf_token": {m[1]}}
	req, _ := http.NewRequest(http.MethodPost, cl.base+"/login/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = cl.do(req)
	return resp
}

// refusedLogin reports whether resp is FAB's answer to a refused sign-in.
func refusedLogin(resp *http.Response) bool {
	loc, err := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode == http.StatusFound && err == nil && strings.TrimRight(loc.Path, "/") == "/login"
}

// meRoles is GET /api/v1/me/roles/ through the gateway with only the given
// gateway cookie: the names of the caller's Superset roles, sorted.
func meRoles(t *testing.T, base, cookie string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/roles/", nil)
	req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: cookie})
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Roles map[string]json.RawMessage `json:"roles"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("/api/v1/me/roles/: %d %v", resp.StatusCode, err)
	}
	var names []string
	for r := range out.Result.Roles {
		names = append(names, r)
	}
	slices.Sort(names)
	return names
}

// TestLDAPLoginRotatesSession (issue 18, LDAP fixation): an attacker's
// anonymous gateway session is planted in the victim's client; the
// victim's LDAP sign-in (their first: Superset registers them) must
// rotate it. The planted id stays anonymous, the new one is the LDAP user,
// and the admin API lists the new session under the user's Superset id.
func TestLDAPLoginRotatesSession(t *testing.T) {
	e := sharedLDAP(t)
	tok, adminYAML := adminToken(t)
	g := e.gateway(t, adminYAML)
	carol := e.person(t, "carol", ldapAnalysts)

	attacker := newGWClient(t, g.URL)
	attacker.get("/login/")
	planted := attacker.session()
	if planted == "" {
		t.Fatal("GET /login/ through the gateway set no gateway cookie")
	}
	if code, _ := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("anonymous session: /api/v1/me/ %d, want 401", code)
	}

	victim := newGWClient(t, g.URL)
	victim.plant(planted)
	ldapLogin(t, victim, carol.Username, carol.Password)
	fresh := victim.session()
	if fresh == "" || fresh == planted {
		t.Fatalf("the LDAP sign-in did not rotate the gateway session (planted id kept: %v)", fresh == planted)
	}
	code, id, user := meID(t, g.URL, fresh)
	if code != http.StatusOK || user != carol.Username {
		t.Fatalf("the new session: /api/v1/me/ %d as %q, want 200 as %s", code, user, carol.Username)
	}
	if code, user := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("FIXATION: the planted pre-login id reaches Superset as %q (status %d)", user, code)
	}

	// Booked as carol: her one session, a form sign-in (the gateway sees
	// the same POST /login/ under AUTH_LDAP as under AUTH_DB).
	list := adminSessions(t, g.URL, tok, id)
	if len(list) != 1 || list[0].UserID != id || list[0].AuthMethod != "form" {
		t.Fatalf("admin API sessions of %s (id %s): %+v, want one form session", carol.Username, id, list)
	}
}

// TestLDAPLogoutKillsCopies: a copy of an LDAP user's gateway cookie taken
// before logout is refused after it.
func TestLDAPLogoutKillsCopies(t *testing.T) {
	e := sharedLDAP(t)
	g := e.gateway(t)
	dave := e.person(t, "dave")
	c := newGWClient(t, g.URL)
	ldapLogin(t, c, dave.Username, dave.Password)
	copied := c.session()
	if code, user := meAs(t, g.URL, copied); code != http.StatusOK || user != dave.Username {
		t.Fatalf("signed in: /api/v1/me/ %d as %q, want 200 as %s", code, user, dave.Username)
	}
	if resp, _ := c.get("/logout/"); resp.StatusCode/100 != 3 {
		t.Fatalf("GET /logout/: %d, want a redirect", resp.StatusCode)
	}
	if code, user := meAs(t, g.URL, copied); code != http.StatusUnauthorized {
		t.Fatalf("REPLAY: the pre-logout cookie still reaches Superset as %q (status %d)", user, code)
	}
}

// TestLDAPRegistrationMapsRoles: a directory user unknown to Superset is
// registered at their first sign-in with the roles their groups map to
// plus the registration role; every later sign-in recomputes them from
// the directory (AUTH_ROLES_SYNC_AT_LOGIN). The harness's alice signs in
// through the directory with her harness password and keeps her roles.
func TestLDAPRegistrationMapsRoles(t *testing.T) {
	e := sharedLDAP(t)
	g := e.gateway(t)
	signIn := func(cr conformance.Credentials) []string {
		t.Helper()
		c := newGWClient(t, g.URL)
		ldapLogin(t, c, cr.Username, cr.Password)
		return meRoles(t, g.URL, c.session())
	}
	eve := e.person(t, "eve", ldapAnalysts)
	if got, want := signIn(eve), []string{"Alpha", ldapRegistrationRole}; !slices.Equal(got, want) {
		t.Errorf("%s (group %s) registered with roles %v, want %v", eve.Username, ldapAnalysts, got, want)
	}
	plain := e.person(t, "grace")
	if got, want := signIn(plain), []string{ldapRegistrationRole}; !slices.Equal(got, want) {
		t.Errorf("%s (no group) registered with roles %v, want %v", plain.Username, got, want)
	}
	// Out of the group in the directory: the next sign-in drops Alpha.
	e.dir.RemoveFromGroup(t, eve.Username, ldapAnalysts)
	if got, want := signIn(eve), []string{ldapRegistrationRole}; !slices.Equal(got, want) {
		t.Errorf("%s after leaving %s: roles %v at the next sign-in, want %v", eve.Username, ldapAnalysts, got, want)
	}
	_, alice, _ := e.s.Credentials()
	if got, want := signIn(alice), []string{"Alpha", ldapRegistrationRole, "sql_lab"}; !slices.Equal(got, want) {
		t.Errorf("the harness's %s by LDAP: roles %v, want %v", alice.Username, got, want)
	}
}

// TestLDAPRemovedUser: what a user's removal from the directory does to
// their gateway sessions, over the wire. Superset keeps no link to the
// directory between sign-ins, so the removal alone changes nothing: the
// session they hold keeps working. Their next sign-in fails at Superset
// (FAB finds no entry), which refuses a new session but stamps no epoch
// (a failed sign-in must not log anyone out: anyone can fail one in
// another's name). What ends the sessions is deactivating the Superset
// user, the step an LDAP deprovisioning must include: done at Superset
// itself, bypassing the gateway, the reconciler finds the user inactive
// and stamps their epoch within reconcile_interval, so the session stays
// refused even once the user is active again.
func TestLDAPRemovedUser(t *testing.T) {
	const reconcile = 2 * time.Second
	e := sharedLDAP(t)
	g := e.gateway(t, "reconcile_interval: "+reconcile.String())
	heidi := e.person(t, "heidi", ldapAnalysts)
	c := newGWClient(t, g.URL)
	ldapLogin(t, c, heidi.Username, heidi.Password)
	held := c.session()
	code, id, _ := meID(t, g.URL, held)
	if code != http.StatusOK {
		t.Fatalf("signed in: /api/v1/me/ %d", code)
	}

	e.dir.DeleteUser(t, heidi.Username)
	if code, user := meAs(t, g.URL, held); code != http.StatusOK || user != heidi.Username {
		t.Fatalf("after the directory removal alone: /api/v1/me/ %d as %q, want 200 as %s (nothing tells Superset)", code, user, heidi.Username)
	}

	// The next sign-in, with the password that worked: refused by Superset.
	again := newGWClient(t, g.URL)
	if resp := ldapLoginAttempt(t, again, heidi.Username, heidi.Password); !refusedLogin(resp) {
		t.Fatalf("sign-in of a user removed from the directory: %d %q, want FAB's 302 /login/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, user := meAs(t, g.URL, again.session()); code != http.StatusUnauthorized {
		t.Fatalf("after the refused sign-in: /api/v1/me/ %d as %q, want 401", code, user)
	}
	// The refused sign-in stamped nothing: the held session still works.
	if code, _ := meAs(t, g.URL, held); code != http.StatusOK {
		t.Fatalf("the held session after a refused sign-in in its user's name: /api/v1/me/ %d, want 200 (no epoch on a failed login)", code)
	}

	// Deactivated at Superset's node, not through the gateway (as a
	// deprovisioning script or `superset fab` would): Superset itself stops
	// honouring the session at once (FAB loads no inactive user), and only
	// the reconciler can tell the gateway. Its stamp is what keeps the
	// session dead if the user is made active again.
	const stamps = "superset_gateway_epoch_stamps_total"
	stamped := func() float64 { return metric(t, g, stamps, `trigger="reconciler"`) }
	before := stamped()
	node := epLogin(t, e.c.Target.BaseURL, e.c.Target.Admin)
	node.must(t, http.MethodPut, "/api/v1/security/users/"+id, map[string]any{"active": false})
	t0 := time.Now()
	deadline := t0.Add(2*reconcile + 5*time.Second)
	for stamped() == before {
		if time.Now().After(deadline) {
			t.Fatalf("no reconciler stamp %s after the deactivation at Superset (reconcile_interval %s)", time.Since(t0).Round(time.Millisecond), reconcile)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("reconciler stamped %s after the deactivation (reconcile_interval %s)", time.Since(t0).Round(time.Millisecond), reconcile)
	if code, _ := meAs(t, g.URL, held); code != http.StatusUnauthorized {
		t.Fatalf("the held session of the deactivated user: /api/v1/me/ %d, want 401", code)
	}
	node.must(t, http.MethodPut, "/api/v1/security/users/"+id, map[string]any{"active": true})
	if code, user := meAs(t, g.URL, held); code != http.StatusUnauthorized {
		t.Fatalf("the held session after the user is active again: /api/v1/me/ %d as %q, want 401 (the reconciler's epoch)", code, user)
	}
}

// TestLDAPWrongPasswordCounted: a wrong LDAP password, by form or by the
// API with provider "ldap", is a failed sign-in to the rate-limit stage
// (ratelimit_decisions_total{class="login_failures",outcome="failure"}),
// as is a username the directory does not know; one failure does not
// block the right password.
func TestLDAPWrongPasswordCounted(t *testing.T) {
	e := sharedLDAP(t)
	tok, adminYAML := adminToken(t)
	g := startGatewayT(t, harness.GatewayOptions{
		Binary: buildGateway(t), Superset: e.s, Upstreams: []string{e.c.Target.BaseURL},
		DataDir: t.TempDir(), RateLimits: true, Extra: []string{adminYAML},
	})
	const name = "superset_gateway_ratelimit_decisions_total"
	failures := func() float64 {
		return metric(t, g, name, `class="login_failures"`, `outcome="failure"`)
	}
	ivan := e.person(t, "ivan")
	before := failures()

	c := newGWClient(t, g.URL)
	if resp := ldapLoginAttempt(t, c, ivan.Username, "wrong-"+ivan.Password); !refusedLogin(resp) {
		t.Fatalf("wrong LDAP password by form: %d %q, want FAB's 302 /login/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := meAs(t, g.URL, c.session()); code != http.StatusUnauthorized {
		t.Fatalf("after a wrong password: /api/v1/me/ %d, want 401", code)
	}
	if got := failures() - before; got != 1 {
		t.Fatalf("login_failures failure count rose by %v after a wrong LDAP password, want 1", got)
	}

	apiLogin := func(user, password string) int {
		t.Helper()
		code, _ := (&epAPI{base: g.URL}).call(t, http.MethodPost, "/api/v1/security/login",
			map[string]any{"username": user, "password": password, "provider": "ldap", "refresh": false})
		return code
	}
	if code := apiLogin(ivan.Username, "wrong-"+ivan.Password); code != http.StatusUnauthorized {
		t.Fatalf("API login with provider ldap and a wrong password: %d, want 401", code)
	}
	if got := failures() - before; got != 2 {
		t.Fatalf("login_failures failure count rose by %v after a wrong API password, want 2", got)
	}
	ghost := "nobody-" + epRand(3)
	if resp := ldapLoginAttempt(t, newGWClient(t, g.URL), ghost, "whatever-1"); !refusedLogin(resp) {
		t.Fatalf("unknown LDAP user by form: %d %q, want FAB's 302 /login/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := failures() - before; got != 3 {
		t.Fatalf("login_failures failure count rose by %v after an unknown user, want 3", got)
	}

	// The right password still works, by API and by form.
	if code := apiLogin(ivan.Username, ivan.Password); code != http.StatusOK {
		t.Fatalf("API login with provider ldap and the right password: %d, want 200", code)
	}
	ldapLogin(t, c, ivan.Username, ivan.Password)
	if code, user := meAs(t, g.URL, c.session()); code != http.StatusOK || user != ivan.Username {
		t.Fatalf("after the right password: /api/v1/me/ %d as %q", code, user)
	}
	if got := failures() - before; got != 3 {
		t.Fatalf("login_failures failure count %v after right passwords, want still 3", got)
	}
	t.Logf("%s{class=\"login_failures\",outcome=\"failure\"}: +%s", name, strconv.FormatFloat(failures()-before, 'f', -1, 64))

	// The session vault audits the two refused form sign-ins (the API
	// login makes no gateway session) and the accepted one.
	events := ldapAuditEvents(t, g, tok)
	if got := events["login.failure/form"]; got != 2 {
		t.Errorf("audit: %d login.failure events with method form, want 2 (all: %v)", got, events)
	}
	if got := events["login.success/form"]; got != 1 {
		t.Errorf("audit: %d login.success events with method form, want 1 (all: %v)", got, events)
	}
}

// ldapAuditEvents counts g's sign-in audit events of the last 10 minutes
// (admin API) by "<event>/<details.method>".
func ldapAuditEvents(t *testing.T, g *harness.Gateway, token string) map[string]int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/-/admin/api/v1/audit?since=10m&limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Events []struct {
			Event   string         `json:"event"`
			Details map[string]any `json:"details"`
		} `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET /-/admin/api/v1/audit: %d %v", resp.StatusCode, err)
	}
	n := map[string]int{}
	for _, ev := range out.Events {
		if strings.HasPrefix(ev.Event, "login.") {
			n[fmt.Sprintf("%s/%v", ev.Event, ev.Details["method"])]++
		}
	}
	return n
}
