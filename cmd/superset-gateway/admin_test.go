package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// adminGateway runs the real serve in front of the fake Superset with one
// admin token configured and the service user set, and returns it with the
// token.
func adminGateway(t *testing.T) (*runningGateway, string) {
	t.Helper()
	dir, y, token := adminGatewayConfig(t)
	return startGateway(t, dir, y, nil), token
}

// adminGatewayConfig is adminGateway's config (in dir) and admin token,
// for tests that stop and start the gateway.
func adminGatewayConfig(t *testing.T) (dir, yaml, token string) {
	t.Helper()
	dir = t.TempDir()
	fake := fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret})
	be := httptest.NewServer(fake)
	t.Cleanup(be.Close)
	code, out, errOut := runCmd(t, context.Background(), nil, "admin-token", "create", "ci")
	if code != exitOK {
		t.Fatalf("admin-token create: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("admin-token create printed %q", out)
	}
	token, line := strings.TrimSpace(lines[1]), strings.TrimSpace(lines[3])
	if !strings.HasPrefix(line, "ci ") || strings.Contains(line, token) {
		t.Fatalf("tokens_file line %q (must hold the hash, never the token)", line)
	}
	tokens := writeFile(t, dir, "admin-tokens", line+"\n")
	sk := writeFile(t, dir, "sk", fakeSecret)
	y := fmt.Sprintf("listen: %s\nupstreams: [%s]\nstore: {data_dir: %q}\nmetrics: {listen: \"\"}\nsuperset: {secret_key_file: %q, service_user_id: 1}\nadmin: {tokens_file: %q}\nsession: {cache_ttl: 50ms}\n",
		freePort(t), be.URL, filepath.Join(dir, "data"), sk, tokens)
	return dir, y, token
}

// bearerStatus is the status of GET /api/v1/me/ through the gateway with a
// Superset access JWT.
func bearerStatus(t *testing.T, base, jwt string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+jwt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCLIRevokeUserEndsTheirJWTs: `revoke user` goes through the admin API;
// bob's JWT issued before it is refused by the gateway, one issued after
// works.
func TestCLIRevokeUserEndsTheirJWTs(t *testing.T) {
	g, token := adminGateway(t)
	// A fresh store stamps the global epoch at start: a JWT must be issued
	// in a later second to be valid at all.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	old, err := apijwt.Mint([]byte(fakeSecret), apijwt.MintOptions{Subject: "3", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if code := bearerStatus(t, g.base, old); code != http.StatusOK {
		t.Fatalf("bob's JWT before the revocation: %d", code)
	}
	env := []string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}
	code, out, errOut := runCmd(t, context.Background(), env, "revoke", "user", "3", "--reason", "laptop stolen")
	if code != exitOK {
		t.Fatalf("revoke user: exit %d: %s", code, errOut)
	}
	var got struct {
		Epoch int64 `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Epoch == 0 {
		t.Fatalf("revoke user printed %q", out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for bearerStatus(t, g.base, old) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("bob's pre-revocation JWT still reaches Superset")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(time.UnixMilli(got.Epoch).Truncate(time.Second).Add(time.Second)))
	if code := bearerStatus(t, g.base, old); code != http.StatusUnauthorized {
		t.Fatalf("the old JWT came back after the epoch's second: %d", code)
	}
	fresh, _ := apijwt.Mint([]byte(fakeSecret), apijwt.MintOptions{Subject: "3", Now: time.Now()})
	if code := bearerStatus(t, g.base, fresh); code != http.StatusOK {
		t.Fatalf("a JWT issued after the revocation: %d, want 200", code)
	}
	var audited bool
	for _, line := range strings.Split(g.stdout.String(), "\n") {
		if strings.Contains(line, `"event":"admin.user.revoke"`) && strings.Contains(line, `"actor":"admin-token:ci"`) &&
			strings.Contains(line, `"note":"laptop stolen"`) && strings.Contains(line, `"subject":"user:3"`) {
			audited = true
		}
	}
	if !audited {
		t.Errorf("no audit line naming the admin token, user 3 and the reason in:\n%s", g.stdout.String())
	}
}

// TestCLIRevokeUserByName: a username is resolved through Superset (as
// the service user) and the user's id is stamped.
func TestCLIRevokeUserByName(t *testing.T) {
	g, token := adminGateway(t)
	env := []string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}
	code, out, errOut := runCmd(t, context.Background(), env, "revoke", "user", "bob", "--reason", "left")
	if code != exitOK || !strings.Contains(out, `"user_id":"3"`) || !strings.Contains(out, `"username":"bob"`) {
		t.Fatalf("revoke user bob: exit %d %q %s", code, out, errOut)
	}
}

func TestCLIRevokeRefusals(t *testing.T) {
	g, token := adminGateway(t)
	for _, c := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{nil, []string{"revoke", "user", "3", "--reason", "x", "--url", g.base}, exitUsage, "no admin token"},
		{[]string{"SG_ADMIN_TOKEN=" + token}, []string{"revoke", "user", "03", "--reason", "x"}, exitUsage, "is not a Superset user id"},
		{[]string{"SG_ADMIN_TOKEN=" + token}, []string{"revoke", "user", "3"}, exitUsage, "--reason is required"},
		{[]string{"SG_ADMIN_TOKEN=" + token}, []string{"revoke", "guest-tokens", "--all", "--dashboard", "1"}, exitUsage, "exclude each other"},
		{[]string{"SG_ADMIN_TOKEN=sgwa_wrong"}, []string{"revoke", "user", "3", "--reason", "x", "--url", g.base}, exitFailure, "401"},
		// Asked of Superset: unknown users revoke nobody.
		{[]string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}, []string{"revoke", "user", "99", "--reason", "x"}, exitFailure, `404 Not Found: Superset has no user with the id "99"`},
		{[]string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}, []string{"revoke", "user", "mallory", "--reason", "x"}, exitFailure, `Superset has no user with the username "mallory"`},
	} {
		code, _, errOut := runCmd(t, context.Background(), c.env, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q, want %d containing %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestCLIRevokeGuestTokensByAlias: revoking by slug stamps the id, the slug
// and the embed uuid, resolved through Superset as the service user.
func TestCLIRevokeGuestTokensByAlias(t *testing.T) {
	g, token := adminGateway(t)
	d := fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret}).Dashboard()
	env := []string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}
	code, out, errOut := runCmd(t, context.Background(), env, "revoke", "guest-tokens", "--dashboard", d.Slug, "--reason", "leaked")
	if code != exitOK {
		t.Fatalf("revoke guest-tokens: exit %d: %s", code, errOut)
	}
	for _, alias := range []string{`"1"`, d.Slug, d.EmbedUUID} {
		if !strings.Contains(out, alias) {
			t.Errorf("aliases stamped %s: %s missing", out, alias)
		}
	}
	code, _, errOut = runCmd(t, context.Background(), env, "revoke", "guest-tokens", "--dashboard", "no-such-dashboard")
	if code != exitFailure || !strings.Contains(errOut, "404") {
		t.Errorf("unknown dashboard: exit %d %q, want 1 with 404", code, errOut)
	}
	code, out, _ = runCmd(t, context.Background(), env, "revoke", "guest-tokens", "--all")
	if code != exitOK || !strings.Contains(out, "global") {
		t.Errorf("revoke --all: %d %q", code, out)
	}
}

// TestAccessTokensWired: through the real serve, a signed-in user creates a
// token on /-/tokens and uses it; it reaches Superset as that user within
// its scope only; the page sends visitors who are not signed in to login.
func TestAccessTokensWired(t *testing.T) {
	g, adminToken := adminGateway(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(g.base + "/-/tokens")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(resp.Header.Get("Location"), "/login/") {
		t.Fatalf("/-/tokens signed out: %d %q, want a redirect to /login/", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A fresh store stamps the global epoch at start: sign in a second later.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	tok := createAccessToken(t, g.base, "alice", fakesuperset.AlicePassword, "ci", "dashboards:read")
	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, g.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/api/v1/dashboard/1", tok); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Fatalf("in scope (dashboards:read): %d", code)
	}
	if code := get("/api/v1/database/", tok); code != http.StatusForbidden {
		t.Errorf("out of scope: %d, want 403", code)
	}
	if code := get("/superset/welcome/", tok); code != http.StatusForbidden {
		t.Errorf("a browser page with a token: %d, want 403", code)
	}
	bad := tok[:len(tok)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", tok[len(tok)-1])+1)%16])
	if code := get("/api/v1/dashboard/1", bad); code != http.StatusUnauthorized {
		t.Errorf("broken checksum: %d, want 401", code)
	}

	// An admin lists every token and revokes alice's through the admin API.
	id := strings.Split(tok, "_")[1]
	adminCall := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, g.base+"/-/admin/api/v1/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, out := adminCall(http.MethodGet, "tokens"); code != http.StatusOK || !strings.Contains(out, id) || strings.Contains(out, tok) {
		t.Fatalf("admin list: %d, lists the id: %v, leaks the token: %v", code, strings.Contains(out, id), strings.Contains(out, tok))
	}
	if code, _ := adminCall(http.MethodDelete, "tokens/"+id); code != http.StatusOK {
		t.Fatalf("admin revoke: %d", code)
	}
	if code, _ := adminCall(http.MethodDelete, "tokens/not-an-id"); code != http.StatusBadRequest {
		t.Errorf("admin revoke of a malformed id: %d, want 400", code)
	}
	deadline := time.Now().Add(2 * time.Second)
	for get("/api/v1/dashboard/1", tok) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a token revoked by an admin still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// createAccessToken signs user in through the gateway at base and creates
// an access token named name with one scope on /-/tokens, expiring in a day,
// and returns the token shown once. The gateway must have started in an
// earlier second (a fresh store stamps the global epoch at start, and a
// session from the same second would be refused).
func createAccessToken(t *testing.T, base, user, password, name, scope string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body := getBody(t, c, base+"/login/")
	m := regexp.MustCompile(`name="csrf_token"[^>]*value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no csrf_token on the login page")
	}
	resp, err := c.PostForm(base+"/login/", url.Values{"username": {user}, "password": {password}, "csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	resp, err = c.PostForm(base+"/-/tokens/create", url.Values{"name": {name}, "scope": {scope}, "ttl": {"86400"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(`sgw_[a-z2-7]{16}_[a-z2-7]{32}_[0-9a-f]{8}`).FindString(string(page))
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("%s creating %q on /-/tokens: %d, token shown: %v", user, name, resp.StatusCode, tok != "")
	}
	return tok
}

func getBody(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
