package jwtguard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// FuzzMiddleware feeds arbitrary Authorization headers and paths to the
// guard. Whatever the input: no panic; a request reaches the upstream only
// without a Superset bearer, with a gateway token, or with a token that
// verifies for the route's type; a refusal never echoes the header.
func FuzzMiddleware(f *testing.F) {
	now := time.Unix(1_900_000_000, 0)
	good, _ := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: "3", Now: now})
	refresh, _ := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: "3", Type: apijwt.Refresh, Now: now})
	hs := map[string]any{"alg": "HS256", "typ": "JWT"}
	for _, s := range []string{
		"", "Bearer " + good, "bearer " + good, "Bearer " + refresh, "Bearer sgw_x_y", "Basic eA==",
		"Bearer " + good + ", Bearer " + good, "Basic x, Bearer " + good, "Bearer", "Bearer  " + good + " x",
		"Bearer " + craft(map[string]any{"alg": "none"}, claims(now, nil), ""),
		"Bearer " + craft(map[string]any{"alg": "RS256"}, claims(now, nil), secretKey),
		"Bearer " + craft(hs, claims(now, map[string]any{"sub": 1}), secretKey),
		"Bearer " + craft(hs, claims(now, map[string]any{"iat": 1.5e300}), secretKey),
		"Bearer " + craft(hs, "[]", secretKey), "Bearer a.b.c", "Bearer ...", "Bearer \x00",
		// Python whitespace Go's strings.Fields does not know (as Latin-1 bytes).
		"Bearer\x85" + good, "Bearer\xa0" + good, ",\x85Bearer\x85" + good + "\x85", "Basic x,\xa0Bearer\xa0" + good,
	} {
		for _, p := range []string{"/api/v1/me/", "/api/v1/security/refresh", "/api/v1/security/refresh/", "/x/../api/v1/security/refresh"} {
			f.Add(s, p)
		}
	}
	g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)},
		Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	v := apijwt.Verifier{Key: []byte(secretKey)}
	f.Fuzz(func(t *testing.T, auth, path string) {
		var reached bool
		var got principal.Principal
		h := chain(t, g, gatewaytest.AllowEpochs{}, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			reached = true
			got, _ = principal.FromContext(r.Context())
		}))
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.URL.Path = "/" + strings.TrimLeft(path, "/")
		req.Header["Authorization"] = []string{auth}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		tok, has, herr := jwtguard.BearerToken(req.Header)
		if !reached {
			if rec.Code != 401 {
				t.Fatalf("refusal status %d", rec.Code)
			}
			if len(auth) > 12 && strings.Contains(rec.Body.String(), auth) {
				t.Fatal("refusal echoes the header")
			}
			return
		}
		if herr != nil {
			t.Fatal("ambiguous header reached the upstream")
		}
		// What Superset itself would authenticate with must have been
		// verified here (the same token), or be a gateway token.
		if st, ok := supersetBearer(auth); ok && !strings.HasPrefix(st, jwtguard.GatewayTokenPrefix) && (got.Kind == principal.None || tok != st) {
			t.Fatalf("Superset would authenticate with %.40q, which the guard did not verify", st)
		}
		if !has || strings.HasPrefix(tok, jwtguard.GatewayTokenPrefix) {
			return
		}
		want := apijwt.Access
		if jwtguard.IsRefreshRoute(req.Method, req.URL.Path) {
			want = apijwt.Refresh
		}
		c, err := v.Verify(tok, want, now)
		if err != nil || got.UserID != c.Subject || !got.IssuedAt.Equal(c.IssuedAt) {
			t.Fatalf("unverifiable token reached the upstream, or as another principal (%+v): %v", got, err)
		}
	})
}

// supersetBearer models flask-jwt-extended 4.7.1 reading Authorization
// under WSGI, independently of the guard: the header bytes as Latin-1,
// .strip().strip(","), re.split(r",\s*"), the one element whose
// str.split()[0] is exactly "Bearer", and its second word. Python's
// whitespace is Unicode's plus 0x1c–0x1f.
func supersetBearer(header string) (string, bool) {
	rs := make([]rune, len(header))
	for i := 0; i < len(header); i++ {
		rs[i] = rune(header[i])
	}
	isSpace := func(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }
	h := strings.Trim(strings.TrimFunc(string(rs), isSpace), ",")
	var found []string
	for _, el := range strings.Split(h, ",") {
		w := strings.FieldsFunc(el, isSpace)
		if len(w) > 0 && w[0] == "Bearer" {
			found = append(found, el)
		}
	}
	if len(found) != 1 {
		return "", false
	}
	w := strings.FieldsFunc(found[0], isSpace)
	if len(w) != 2 {
		return "", false
	}
	// Back to the original bytes: every rune here is one Latin-1 byte.
	b := make([]byte, 0, len(w[1]))
	for _, r := range w[1] {
		b = append(b, byte(r))
	}
	return string(b), true
}
