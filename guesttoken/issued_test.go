package guesttoken_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/guesttoken"

	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// issuingBackend answers POST /api/v1/security/guest_token/ like Superset,
// with a token signed by key; gz compresses the answer.
func issuingBackend(t testing.TB, key string, gz bool, clock *fakeClock) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != guesttoken.IssuePath {
			_, _ = io.WriteString(w, "{}")
			return
		}
		one := int64(1)
		tok, err := guestjwt.Mint([]byte(key), guestjwt.MintOptions{
			User:      guestjwt.User{Username: "embed-user"},
			Resources: []guestjwt.Resource{{Type: "dashboard", ID: "12"}, {Type: "dashboard", ID: "5b1a6c1e"}},
			RLSRules:  []guestjwt.RLSRule{{Dataset: &one, Clause: "region = 'EU'"}},
			Audience:  testAudience, Now: clock.Now(),
		})
		if err != nil {
			t.Error(err)
		}
		body, _ := json.Marshal(map[string]string{"token": tok})
		w.Header().Set("Content-Type", "application/json")
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}
}

// TestIssuanceCountedAndAudited: a token Superset issues passes through
// unchanged, is counted per dashboard and audited with who asked, for
// which dashboards and whether RLS rules were attached.
func TestIssuanceCountedAndAudited(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run("gzip="+strconv.FormatBool(gz), func(t *testing.T) {
			var e *env
			clock := newClock()
			e = newEnv(t, newBolt(t), issuingBackend(t, testSecret, gz, clock))
			req, _ := http.NewRequest(http.MethodPost, e.gw.URL+guesttoken.IssuePath, strings.NewReader(`{"resources":[]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Test-Actor", "user:1")
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			resp, err := e.gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			var body []byte = raw
			if gz {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(zr)
			}
			var v struct{ Token string }
			if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != 200 {
				t.Fatalf("client got %d %q: %v", resp.StatusCode, body, err)
			}
			if _, err := (guestjwt.Verifier{Key: []byte(testSecret)}).Verify(v.Token, clock.Now()); err != nil {
				t.Errorf("token altered on the way: %v", err)
			}
			e.obs.mu.Lock()
			issued := map[string]int{"12": e.obs.issued["12"], "5b1a6c1e": e.obs.issued["5b1a6c1e"]}
			e.obs.mu.Unlock()
			if issued["12"] != 1 || issued["5b1a6c1e"] != 1 {
				t.Errorf("issued %v", issued)
			}
			evs := e.aud.all()
			if len(evs) != 1 {
				t.Fatalf("audit events %+v", evs)
			}
			ev := evs[0]
			if ev.Event != "guest_token.issue" || ev.Actor != "user:1" || ev.Outcome != "success" ||
				ev.Subject != "dashboard:12,dashboard:5b1a6c1e" || ev.Details["rls"] != true || ev.Details["rls_rules"] != 1 ||
				ev.RequestID == "" || ev.IP == "" {
				t.Errorf("audit event %+v", ev)
			}
			for k := range ev.Details {
				if strings.Contains(k, "token") {
					t.Errorf("detail key %q would be dropped by the audit logger", k)
				}
			}
			// The issued token works through the gateway.
			e.wantAllowed(v.Token)
		})
	}
}

// TestIssuanceWithDefaultSecret: Superset still signing with its default
// guest secret is audited loudly at issuance.
func TestIssuanceWithDefaultSecret(t *testing.T) {
	clock := newClock()
	e := newEnv(t, newBolt(t), issuingBackend(t, guesttoken.DefaultGuestSecret, false, clock))
	req, _ := http.NewRequest(http.MethodPost, e.gw.URL+guesttoken.IssuePath, strings.NewReader(`{}`))
	if resp := e.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("issuance must pass through, got %d", resp.StatusCode)
	}
	evs := e.aud.all()
	if len(evs) != 1 || evs[0].Outcome != "failure" || evs[0].Reason != string(guesttoken.ReasonDefaultSecret) {
		t.Errorf("audit events %+v", evs)
	}
	// Other answers are not inspected.
	req, _ = http.NewRequest(http.MethodGet, e.gw.URL+guesttoken.IssuePath, nil)
	e.do(req)
	if len(e.aud.all()) != 1 {
		t.Errorf("GET audited")
	}
}

// fakeResolver resolves the fake Superset's dashboard the way the wiring
// does with Superset's API: numeric id, slug and embed uuid.
type fakeResolver struct{ d fakesuperset.Dashboard }

func (f fakeResolver) Aliases(_ context.Context, ref string) ([]string, error) {
	id := strconv.Itoa(f.d.ID)
	if ref != id && ref != f.d.Slug && ref != f.d.EmbedUUID {
		return nil, io.ErrUnexpectedEOF
	}
	return []string{id, f.d.Slug, f.d.EmbedUUID}, nil
}

// TestAgainstFakeSuperset: the whole loop against the fake Superset:
// issue through the gateway, use, revoke by slug, refused without reaching
// Superset, a new token works again.
func TestAgainstFakeSuperset(t *testing.T) {
	clock := newClock()
	var reached []string
	fake := fakesuperset.New(fakesuperset.Options{
		SecretKey: "fake-superset-secret-key-0123456789abcdef", GuestSecret: testSecret, GuestAudience: testAudience,
		Now: clock.Now, Observe: func(r *http.Request) { reached = append(reached, r.Method+" "+r.URL.Path) },
	})
	d := fake.Dashboard()
	e := newEnv(t, newBolt(t), fake.ServeHTTP, func(o *guesttoken.Options, ro *guesttoken.RevokerOptions) {
		ro.Resolver, ro.Now, o.Now = fakeResolver{d}, clock.Now, clock.Now
	})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	call := func(method, path, body string, h map[string]string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, e.gw.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	_, login := call("POST", "/api/v1/security/login", `{"username":"admin","password":"`+fakesuperset.AdminPassword+`","provider":"db"}`, nil)
	bearer := map[string]string{"Authorization": "Bearer " + login["access_token"].(string)}
	_, csrf := call("GET", "/api/v1/security/csrf_token/", "", bearer)
	bearer["X-CSRFToken"] = csrf["result"].(string)
	issue := func() string {
		status, v := call("POST", guesttoken.IssuePath, `{"user":{"username":"guest"},"resources":[{"type":"dashboard","id":"`+d.EmbedUUID+`"}],"rls":[]}`, bearer)
		if status != 200 {
			t.Fatalf("guest_token: %d %v", status, v)
		}
		return v["token"].(string)
	}
	tok := issue()
	dash := "/api/v1/dashboard/" + strconv.Itoa(d.ID)
	if status, _ := call("GET", dash, "", map[string]string{"X-GuestToken": tok}); status != 200 {
		t.Fatalf("guest read: %d", status)
	}
	clock.Advance(time.Second)
	if _, err := e.rev.RevokeDashboardRef(ctxT(t), d.Slug, clock.Now()); err != nil {
		t.Fatal(err)
	}
	n := len(reached)
	if status, v := call("GET", dash, "", map[string]string{"X-GuestToken": tok}); status != 401 || v["msg"] == nil {
		t.Errorf("revoked token: %d %v", status, v)
	}
	if len(reached) != n {
		t.Errorf("revoked token reached Superset: %v", reached[n:])
	}
	clock.Advance(time.Second)
	if status, _ := call("GET", dash, "", map[string]string{"X-GuestToken": issue()}); status != 200 {
		t.Errorf("token issued after the revocation: %d (%s)", status, e.obs.lastReason())
	}
	if evs := e.aud.all(); len(evs) != 2 || evs[0].Subject != "dashboard:"+d.EmbedUUID {
		t.Errorf("audit events %+v", evs)
	}
}
