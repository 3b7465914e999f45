//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
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

// newIdP starts a provider tied to no test (the Superset pool's, which
// outlives every test); the caller closes it.
func newIdP(sub, email string) *idp {
	p := &idp{clientID: "sgw-e2e", secret: randHex(16), sub: sub, email: email,
		codes: map[string]string{}, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.Server = httptest.NewServer(mux)
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
