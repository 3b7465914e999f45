//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// Invalidation-epoch (A2) end-to-end helpers. Names carry an "ep" prefix:
// the package is shared with other suites.

const (
	// epReconcile is the reconcile_interval the epoch suite runs with.
	epReconcile = 2 * time.Second
	// epCacheTTL is session.cache_ttl's default: the bound on cross-replica
	// propagation of a stamp when a pub/sub message is lost.
	epCacheTTL = time.Second
	// epSlack absorbs request latency on a loaded 2-core machine.
	epSlack = 1500 * time.Millisecond
)

// epRig is one Redis (appendonly, fsync always) with two gateway replicas
// sharing cookie keys, an admin API token and a 2s reconciler.
type epRig struct {
	t     *testing.T // the (sub)test failures go to; see with
	root  *testing.T // owns the processes (cleanups, temp dirs)
	e     *env
	rd    *redistest.Server
	bin   string
	keys  string
	token string // admin API token (SG_ADMIN_TOKEN)
	extra []string
	a, b  *harness.Gateway
	node  *epAPI // admin on Superset node 0, bypassing the gateway
}

// extra lines are added to every replica's config.
func newEpRig(t *testing.T, extra ...string) *epRig {
	t.Helper()
	e := shared(t)
	r := &epRig{t: t, root: t, e: e, bin: buildGateway(t), keys: writeCookieKeys(t)}
	r.rd = redistest.Start(t, redistest.Options{AppendOnly: true})
	tok, sum, err := admin.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "admin-tokens")
	if err := os.WriteFile(tf, []byte("e2e-epoch "+sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.token = tok
	r.extra = []string{
		"admin: {tokens_file: " + strconv.Quote(tf) + "}",
		"reconcile_interval: " + epReconcile.String(),
	}
	r.extra = append(r.extra, extra...)
	r.a, r.b = r.start(), r.start()
	r.node = epLogin(t, e.c.Nodes[0].URL, e.c.Target.Admin)
	return r
}

// with returns the rig reporting to the subtest t.
func (r *epRig) with(t *testing.T) *epRig {
	c := *r
	c.t = t
	return &c
}

// start runs one more replica on the rig's Redis; it lives until the root
// test ends.
func (r *epRig) start() *harness.Gateway {
	t := r.t
	t.Helper()
	root := r.root
	return startGatewayOn(t, root, harness.GatewayOptions{
		Binary: r.bin, Superset: r.e.s, Upstreams: nodeURLs(r.e), DataDir: root.TempDir(),
		RedisURL: r.rd.URL(), CookieKeysFile: r.keys, Extra: r.extra,
	})
}

// restart stops g and starts a replacement (new port, same Redis).
func (r *epRig) restart(g *harness.Gateway) *harness.Gateway {
	r.t.Helper()
	g.Stop()
	return r.start()
}

// replicas is both gateways, for checks that must hold on each.
func (r *epRig) replicas() []*harness.Gateway { return []*harness.Gateway{r.a, r.b} }

// epAPI is a JSON client for Superset's REST API with a Bearer JWT (at a
// node or through a gateway) and, when csrf is set, X-CSRFToken.
type epAPI struct {
	base, bearer, cookie, csrf string
}

// epLogin logs in through POST /api/v1/security/login at base.
func epLogin(t *testing.T, base string, cr conformance.Credentials) *epAPI {
	t.Helper()
	access, _ := epTokens(t, base, cr)
	return &epAPI{base: base, bearer: access}
}

// epTokens returns an access and a refresh JWT from base's API login.
func epTokens(t *testing.T, base string, cr conformance.Credentials) (access, refresh string) {
	t.Helper()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	code, body := (&epAPI{base: base}).call(t, http.MethodPost, "/api/v1/security/login",
		map[string]any{"username": cr.Username, "password": cr.Password, "provider": "db", "refresh": true})
	if code != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("API login as %s at %s: %d %.200s", cr.Username, base, code, body)
	}
	return tok.AccessToken, tok.RefreshToken
}

// call sends body (JSON, unless nil) and returns the status and the body.
func (a *epAPI) call(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	if a.cookie != "" {
		req.AddCookie(&http.Cookie{Name: gatewayCookie, Value: a.cookie})
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRFToken", a.csrf)
		req.Header.Set("Referer", a.base+"/")
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// must is call that fails the test unless the answer is 2xx.
func (a *epAPI) must(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	code, b := a.call(t, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s at %s: %d %.300s", method, path, a.base, code, b)
	}
	return b
}

// epUser is a throw-away Superset user (role Gamma) made for one check.
type epUser struct {
	ID int
	conformance.Credentials
}

func (u epUser) sid() string { return strconv.Itoa(u.ID) }

// newUser creates a Gamma user named prefix-<random> on node 0.
func (r *epRig) newUser(prefix string) epUser {
	t := r.t
	t.Helper()
	gamma := gammaRole(t, r.node)
	name := prefix + "-" + epRand(4)
	pw := "Pw-" + epRand(8)
	var out struct {
		ID int `json:"id"`
	}
	b := r.node.must(t, http.MethodPost, "/api/v1/security/users/", map[string]any{
		"username": name, "first_name": "Epoch", "last_name": "Test", "email": name + "@example.com",
		"password": pw, "active": true, "roles": []int{gamma},
	})
	if err := json.Unmarshal(b, &out); err != nil || out.ID == 0 {
		t.Fatalf("create user %s: %.200s", name, b)
	}
	return epUser{ID: out.ID, Credentials: conformance.Credentials{Username: name, Password: pw}}
}

// gammaRole is the Gamma role's id, read through node's roles API.
func gammaRole(t *testing.T, node *epAPI) int {
	t.Helper()
	var roles struct {
		Result []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"result"`
	}
	if err := json.Unmarshal(node.must(t, http.MethodGet, "/api/v1/security/roles/?q=(page_size:100)", nil), &roles); err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Result {
		if r.Name == "Gamma" {
			return r.ID
		}
	}
	t.Fatal("role Gamma not found")
	return 0
}

func epRand(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// epCreds are one user's credentials obtained through a gateway: a
// gateway session from the login form, an access and a refresh JWT from
// the API login.
type epCreds struct {
	who             string
	client          *gwClient // holds the session (for PUT /api/v1/me/)
	cookie          string
	access, refresh string
}

// signIn obtains u's credentials through g. It first waits past every
// epoch stamped for u (and the global one), since a JWT "iat" issued in
// the epoch's own second is refused by design.
func (r *epRig) signIn(g *harness.Gateway, u epUser) epCreds {
	t := r.t
	t.Helper()
	r.settle(g, u.sid())
	c := newGWClient(t, g.URL)
	c.login(u.Credentials)
	access, refresh := epTokens(t, g.URL, u.Credentials)
	return epCreds{who: u.Username, client: c, cookie: c.session(), access: access, refresh: refresh}
}

// epoch is GET /-/admin/api/v1/revocations, reduced to the newest stamp
// (Unix ms) for "user:<id>" and for "global", and the triggers stamped for
// the user, newest first.
func (r *epRig) epoch(g *harness.Gateway, id string) (user, global int64, triggers []string) {
	t := r.t
	t.Helper()
	code, b := r.adminCall(g, r.token, http.MethodGet, "revocations", nil)
	var out struct {
		Revocations []struct {
			Subject string `json:"subject"`
			Epoch   int64  `json:"epoch"`
			Trigger string `json:"trigger"`
		} `json:"revocations"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET revocations: %d %.200s", code, b)
	}
	for _, rv := range out.Revocations {
		switch rv.Subject {
		case "user:" + id:
			user = max(user, rv.Epoch)
			triggers = append(triggers, rv.Trigger)
		case "global":
			global = max(global, rv.Epoch)
		}
	}
	return user, global, triggers
}

// settle sleeps until the second after the newest stamp for user id and
// the global one, so that a JWT issued next is valid.
func (r *epRig) settle(g *harness.Gateway, id string) {
	r.t.Helper()
	u, gl, _ := r.epoch(g, id)
	if d := time.Until(time.UnixMilli(max(u, gl)).Truncate(time.Second).Add(time.Second + 5*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// adminCall calls the admin API at g with an admin token (a "sgwa_…"
// string), or none when token is "".
func (r *epRig) adminCall(g *harness.Gateway, token, method, path string, body any) (int, []byte) {
	r.t.Helper()
	a := &epAPI{base: g.URL, bearer: token}
	return a.call(r.t, method, admin.APIPrefix+path, body)
}

// outcome is what one credential gets from one replica.
type outcome struct {
	code int
	body string
}

func (o outcome) String() string { return fmt.Sprintf("%d %.120s", o.code, strings.TrimSpace(o.body)) }

// probe tries c's three credentials on g: the cookie and the access JWT on
// GET /api/v1/me/, the refresh JWT on POST /api/v1/security/refresh.
func probe(t *testing.T, g *harness.Gateway, c epCreds) (cookie, access, refresh outcome) {
	t.Helper()
	code, b := (&epAPI{base: g.URL, cookie: c.cookie}).call(t, http.MethodGet, "/api/v1/me/", nil)
	cookie = outcome{code, string(b)}
	code, b = (&epAPI{base: g.URL, bearer: c.access}).call(t, http.MethodGet, "/api/v1/me/", nil)
	access = outcome{code, string(b)}
	code, b = (&epAPI{base: g.URL, bearer: c.refresh}).call(t, http.MethodPost, "/api/v1/security/refresh", nil)
	refresh = outcome{code, string(b)}
	return
}

// revokedByGateway is the gateway's own refusal of a JWT (jwtguard), as
// opposed to Superset's 401 for a disabled user, which re-enabling undoes.
func revokedByGateway(o outcome) bool {
	return o.code == http.StatusUnauthorized && strings.Contains(o.body, "Token has been revoked")
}

// wantRefused waits until every credential in cs is refused on every
// replica in gs — the cookie 401 (the gateway drops the session), both
// JWTs refused by the gateway itself — and fails the test if that takes
// longer than bound. It returns how long it took.
func wantRefused(t *testing.T, bound time.Duration, gs []*harness.Gateway, cs ...epCreds) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var bad []string
		for _, g := range gs {
			for _, c := range cs {
				ck, ac, rf := probe(t, g, c)
				if ck.code != http.StatusUnauthorized {
					bad = append(bad, fmt.Sprintf("%s cookie at %s: %v", c.who, g.URL, ck))
				}
				if !revokedByGateway(ac) {
					bad = append(bad, fmt.Sprintf("%s access JWT at %s: %v", c.who, g.URL, ac))
				}
				if !revokedByGateway(rf) {
					bad = append(bad, fmt.Sprintf("%s refresh JWT at %s: %v", c.who, g.URL, rf))
				}
			}
		}
		if len(bad) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("after %s (bound %s) still accepted or not refused by the gateway:\n  %s",
				time.Since(start).Round(time.Millisecond), bound, strings.Join(bad, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantWorks checks that c's three credentials work on every replica in gs.
func wantWorks(t *testing.T, gs []*harness.Gateway, c epCreds) {
	t.Helper()
	for _, g := range gs {
		ck, ac, rf := probe(t, g, c)
		if ck.code != http.StatusOK || !strings.Contains(ck.body, `"`+c.who+`"`) {
			t.Errorf("%s cookie at %s: %v, want 200 as %s", c.who, g.URL, ck, c.who)
		}
		if ac.code != http.StatusOK || !strings.Contains(ac.body, `"`+c.who+`"`) {
			t.Errorf("%s access JWT at %s: %v, want 200 as %s", c.who, g.URL, ac, c.who)
		}
		if rf.code != http.StatusOK || !strings.Contains(rf.body, "access_token") {
			t.Errorf("%s refresh JWT at %s: %v, want 200 with an access token", c.who, g.URL, rf)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// setActive sets u's active flag directly on Superset node 0.
func (r *epRig) setActive(u epUser, on bool) {
	r.t.Helper()
	r.node.must(r.t, http.MethodPut, "/api/v1/security/users/"+u.sid(), map[string]any{"active": on})
}

// userActive reads u's active flag from node 0; found is false once u is
// deleted.
func (r *epRig) userActive(u epUser) (active, found bool) {
	t := r.t
	t.Helper()
	code, b := r.node.call(t, http.MethodGet, "/api/v1/security/users/"+u.sid(), nil)
	if code == http.StatusNotFound {
		return false, false
	}
	var out struct {
		Result struct {
			Active bool `json:"active"`
		} `json:"result"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET user %d: %d %.200s", u.ID, code, b)
	}
	return out.Result.Active, true
}

// hasTrigger reports whether trigger is among the stamps listed for u.
func (r *epRig) hasTrigger(g *harness.Gateway, u epUser, trigger string) bool {
	r.t.Helper()
	_, _, trs := r.epoch(g, u.sid())
	for _, tr := range trs {
		if tr == trigger {
			return true
		}
	}
	return false
}
