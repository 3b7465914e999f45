package deployaudit_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/deployaudit"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// loginPage is the part of Superset 6.1's login page the audit reads: the
// HTML-escaped bootstrap data with the version string.
const loginPage = `<!DOCTYPE html><html><head><title>Superset</title></head><body>
<div id="app" data-bootstrap="{&#34;common&#34;: {&#34;menu_data&#34;: {&#34;navbar_right&#34;: {&#34;version_string&#34;: &#34;6.1.0&#34;}}}}"></div></body></html>`

// fakeSuperset answers like Superset with its session cookie signed by key;
// hardened adds the headers and cookie attributes a good deployment has.
func fakeSuperset(t *testing.T, key string, hardened bool, logins *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login/":
			if r.Method == http.MethodPost {
				if logins != nil && logins.Add(1) > 5 && hardened {
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				http.Redirect(w, r, "/login/", http.StatusFound)
				return
			}
			c, err := flaskcookie.Encode(flaskcookie.Session{"csrf_token": "abc"}, key, time.Now())
			if err != nil {
				t.Error(err)
			}
			ck := &http.Cookie{Name: "session", Value: c, Path: "/", HttpOnly: true}
			if hardened {
				ck.Secure, ck.SameSite = true, http.SameSiteLaxMode
				w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'self'")
				w.Header().Set("X-Content-Type-Options", "nosniff")
				w.Header().Set("Strict-Transport-Security", "max-age=31536000")
			}
			http.SetCookie(w, ck)
			io.WriteString(w, loginPage)
		case "/swagger/v1", "/api/v1/_openapi":
			if hardened {
				http.Redirect(w, r, "/login/?next="+r.URL.Path, http.StatusFound)
				return
			}
			io.WriteString(w, `{"openapi": "3.0.2"}`)
		default:
			http.NotFound(w, r)
		}
	})
}

func has(rep *deployaudit.Report, id string, sev deployaudit.Severity) bool {
	for _, f := range rep.Findings {
		if f.ID == id && f.Severity == sev {
			return true
		}
	}
	return false
}

func dump(rep *deployaudit.Report) string {
	var b bytes.Buffer
	_ = rep.WriteText(&b)
	return b.String()
}

// TestDefaultKeyIsCritical: Superset on the Helm chart's key over plain
// HTTP with open API docs: critical, named by its list entry, never the key.
func TestDefaultKeyIsCritical(t *testing.T) {
	var logins atomic.Int64
	srv := httptest.NewServer(fakeSuperset(t, "thisISaSECRET_1234", false, &logins))
	defer srv.Close()
	rep, err := deployaudit.Run(context.Background(), deployaudit.Options{URL: srv.URL, ProbeRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		id  string
		sev deployaudit.Severity
	}{
		{"secret-key-default", deployaudit.Critical}, {"tls-off", deployaudit.High},
		{"openapi-open", deployaudit.Medium}, {"swagger-ui-open", deployaudit.Medium},
		{"header-csp", deployaudit.Medium}, {"version-disclosed", deployaudit.Low},
		{"cookie-attributes", deployaudit.Medium}, {"rate-limit", deployaudit.High},
	} {
		if !has(rep, want.id, want.sev) {
			t.Errorf("no %s finding %q:\n%s", want.sev, want.id, dump(rep))
		}
	}
	if !rep.Critical() || !rep.Superset || rep.Version != "6.1.0" {
		t.Errorf("critical=%v superset=%v version=%q", rep.Critical(), rep.Superset, rep.Version)
	}
	if n := logins.Load(); n != deployaudit.ProbeAttempts {
		t.Errorf("probe made %d sign-ins, want exactly %d", n, deployaudit.ProbeAttempts)
	}
	text := dump(rep)
	if !strings.Contains(text, "superset-helm-chart") || strings.Contains(text, "thisISaSECRET_1234") {
		t.Errorf("report must name the entry and never the key:\n%s", text)
	}
	for _, f := range rep.Findings {
		if f.Checklist == "" || (f.Severity != deployaudit.Pass && f.Severity != deployaudit.Info && f.Fix == "") {
			t.Errorf("finding %s lacks a checklist item or a fix", f.ID)
		}
	}
}

// TestCleanOverTLS: a hardened deployment on a random key over TLS has no
// critical, high or medium finding, and the probe stops at the first 429.
func TestCleanOverTLS(t *testing.T) {
	var logins atomic.Int64
	srv := httptest.NewTLSServer(fakeSuperset(t, "a-random-key-nobody-published-9f8e7d6c5b4a", true, &logins))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	rep, err := deployaudit.Run(context.Background(), deployaudit.Options{URL: srv.URL, RootCAs: pool, ProbeRateLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		switch f.Severity {
		case deployaudit.Critical, deployaudit.High, deployaudit.Medium:
			t.Errorf("unexpected %s finding %s: %s", f.Severity, f.ID, f.Title)
		}
	}
	for _, id := range []string{"secret-key-not-known", "tls-version", "tls-certificate-expiry", "header-hsts", "openapi-open", "rate-limit"} {
		if !has(rep, id, deployaudit.Pass) {
			t.Errorf("no pass %q:\n%s", id, dump(rep))
		}
	}
	if logins.Load() != 6 {
		t.Errorf("probe made %d sign-ins, want 6 (stop at the first 429)", logins.Load())
	}
}

func TestGuestTokenAndWordlist(t *testing.T) {
	key := "our-own-secret-that-leaked-into-a-wordlist-123"
	srv := httptest.NewServer(fakeSuperset(t, key, false, nil))
	defer srv.Close()
	// A guest token signed with the same key (HS256, as PyJWT writes it).
	tok := forgeHS256(t, key)
	words := strings.Repeat("nope\n", 1000) + key + "\n"
	rep, err := deployaudit.Run(context.Background(), deployaudit.Options{URL: srv.URL, GuestToken: tok,
		Wordlist: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(words)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !has(rep, "secret-key-default", deployaudit.Critical) || !has(rep, "guest-secret-default", deployaudit.Critical) ||
		!has(rep, "guest-secret-is-secret-key", deployaudit.Critical) {
		t.Fatalf("missing findings:\n%s", dump(rep))
	}
	if text := dump(rep); !strings.Contains(text, "wordlist:1001") || strings.Contains(text, key) {
		t.Errorf("want the wordlist line named, never the key:\n%s", text)
	}
}

// TestBadInput: every bad target is an error or a finding well within the
// bounds, never a hang.
func TestBadInput(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	defer slow.Close()
	dribble := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		for i := 0; i < 300; i++ {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer dribble.Close()
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login/" {
			http.Redirect(w, r, "/a", http.StatusFound)
			return
		}
		http.Redirect(w, r, "/login/", http.StatusFound)
	}))
	defer loop.Close()
	hops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path+"x", http.StatusFound)
	}))
	defer hops.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("superset "), 1<<16)
		for i := 0; i < 64; i++ { // ~37 MiB if read to the end
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	nginx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.22.1")
		io.WriteString(w, "<html><body><h1>Welcome to nginx!</h1></body></html>")
	}))
	defer nginx.Close()
	tlsSrv := httptest.NewTLSServer(fakeSuperset(t, "k", true, nil))
	defer tlsSrv.Close()
	plainOnTLSPort := httptest.NewServer(fakeSuperset(t, "k", true, nil))
	defer plainOnTLSPort.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	timeout := 2 * time.Second
	for _, tt := range []struct {
		name    string
		url     string
		err     error
		finding string
	}{
		{"unreachable", closed, deployaudit.ErrUnreachable, ""},
		{"slow headers", slow.URL, deployaudit.ErrUnreachable, ""},
		{"slow body", dribble.URL, deployaudit.ErrUnreachable, ""},
		{"redirect loop", loop.URL, deployaudit.ErrRedirectLoop, ""},
		{"endless redirects", hops.URL, deployaudit.ErrTooManyHops, ""},
		{"bad url", "ftp://x", deployaudit.ErrBadURL, ""},
		{"untrusted certificate", tlsSrv.URL, nil, "tls-certificate-invalid"},
		{"plain http on https", strings.Replace(plainOnTLSPort.URL, "http:", "https:", 1), nil, "tls-not-spoken"},
		{"not superset", nginx.URL, nil, "not-superset"},
		{"huge answer", huge.URL, nil, "answer-truncated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			rep, err := deployaudit.Run(context.Background(), deployaudit.Options{URL: tt.url, Timeout: timeout})
			if took := time.Since(start); took > 4*timeout {
				t.Errorf("took %s, bound is a few times %s", took, timeout)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range rep.Findings {
				found = found || f.ID == tt.finding
			}
			if !found {
				t.Errorf("no finding %q:\n%s", tt.finding, dump(rep))
			}
		})
	}
}

func TestSARIF(t *testing.T) {
	srv := httptest.NewServer(fakeSuperset(t, "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", false, nil))
	defer srv.Close()
	rep, err := deployaudit.Run(context.Background(), deployaudit.Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteSARIF(&b, "test"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []any  `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2.1.0" || len(doc.Runs) != 1 {
		t.Fatalf("sarif: %s", b.String())
	}
	rules := map[string]bool{}
	for _, r := range doc.Runs[0].Tool.Driver.Rules {
		rules[r.ID] = true
	}
	var critical bool
	for _, r := range doc.Runs[0].Results {
		if !rules[r.RuleID] || len(r.Locations) != 1 {
			t.Errorf("result %s has no rule or location", r.RuleID)
		}
		critical = critical || (r.RuleID == "secret-key-default" && r.Level == "error")
	}
	if !critical {
		t.Errorf("no error-level secret-key-default result: %s", b.String())
	}
}

func forgeHS256(t *testing.T, key string) string {
	t.Helper()
	// Built by hand so the test does not share the verifier's JWT code.
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return b64(b)
	}
	head := enc(map[string]string{"alg": "HS256", "typ": "JWT"})
	body := enc(map[string]any{"type": "guest", "iat": 1.5, "exp": 9e9, "user": map[string]any{}, "resources": []any{}, "rls_rules": []any{}})
	return head + "." + body + "." + b64(hs256([]byte(key), []byte(head+"."+body)))
}
