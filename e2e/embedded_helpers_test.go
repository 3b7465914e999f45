//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// supersetAPI calls Superset's REST API the way an embedding app's backend
// does: a Bearer JWT from /api/v1/security/login, and for the CSRF-guarded
// endpoints (guest_token, dashboard writes) X-CSRFToken with the session
// cookie /api/v1/security/csrf_token/ set, kept in a cookie jar. Through
// the gateway, that cookie is the gateway's own.
type supersetAPI struct{ *harness.API }

func newSupersetAPI(base string, cr conformance.Credentials) (*supersetAPI, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := harness.NewAPIVia(ctx, base, cr.Username, cr.Password, &http.Transport{
		// An https gateway here serves writeTestCert's certificate.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	})
	if err != nil {
		return nil, err
	}
	if err := a.FetchCSRF(ctx); err != nil {
		return nil, err
	}
	return &supersetAPI{a}, nil
}

func mustSupersetAPI(t *testing.T, base string, cr conformance.Credentials) *supersetAPI {
	t.Helper()
	a, err := newSupersetAPI(base, cr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// call sends body as JSON and decodes a 2xx answer into out (if not nil).
// It is safe for concurrent use (the host page's handler calls it).
func (a *supersetAPI) call(method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return a.Do(ctx, method, path, body, out)
}

// guestToken asks POST /api/v1/security/guest_token/ for a token whose one
// resource is the dashboard named by ref (embed uuid, id or slug).
func (a *supersetAPI) guestToken(ref string) (string, error) {
	var r struct {
		Token string `json:"token"`
	}
	err := a.call(http.MethodPost, "/api/v1/security/guest_token/", map[string]any{
		"user":      map[string]any{"username": "embed-host", "first_name": "Embed", "last_name": "Host"},
		"resources": []map[string]any{{"type": "dashboard", "id": ref}},
		"rls":       []any{},
	}, &r)
	if err == nil && r.Token == "" {
		err = fmt.Errorf("guest_token: no token in the answer")
	}
	return r.Token, err
}

func (a *supersetAPI) mustGuestToken(t *testing.T, ref string) string {
	t.Helper()
	tok, err := a.guestToken(ref)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// embeddedDash is a dashboard with embedding enabled.
type embeddedDash struct {
	ID     int
	Slug   string
	UUID   string
	Marker string // text of its one markdown cell
}

// createEmbeddedDashboard creates a published dashboard holding one
// markdown cell whose text is a fresh marker (something the embedded page
// can only show after reading the dashboard with its guest token), and
// turns embedding on for any host domain.
func createEmbeddedDashboard(t *testing.T, a *supersetAPI, name string) embeddedDash {
	t.Helper()
	suffix := randHex(4)
	d := embeddedDash{Slug: "e2e-" + name + "-" + suffix, Marker: "sgw-marker-" + name + "-" + suffix}
	layout := map[string]any{
		"DASHBOARD_VERSION_KEY": "v2",
		"ROOT_ID":               map[string]any{"type": "ROOT", "id": "ROOT_ID", "children": []string{"GRID_ID"}},
		"GRID_ID":               map[string]any{"type": "GRID", "id": "GRID_ID", "children": []string{"ROW-e2e"}, "parents": []string{"ROOT_ID"}},
		"HEADER_ID":             map[string]any{"type": "HEADER", "id": "HEADER_ID", "meta": map[string]any{"text": "E2E " + name}},
		"ROW-e2e": map[string]any{"type": "ROW", "id": "ROW-e2e", "children": []string{"MARKDOWN-e2e"},
			"parents": []string{"ROOT_ID", "GRID_ID"}, "meta": map[string]any{"background": "BACKGROUND_TRANSPARENT"}},
		"MARKDOWN-e2e": map[string]any{"type": "MARKDOWN", "id": "MARKDOWN-e2e", "children": []string{},
			"parents": []string{"ROOT_ID", "GRID_ID", "ROW-e2e"}, "meta": map[string]any{"width": 6, "height": 30, "code": "# " + d.Marker}},
	}
	pos, _ := json.Marshal(layout)
	var created struct {
		ID int `json:"id"`
	}
	if err := a.call(http.MethodPost, "/api/v1/dashboard/", map[string]any{
		"dashboard_title": "E2E " + name + " " + suffix, "slug": d.Slug, "published": true, "position_json": string(pos),
	}, &created); err != nil {
		t.Fatal(err)
	}
	d.ID = created.ID
	var emb struct {
		Result struct {
			UUID string `json:"uuid"`
		} `json:"result"`
	}
	if err := a.call(http.MethodPost, fmt.Sprintf("/api/v1/dashboard/%d/embedded", d.ID),
		map[string]any{"allowed_domains": []string{}}, &emb); err != nil {
		t.Fatal(err)
	}
	d.UUID = emb.Result.UUID
	if d.ID == 0 || d.UUID == "" {
		t.Fatalf("dashboard %s: incomplete %+v", name, d)
	}
	return d
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// guestResult is what one request carrying a guest token got.
type guestResult struct {
	code       int
	body       string
	setCookies []string
}

// guestGet sends GET path with X-GuestToken and no cookie.
func guestGet(t *testing.T, base, token, path string) guestResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("X-GuestToken", token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return guestResult{code: resp.StatusCode, body: string(b), setCookies: resp.Header.Values("Set-Cookie")}
}

// wantGuest checks that the token gets want on GET /api/v1/dashboard/<id>
// and that the answer creates no gateway session (issue 7: guest traffic
// must not grow the store).
func wantGuest(t *testing.T, base, token string, dashID, want int, what string) {
	t.Helper()
	r := guestGet(t, base, token, "/api/v1/dashboard/"+strconv.Itoa(dashID))
	if r.code != want {
		t.Errorf("%s: GET /api/v1/dashboard/%d with X-GuestToken: %d %.200s, want %d", what, dashID, r.code, r.body, want)
	}
	for _, c := range r.setCookies {
		if strings.HasPrefix(c, gatewayCookie+"=") || strings.HasPrefix(c, "__Host-"+gatewayCookie+"=") {
			t.Errorf("%s: a guest-token request got a gateway session cookie: %.80s…", what, c)
		}
	}
}

// adminToken writes an admin.tokens_file with one fresh token and returns
// the token and the config line that points the gateway at the file.
func adminToken(t *testing.T) (token, yaml string) {
	t.Helper()
	tok, sum, err := admin.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "admin-tokens")
	if err := os.WriteFile(p, []byte("e2e "+sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return tok, "admin: {tokens_file: " + strconv.Quote(p) + "}"
}

// adminPost calls POST /-/admin/api/v1/<path> with the admin token and
// returns the status and the JSON answer.
func adminPost(t *testing.T, base, token, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/-/admin/api/v1/"+path, strings.NewReader(`{"reason":"e2e"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, out
}

// mustRevoke revokes a dashboard's guest tokens (ref: id, slug or embed
// uuid), or all of them when ref is "", and fails the test unless the
// gateway answered 200. It then waits past the current millisecond, so a
// token minted next is issued strictly after the stamp.
func mustRevoke(t *testing.T, base, token, ref string) map[string]any {
	t.Helper()
	path := "guest-tokens/revoke"
	if ref != "" {
		path = "dashboards/" + ref + "/guest-tokens/revoke"
	}
	code, out := adminPost(t, base, token, path)
	if code != http.StatusOK {
		t.Fatalf("POST /-/admin/api/v1/%s: %d %v, want 200 (is the admin API wired in serve?)", path, code, out)
	}
	time.Sleep(5 * time.Millisecond)
	return out
}

// metric sums the samples of the named metric in the gateway's /metrics
// whose label text contains every one of labels.
func metric(t *testing.T, g *harness.Gateway, name string, labels ...string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(g.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // a longer metric name with this prefix
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// startGatewayWith runs the gateway binary bin on DataDir data with extra
// config lines and, if redisURL is set, the Redis store (cookie keys then
// from keys, shared by replicas).
func startGatewayWith(t *testing.T, e *env, bin, data, redisURL, keys string, extra ...string) *harness.Gateway {
	t.Helper()
	return startGatewayOpts(t, e, harness.GatewayOptions{
		Binary: bin, DataDir: data, RedisURL: redisURL, CookieKeysFile: keys, Extra: extra,
	})
}

// startGatewayOpts runs the gateway with o in front of the shared
// Superset's nodes (o.Superset and o.Upstreams are filled in).
func startGatewayOpts(t *testing.T, e *env, o harness.GatewayOptions) *harness.Gateway {
	t.Helper()
	o.Superset, o.Upstreams = e.s, nodeURLs(e)
	g := startGatewayT(t, o)
	// A fresh store stamps the global epoch (in ms) at start, and an API
	// JWT's iat is in whole seconds: a JWT issued within the same second
	// is refused as revoked for its whole life. Log in only after it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
	return g
}

// writeTestCert writes a throw-away self-signed certificate for 127.0.0.1
// and localhost and returns the cert and key file paths.
func writeTestCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "superset-gateway e2e"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
