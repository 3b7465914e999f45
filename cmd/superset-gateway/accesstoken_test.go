package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// pepperWarning starts the warning logged when the pepper is derived from
// the cookie keys.
const pepperWarning = "access_tokens.pepper_file is not set"

// Two peppers that pass the strength check.
const (
	pepperA = "pA7rQ2vX9kLm4Tz8Wc1Ny6Hb3Fd5Gs0Ju2Ke7Ro4Vi9Xa"
	pepperB = "qB8sR3wY0lMn5Ua9Xd2Oz7Ic4Ge6Ht1Kv3Lf8Sp5Wj0Yb"
)

// tokenBackend is the fake Superset behind the gateway; leaked counts the
// requests that reached it with "sgw_" anywhere in Authorization, reached
// counts all of them.
type tokenBackend struct {
	url             string
	leaked, reached atomic.Int32
}

func newTokenBackend(t *testing.T) *tokenBackend {
	t.Helper()
	fake := fakesuperset.New(fakesuperset.Options{SecretKey: fakeSecret})
	b := &tokenBackend{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The gateway's own health checks and its upstream secret probe
		// (GET /login/, docs/audit.md) are not client requests.
		if r.URL.Path != "/health" && r.Header.Get("User-Agent") != "superset-gateway-health" {
			b.reached.Add(1)
		}
		if strings.Contains(strings.Join(r.Header.Values("Authorization"), " "), accesstoken.Prefix) {
			b.leaked.Add(1)
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	b.url = s.URL
	return b
}

// tokenYAML is a runnable config in front of upstream with the embedded
// store in data and extra appended (an access_tokens section).
func tokenYAML(t *testing.T, upstream, data, extra string) string {
	t.Helper()
	sk := writeFile(t, t.TempDir(), "sk", fakeSecret)
	return fmt.Sprintf("listen: %s\nupstreams: [%s]\nstore: {data_dir: %q}\nmetrics: {listen: \"\"}\nsuperset: {secret_key_file: %q}\n%s",
		freePort(t), upstream, data, sk, extra)
}

// stop ends a gateway started by startGateway and waits for it (its
// store's file lock is released), leaving the exit code for the cleanup.
func (g *runningGateway) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	select {
	case code := <-g.done:
		g.done <- code
		if code != exitOK {
			t.Fatalf("serve exited %d: %s", code, g.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// createTokenOnPage signs alice in through the gateway and creates a token
// with scope on /-/tokens, as a user would.
func createTokenOnPage(t *testing.T, base, scope string) string {
	t.Helper()
	// A fresh store stamps the global epoch at start: sign in a second later.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	m := regexp.MustCompile(`name="csrf_token"[^>]*value="([^"]+)"`).FindStringSubmatch(getBody(t, c, base+"/login/"))
	if m == nil {
		t.Fatal("no csrf_token on the login page")
	}
	resp, err := c.PostForm(base+"/login/", url.Values{"username": {"alice"}, "password": {fakesuperset.AlicePassword}, "csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, err = c.PostForm(base+"/-/tokens/create", url.Values{"name": {"ci"}, "scope": {scope}, "ttl": {"86400"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := regexp.MustCompile(accesstoken.Pattern).FindString(string(page))
	if resp.StatusCode != http.StatusOK || tok == "" {
		t.Fatalf("create on /-/tokens: %d, token shown: %v", resp.StatusCode, tok != "")
	}
	return tok
}

// withAuth is GET base+path with Authorization set to each of auth, and
// the status and body of the answer.
func withAuth(t *testing.T, base, path string, auth ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccessTokenPepperFile: with access_tokens.pepper_file the file is the
// pepper. A token created under pepper A is refused after a restart with
// pepper B, and accepted again after a restart with A; no fallback warning
// is logged.
func TestAccessTokenPepperFile(t *testing.T) {
	dir := t.TempDir()
	be := newTokenBackend(t)
	data := filepath.Join(dir, "data")
	fileA := writeFile(t, dir, "pepper-a", pepperA+"\n")
	fileB := writeFile(t, dir, "pepper-b", pepperB+"\n")
	start := func(pepperFile string) *runningGateway {
		t.Helper()
		return startGateway(t, dir, tokenYAML(t, be.url, data, "access_tokens: {pepper_file: "+pepperFile+"}\n"), nil)
	}

	g := start(fileA)
	tok := createTokenOnPage(t, g.base, "api:read")
	if code, body := withAuth(t, g.base, "/api/v1/me/", "Bearer "+tok); code != http.StatusOK || !strings.Contains(body, `"username":"alice"`) {
		t.Fatalf("token under pepper A: %d %s", code, body)
	}
	if strings.Contains(g.stderr.String(), pepperWarning) {
		t.Error("the derived-pepper warning is logged although pepper_file is set")
	}
	g.stop(t)

	g = start(fileB)
	if code, body := withAuth(t, g.base, "/api/v1/me/", "Bearer "+tok); code != http.StatusUnauthorized || !strings.Contains(body, "Invalid access token") {
		t.Fatalf("token of pepper A under pepper B: %d %s, want 401", code, body)
	}
	g.stop(t)

	g = start(fileA)
	if code, _ := withAuth(t, g.base, "/api/v1/me/", "Bearer "+tok); code != http.StatusOK {
		t.Fatalf("token under pepper A again: %d, want 200", code)
	}
	if n := be.leaked.Load(); n != 0 {
		t.Fatalf("%d requests reached Superset with the access token", n)
	}
	if strings.Contains(g.stderr.String()+g.stdout.String(), pepperA) {
		t.Fatal("the pepper was logged")
	}
}

// TestAccessTokenPepperDerivedByDefault: without pepper_file the pepper is
// still the one derived from the oldest cookie-key generation, so tokens
// made before the key existed keep working; a warning at start says what
// retiring that generation does. Setting pepper_file afterwards invalidates
// them (documented).
func TestAccessTokenPepperDerivedByDefault(t *testing.T) {
	dir := t.TempDir()
	be := newTokenBackend(t)
	data := filepath.Join(dir, "data")
	newest := []byte("Nw7Qe2Rt9Yu4Io1Pa6Sd3Fg8Hj5Kl0Zx2Cv7Bm4Qw9Er6Ty1Ui8Op3As5Df0Gh")
	oldest := []byte("Od3Lk8Jh1Gf6Ds9Aq2Wz7Ex4Rc0Vt5By8Nu3Mi6Ko1Pl9Ij4Uh7Yg2Tf5Rd0Es")
	keys := writeFile(t, dir, "cookie-keys", cookieKeyLine(newest, []byte(strongSecret[:32]))+cookieKeyLine(oldest, []byte(strongSecret[8:40])))
	yaml := func(extra string) string {
		return tokenYAML(t, be.url, data, "session: {cookie_keys_file: "+keys+"}\n"+extra)
	}

	// The first start creates the store (and stamps the global epoch).
	g := startGateway(t, dir, yaml(""), nil)
	if n := strings.Count(g.stderr.String(), pepperWarning); n != 1 {
		t.Fatalf("derived-pepper warning logged %d times, want 1:\n%s", n, g.stderr.String())
	}
	if !strings.Contains(g.stderr.String(), "retiring that generation invalidates every access token") {
		t.Fatalf("the warning does not say what retiring the generation does:\n%s", g.stderr.String())
	}
	g.stop(t)

	// A token as the gateway made it before access_tokens existed: pepper
	// derived from the oldest generation's hash key.
	time.Sleep(5 * time.Millisecond) // created after the epoch's millisecond
	pepper, err := accesstoken.DerivePepper(oldest)
	if err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(data, gateway.BoltFileName), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := accesstoken.NewManager(accesstoken.ManagerOptions{Store: st, Pepper: pepper})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Create(context.Background(), accesstoken.Owner{ID: "2", Username: "alice"}, "old", []string{"api:read"}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	g = startGateway(t, dir, yaml(""), nil)
	if code, body := withAuth(t, g.base, "/api/v1/me/", "Bearer "+tok); code != http.StatusOK || !strings.Contains(body, `"username":"alice"`) {
		t.Fatalf("a token of the derived pepper: %d %s", code, body)
	}
	g.stop(t)

	// Moving to a dedicated pepper invalidates it.
	g = startGateway(t, dir, yaml("access_tokens: {pepper_file: "+writeFile(t, dir, "pepper", pepperA)+"}\n"), nil)
	if code, _ := withAuth(t, g.base, "/api/v1/me/", "Bearer "+tok); code != http.StatusUnauthorized {
		t.Fatalf("a token of the derived pepper under pepper_file: %d, want 401", code)
	}
}

// TestAccessTokensDisabled: with access_tokens.enabled false (here from the
// environment) there is no /-/tokens page, and a gateway access token in
// Authorization, in any shape, is refused with 401 before it can reach
// Superset; other requests still pass, and admins still list tokens.
func TestAccessTokensDisabled(t *testing.T) {
	dir := t.TempDir()
	be := newTokenBackend(t)
	code, out, errOut := runCmd(t, context.Background(), nil, "admin-token", "create", "ci")
	if code != exitOK {
		t.Fatalf("admin-token create: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	adminToken := strings.TrimSpace(lines[1])
	tokens := writeFile(t, dir, "admin-tokens", strings.TrimSpace(lines[3])+"\n")
	g := startGateway(t, dir, tokenYAML(t, be.url, filepath.Join(dir, "data"), "admin: {tokens_file: "+tokens+"}\n"),
		[]string{"SG_ACCESS_TOKENS_ENABLED=false"})
	if !strings.Contains(g.stderr.String(), "access tokens are disabled") {
		t.Errorf("no start-up line saying access tokens are disabled:\n%s", g.stderr.String())
	}
	if strings.Contains(g.stderr.String(), pepperWarning) {
		t.Error("the pepper warning is logged while access tokens are disabled")
	}

	// A well-formed token (checksum included) that no store holds.
	body := accesstoken.Prefix + strings.Repeat("a", accesstoken.IDLen) + "_" + strings.Repeat("b", accesstoken.SecretLen)
	good := fmt.Sprintf("%s_%08x", body, crc32.ChecksumIEEE([]byte(body)))
	if _, _, err := accesstoken.Parse(good); err != nil {
		t.Fatal(err)
	}
	for _, auth := range [][]string{
		{"Bearer " + good},
		{"bearer " + good},
		{"Bearer  " + good},
		{"Bearer sgw_not_even_well_formed"},
		{"Bearer " + good + ", Basic eA=="},
		{"Token " + good},
		// Two headers: request hygiene refuses them first (400).
		{"Basic eA==", "Bearer " + good},
	} {
		code, body := withAuth(t, g.base, "/api/v1/me/", auth...)
		if len(auth) > 1 && code == http.StatusBadRequest {
			continue
		}
		if code != http.StatusUnauthorized || (len(auth) == 1 && !strings.Contains(body, `"msg": "access tokens are disabled"`)) {
			t.Errorf("%q: %d %s, want 401 access tokens are disabled", auth, code, body)
		}
	}
	if n := be.reached.Load(); n != 0 {
		t.Fatalf("%d refused requests reached Superset", n)
	}
	// Requests without an access token are not affected.
	withAuth(t, g.base, "/api/v1/me/")
	if be.reached.Load() != 1 || be.leaked.Load() != 0 {
		t.Fatalf("Superset saw %d requests, %d with an access token; want 1 and 0", be.reached.Load(), be.leaked.Load())
	}
	// No page: 404 from the gateway, never proxied.
	if code, _ := withAuth(t, g.base, "/-/tokens"); code != http.StatusNotFound {
		t.Errorf("/-/tokens while disabled: %d, want 404", code)
	}
	// Admins still see (and can revoke) stored tokens.
	if code, body := withAuth(t, g.base, "/-/admin/api/v1/tokens", "Bearer "+adminToken); code != http.StatusOK || !strings.Contains(body, `"tokens":[]`) {
		t.Errorf("admin list while disabled: %d %s", code, body)
	}
	if be.leaked.Load() != 0 {
		t.Fatal("an access token reached Superset")
	}
}

// TestAccessTokensConfigRefused: bad access_tokens values and pepper files
// exit 2 with one line naming the key, from check-config and serve alike;
// the pepper is never printed.
func TestAccessTokensConfigRefused(t *testing.T) {
	dir := t.TempDir()
	sk := writeFile(t, dir, "sk", strongSecret)
	short := "Xk4Lq9Wz2Rt7Yp"
	for _, tt := range []struct {
		name, section, pepper, want string
	}{
		{"max_ttl zero", "{max_ttl: 0s}", "", "config: access_tokens.max_ttl: must be a positive duration"},
		{"max_ttl in days", "{max_ttl: 90d}", "", `config: access_tokens.max_ttl (line 2): "90d" is not a duration`},
		{"choice above max_ttl", "{max_ttl: 168h, ttl_choices: [24h, 720h]}", "", "config: access_tokens.ttl_choices[1]: 720h0m0s is longer than access_tokens.max_ttl (168h0m0s)"},
		{"choice zero", "{ttl_choices: [0s]}", "", "config: access_tokens.ttl_choices[0]: must be a positive duration"},
		{"max_per_user zero", "{max_per_user: 0}", "", "config: access_tokens.max_per_user: must be at least 1, got 0"},
		{"pepper missing", "{pepper_file: /nonexistent/pepper}", "", "config: access_tokens.pepper_file: open /nonexistent/pepper"},
		{"pepper empty", "", "\n", "config: access_tokens.pepper_file: is empty"},
		{"pepper short", "", short + "\n", "config: access_tokens.pepper_file: is shorter than 32 bytes"},
		{"pepper placeholder", "", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET\n", "config: access_tokens.pepper_file: is a published default or placeholder value"},
		{"pepper low entropy", "", strings.Repeat("pepper", 8) + "\n", "config: access_tokens.pepper_file: has too little entropy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			section := tt.section
			if tt.pepper != "" {
				section = "{pepper_file: " + writeFile(t, dir, "pepper", tt.pepper) + "}"
			}
			p := writeFile(t, dir, "gw.yaml", "superset: {secret_key_file: "+sk+"}\naccess_tokens: "+section+"\nstore: {data_dir: "+filepath.Join(dir, "data")+"}\n")
			for _, cmd := range []string{"check-config", "serve"} {
				code, _, errOut := runCmd(t, context.Background(), nil, cmd, "--config", p)
				want := "superset-gateway: " + tt.want
				if code != exitUsage || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
					t.Fatalf("%s: exit %d stderr %q, want 2 and one line starting %q", cmd, code, errOut, want)
				}
				if tt.pepper != "" && len(strings.TrimSpace(tt.pepper)) > 0 && strings.Contains(errOut, strings.TrimSpace(tt.pepper)) {
					t.Fatal("the refused pepper was printed")
				}
			}
		})
	}

	// superset.allow_weak_secrets accepts a weak pepper of 32 bytes or
	// more, never a shorter one (the manager cannot use it).
	weak := writeFile(t, dir, "weak", strings.Repeat("pepper", 8))
	p := writeFile(t, dir, "gw.yaml", "superset: {secret_key_file: "+sk+", allow_weak_secrets: true}\naccess_tokens: {pepper_file: "+weak+"}\n")
	if code, out, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p); code != exitOK || out != "OK\n" {
		t.Fatalf("weak pepper with the opt-out: exit %d %q %q", code, out, errOut)
	}
	shortFile := writeFile(t, dir, "short", short)
	p = writeFile(t, dir, "gw.yaml", "superset: {secret_key_file: "+sk+", allow_weak_secrets: true}\naccess_tokens: {pepper_file: "+shortFile+"}\n")
	code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
	if code != exitUsage || !strings.HasPrefix(errOut, "superset-gateway: config: access_tokens.pepper_file: is shorter than 32 bytes (superset.allow_weak_secrets does not lift this)") {
		t.Fatalf("short pepper with the opt-out: exit %d %q", code, errOut)
	}
	if strings.Contains(errOut, short) {
		t.Fatal("the refused pepper was printed")
	}
}

// fakeSecret is the fake Superset's SECRET_KEY in these tests.
const fakeSecret = "fake-superset-secret-key-for-service-tests-0123456789"
