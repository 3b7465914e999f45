//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// idp is a tiny OAuth2 provider on loopback, just what Flask-AppBuilder's
// "okta" provider code and authlib use: an authorize endpoint that approves
// at once and redirects back with a code, a token endpoint (client secret,
// single-use code, same redirect_uri) and a userinfo endpoint.
type idp struct {
	*httptest.Server
	clientID, secret string
	sub, email       string

	mu          sync.Mutex
	codes       map[string]string // code -> redirect_uri
	tokens      map[string]bool
	redirectURI string // the last one Superset sent to /authorize
}

func startIdP(t *testing.T, sub, email string) *idp {
	t.Helper()
	p := &idp{clientID: "sgw-e2e", secret: randHex(16), sub: sub, email: email,
		codes: map[string]string{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *idp) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID || err != nil || !redirect.IsAbs() {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randHex(16)
	p.mu.Lock()
	p.codes[code] = q.Get("redirect_uri")
	p.redirectURI = q.Get("redirect_uri")
	p.mu.Unlock()
	back := redirect.Query()
	back.Set("code", code)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (p *idp) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth() // authlib's default: client_secret_basic
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	code := r.PostFormValue("code")
	p.mu.Lock()
	redirect, known := p.codes[code]
	delete(p.codes, code)
	p.mu.Unlock()
	if id != p.clientID || secret != p.secret || r.PostFormValue("grant_type") != "authorization_code" ||
		!known || r.PostFormValue("redirect_uri") != redirect {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	tok := randHex(16)
	p.mu.Lock()
	p.tokens[tok] = true
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": "email profile",
	})
}

func (p *idp) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	ok := p.tokens[tok]
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"unknown access token"}`))
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{
		"sub": p.sub, "email": p.email, "given_name": "Carol", "family_name": "Oauth",
	})
}

// TestOAuthLoginRotatesSession (issue 5 test 4): Superset with AUTH_TYPE =
// AUTH_OAUTH against a provider the test runs. An attacker's anonymous
// gateway session is planted in the victim's client; the victim signs in
// through GET /login/<provider> → provider → GET /oauth-authorized/<provider>
// on the gateway. The gateway cookie must change at the callback, the
// planted id must stay anonymous and the new one must be the OAuth user.
func TestOAuthLoginRotatesSession(t *testing.T) {
	venv := os.Getenv("SUPERSET_VENV")
	// FAB imports authlib only under AUTH_OAUTH; say so plainly if missing.
	if _, err := os.Stat(filepath.Join(venv, "lib", "python3.11", "site-packages", "authlib")); err != nil {
		t.Fatalf("Authlib is not installed in %s (FAB's oauth extra; install.sh must install it): %v", venv, err)
	}
	p := startIdP(t, "carol", "carol@example.com")
	const provider = "okta" // FAB: GET <api_base_url>userinfo, username "okta_<sub>"
	wantUser := provider + "_" + p.sub

	t0 := time.Now()
	s, c := ownSuperset(t, harness.Options{OAuth: &harness.OAuthProvider{
		Name: provider, ClientID: p.clientID, ClientSecret: p.secret,
		AuthorizeURL: p.URL + "/authorize", TokenURL: p.URL + "/token", APIBaseURL: p.URL + "/",
	}})
	g := gatewayFor(t, s, []string{c.Target.BaseURL})
	t.Logf("OAuth Superset + gateway up in %s", time.Since(t0).Round(time.Millisecond))

	attacker := newGWClient(t, g.URL)
	attacker.get("/login/")
	planted := attacker.session()
	if planted == "" {
		t.Fatal("GET /login/ through the gateway set no gateway cookie")
	}
	if code, _ := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("anonymous session: /api/v1/me/ %d, want 401", code)
	}

	v := newGWClient(t, g.URL)
	v.plant(planted)
	// The login page's provider link: FAB stores its state in the session
	// and sends the browser to the provider.
	resp, _ := v.get("/login/" + provider + "?next=" + url.QueryEscape("/superset/welcome/"))
	toIdP := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(toIdP, p.URL+"/authorize?") {
		t.Fatalf("GET /login/%s through the gateway: %d %q, want 302 to %s/authorize", provider, resp.StatusCode, toIdP, p.URL)
	}
	if got := v.session(); got != planted {
		t.Fatalf("the gateway session changed before the user was known (at /login/%s)", provider)
	}

	// The provider approves and sends the browser back to the gateway.
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
	p.mu.Lock()
	sent := p.redirectURI
	p.mu.Unlock()
	if want := g.URL + "/oauth-authorized/" + provider; sent != want {
		t.Fatalf("Superset's redirect_uri is %q, want the gateway's %q", sent, want)
	}
	resp, _ = v.get(back.RequestURI())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/superset/welcome/" {
		t.Fatalf("GET /oauth-authorized/%s through the gateway: %d %q, want 302 /superset/welcome/",
			provider, resp.StatusCode, resp.Header.Get("Location"))
	}
	after := v.session()
	if after == "" || after == planted {
		t.Fatalf("the gateway session id did not change at the OAuth callback (planted id kept: %v)", after == planted)
	}
	if code, user := meAs(t, g.URL, after); code != http.StatusOK || user != wantUser {
		t.Fatalf("victim's new session: /api/v1/me/ %d %q, want 200 %q", code, user, wantUser)
	}
	if code, user := meAs(t, g.URL, planted); code != http.StatusUnauthorized {
		t.Fatalf("FIXATION: the planted pre-login id reaches Superset as %q (status %d)", user, code)
	}
	// The victim's browser goes on working with the new cookie.
	if resp, _ := v.get("/superset/welcome/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /superset/welcome/ after the OAuth login: %d", resp.StatusCode)
	}
}
