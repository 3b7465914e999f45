package fabkey_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/superset-gateway/superset-gateway/fabkey"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/internal/testkit"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// recorder records what reached "Superset" and answers 200.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (u *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
	u.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

type counts struct{ testkit.Counter }

func (c *counts) ObserveCredentialRefusal(kind, reason string) { c.Inc(kind + " " + reason) }

// front is the gateway's request path with the real JWT stage and, when
// fab is not nil, the FAB key stage, over the wire.
func front(t *testing.T, fab gateway.FABKeyStage) (string, *recorder, *counts, *testkit.Events) {
	t.Helper()
	g, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte("test-superset-secret-key-0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	up, obs, aud := &recorder{}, &counts{}, &testkit.Events{}
	srv := gatewaytest.Front(t, gateway.Parts{JWT: g, FABKeys: fab,
		Refusals: gateway.NewRefuser(gateway.RefuserOptions{Observer: obs, Auditor: aud, RequestInfo: gatewaytest.RequestInfo})}, up, nil)
	return srv.URL, up, obs, aud
}

const goodKey = "sst_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"

// Without the stage, a key is refused only by accident, as a malformed
// JWT: what issue 18 set out to change.
func TestWithoutStageAKeyIsAMalformedJWT(t *testing.T) {
	url, up, obs, _ := front(t, nil)
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/me/", nil)
	req.Header.Set("Authorization", "Bearer "+goodKey)
	resp, _ := gatewaytest.Do(t, req, "")
	if resp.StatusCode != http.StatusUnauthorized || obs.Get("access_jwt malformed") != 1 || len(up.seen) != 0 {
		t.Fatalf("status %d, malformed refusals %d, reached Superset %q", resp.StatusCode, obs.Get("access_jwt malformed"), up.seen)
	}
}

// The attacker's side: every bearer a FAB API key prefix starts, however
// it is spelled, is refused with fab_api_key (401, audited, counted) and
// never reaches Superset; FAB's management routes get 403 whoever asks.
func TestRefuseOverTheWire(t *testing.T) {
	url, up, obs, aud := front(t, fabkey.NewRefuser([]string{"sst_", "acme_"}))
	for _, tc := range []struct{ name, auth string }{
		{"a real-looking key", "Bearer " + goodKey},
		{"a forged key", "Bearer sst_" + strings.Repeat("A", 43)},
		{"the other configured prefix", "Bearer acme_" + goodKey[4:]},
		{"sst_ and JWT-looking garbage", "Bearer sst_eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."},
		{"oversized", "Bearer sst_" + strings.Repeat("x", 16<<10)},
		{"tab-separated (FAB misses it; jwt-extended reads it)", "Bearer\tsst_" + goodKey[4:]},
		{"lower-case scheme", "bearer " + goodKey},
	} {
		before := obs.Get("fab_api_key fab_api_key")
		req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/chart/", nil)
		req.Header.Set("Authorization", tc.auth)
		resp, body := gatewaytest.Do(t, req, "")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "API keys are not accepted") ||
			resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("%s: %d %q %q; want 401 with the API key message", tc.name, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
		if obs.Get("fab_api_key fab_api_key") != before+1 {
			t.Errorf("%s: not counted as kind fab_api_key, reason fab_api_key", tc.name)
		}
		if ev := aud.Last(); ev.Event != "fab_api_key.refused" || ev.Reason != "fab_api_key" || ev.RequestID == "" || ev.Actor != "anonymous" {
			t.Errorf("%s: audit %+v; want fab_api_key.refused with a request id", tc.name, ev)
		}
		if strings.Contains(aud.Last().Subject, "sst_") || strings.Contains(body, "sst_") {
			t.Errorf("%s: the key leaked into the answer or the audit event", tc.name)
		}
	}
	if obs.Get("access_jwt malformed") != 0 {
		t.Errorf("a key was judged as a JWT %d times", obs.Get("access_jwt malformed"))
	}

	// A key with a prefix the gateway was not told about is the JWT
	// stage's: it fails there (and in Superset) as a malformed JWT.
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/chart/", nil)
	req.Header.Set("Authorization", "Bearer other_"+goodKey[4:])
	if resp, _ := gatewaytest.Do(t, req, ""); resp.StatusCode != http.StatusUnauthorized || obs.Get("access_jwt malformed") != 1 {
		t.Errorf("unknown prefix: %d, malformed %d", resp.StatusCode, obs.Get("access_jwt malformed"))
	}

	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		for _, p := range []string{"/api/v1/security/api_keys/", "/api/v1/security/api_keys", "/api/v1/security/api_keys/0b7e-uuid", "//api/v1/security/./api_keys/"} {
			req, _ := http.NewRequest(m, url+p, strings.NewReader(`{"name":"k"}`))
			resp, body := gatewaytest.Do(t, req, "")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "API key management is disabled") {
				t.Errorf("%s %s: %d %q; want 403", m, p, resp.StatusCode, body)
			}
			if ev := aud.Last(); ev.Reason != "fab_api_key_management" || ev.RequestID == "" {
				t.Errorf("%s %s: audit %+v", m, p, ev)
			}
		}
	}
	if n := obs.Get("none fab_api_key_management"); n != 12 {
		t.Errorf("management refusals counted %d, want 12", n)
	}

	// Everything else passes: the stage claims nothing it should not.
	req, _ = http.NewRequest(http.MethodGet, url+"/api/v1/security/login_info", nil)
	if resp, _ := gatewaytest.Do(t, req, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("an anonymous request: %d", resp.StatusCode)
	}
	if len(up.seen) != 1 {
		t.Errorf("reached Superset: %q; want only the last, anonymous request", up.seen)
	}
}
