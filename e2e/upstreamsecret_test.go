//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/deployaudit"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// helmDefault is Superset's Helm chart SECRET_KEY until Nov 2023, and the
// key of the production-readiness analysis's first critical finding.
const helmDefault = "thisISaSECRET_1234"

// TestUpstreamSecret starts ONE second Superset with helmDefault as both
// SECRET_KEY and GUEST_TOKEN_JWT_SECRET and shares it across its subtests.
func TestUpstreamSecret(t *testing.T) {
	e := shared(t)
	ws, wc := ownSuperset(t, harness.Options{SecretKey: helmDefault, GuestTokenSecret: helmDefault})
	t.Run("AuditFindsDefaultSecrets", func(t *testing.T) { auditFindsDefaultSecrets(t, e, wc) })
	t.Run("NamedOnTheWire", func(t *testing.T) { namedOnTheWire(t, e, wc) })
	t.Run("NeutralisedThroughGateway", func(t *testing.T) { neutralisedThroughGateway(t, ws, wc) })
}

// runAudit runs the built binary's audit command and returns its exit code
// and output.
func runAudit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildGateway(t), append([]string{"audit"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if errb.Len() > 0 {
		t.Logf("audit stderr: %s", errb.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

func auditJSON(t *testing.T, out string) deployaudit.Report {
	t.Helper()
	var r deployaudit.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("audit --format json: %v\n%s", err, out)
	}
	return r
}

func finding(r deployaudit.Report, id string) *deployaudit.Finding {
	for i := range r.Findings {
		if r.Findings[i].ID == id {
			return &r.Findings[i]
		}
	}
	return nil
}

// auditFindsDefaultSecrets: audit against the Superset on the Helm
// default finds SECRET_KEY and GUEST_TOKEN_JWT_SECRET (from a guest token
// that Superset issued), names the entry, never the key, and exits 3; the
// normal Superset gives a report without a critical finding (exit 0).
func auditFindsDefaultSecrets(t *testing.T, e *env, wc *harness.Cluster) {
	api := mustSupersetAPI(t, wc.Nodes[0].URL, wc.Target.Admin)
	tok := api.mustGuestToken(t, wc.Target.EmbedUUID)

	code, out := runAudit(t, "--url", wc.Nodes[0].URL, "--guest-token", tok, "--format", "json")
	r := auditJSON(t, out)
	if code != 3 {
		t.Errorf("exit %d, want 3 (critical)", code)
	}
	for _, id := range []string{"secret-key-default", "guest-secret-default", "guest-secret-is-secret-key"} {
		f := finding(r, id)
		if f == nil || f.Severity != deployaudit.Critical {
			t.Errorf("no critical %s:\n%s", id, out)
		}
	}
	if f := finding(r, "secret-key-default"); f != nil && !strings.Contains(f.Detail, "superset-helm-chart") {
		t.Errorf("finding does not name the list entry: %s", f.Detail)
	}
	if strings.Contains(out, helmDefault) {
		t.Error("the report prints the secret")
	}
	if !r.Superset || r.Version == "" {
		t.Errorf("superset=%v version=%q", r.Superset, r.Version)
	}

	code, text := runAudit(t, "--url", wc.Nodes[0].URL, "--guest-token", tok)
	t.Logf("audit of the Superset on the Helm default (exit %d):\n%s", code, strings.ReplaceAll(text, tok, "<token>"))

	code, out = runAudit(t, "--url", e.c.Nodes[0].URL, "--format", "json", "--probe-rate-limit")
	r = auditJSON(t, out)
	if code != 0 || r.Critical() {
		t.Errorf("normal Superset: exit %d, want 0 and no critical:\n%s", code, out)
	}
	if f := finding(r, "secret-key-not-known"); f == nil || f.Severity != deployaudit.Pass {
		t.Errorf("normal Superset: SECRET_KEY not judged:\n%s", out)
	}
	if f := finding(r, "rate-limit"); f == nil {
		t.Errorf("--probe-rate-limit made no finding:\n%s", out)
	} else {
		// The harness's Superset is not SUPERSET_ENV=production: FAB's
		// sign-in limit is off, which the probe must notice.
		t.Logf("rate-limit probe of the normal Superset: %s %s", f.Severity, f.Detail)
		if f.Severity != deployaudit.High {
			t.Errorf("sign-in on the harness's Superset is not rate limited; probe says %s", f.Severity)
		}
	}
	code, text = runAudit(t, "--url", e.c.Nodes[0].URL)
	t.Logf("audit of the normal Superset (exit %d):\n%s", code, text)
}

// namedOnTheWire: the weak Superset as a second node
// behind a gateway configured with the shared Superset's key is named in
// the metric, an audit event, /-/readyz and the log (with its list entry,
// never the key); with refuse_mismatched_upstream_secret it is taken out of
// the pool and, alone, answered 503 with the operator-facing reason.
func namedOnTheWire(t *testing.T, e *env, wc *harness.Cluster) {
	bad := wc.Nodes[0].URL
	ups := []string{e.c.Nodes[0].URL, bad}

	t.Run("report only", func(t *testing.T) {
		g := gatewayFor(t, e.s, ups)
		client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for range 4 { // round robin: both nodes hand out their cookie
			resp, err := client.Get(g.URL + "/login/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		metrics := waitMetric(t, g, `superset_gateway_upstream_secret_mismatch{known="superset-helm-chart",node="`+bad+`",secret="secret_key"} 1`)
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "superset_gateway_upstream_secret_mismatch{") && strings.Contains(l, `node="`+e.c.Nodes[0].URL+`"`) {
				t.Errorf("the good node is named: %s", l)
			}
		}
		ready := readyz(t, g)
		if !strings.Contains(ready, `"node":"upstreams[1]","secret":"secret_key","known_default":true,"refused":false`) {
			t.Errorf("readyz: %s", ready)
		}
		if strings.Contains(ready, bad) {
			t.Error("readyz names the node's address")
		}
		logs := g.LogTail()
		if !strings.Contains(logs, `"event":"upstream.secret_mismatch"`) || !strings.Contains(logs, `"known":"superset-helm-chart"`) ||
			!strings.Contains(logs, "upstream node signs with another secret") {
			t.Errorf("no audit event or log line:\n%s", logs)
		}
		if strings.Contains(logs, helmDefault) {
			t.Error("the log prints the secret")
		}
	})

	t.Run("refused", func(t *testing.T) {
		g := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: e.s, Upstreams: ups, DataDir: t.TempDir(),
			SupersetExtra: []string{"refuse_mismatched_upstream_secret: true"}})
		// Before any user request: the health checks probed /login/ on
		// each node and the mismatched one is already out.
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(readyz(t, g), `"refused":true`) {
			if time.Now().After(deadline) {
				t.Fatalf("not refused by the health probe within 15s: %s", readyz(t, g))
			}
			time.Sleep(200 * time.Millisecond)
		}
		for i := range 6 {
			resp, err := http.Get(g.URL + "/login/")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: %d (a GET is retried on the good node)", i, resp.StatusCode)
			}
		}
		ready := readyz(t, g)
		if !strings.Contains(ready, `"healthy":1,"total":2`) || !strings.Contains(ready, `"refused":true`) {
			t.Errorf("readyz: %s", ready)
		}
	})

	t.Run("only the mismatched node", func(t *testing.T) {
		g := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: e.s, Upstreams: []string{bad}, DataDir: t.TempDir(),
			SupersetExtra: []string{"refuse_mismatched_upstream_secret: true"}})
		for i, want := range []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable} {
			resp, err := http.Get(g.URL + "/login/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want || !strings.Contains(string(b), "different SECRET_KEY") {
				t.Errorf("request %d: %d %s", i, resp.StatusCode, b)
			}
		}
		resp, err := http.Get(g.URL + "/-/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("readyz %d with no trusted node", resp.StatusCode)
		}
	})
}

// neutralisedThroughGateway: a session cookie forged for the admin
// with the default key is accepted by the weak Superset directly and is
// useless through a gateway in front of it (the browser's Superset cookies
// never reach Superset); audit against that gateway reports the gateway's
// headers and that Superset's cookie is not observable.
func neutralisedThroughGateway(t *testing.T, ws *harness.Superset, wc *harness.Cluster) {
	forged, err := flaskcookie.Encode(flaskcookie.Session{"_user_id": "1", "_fresh": true}, helmDefault, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	me := func(base string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: forged})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := me(wc.Nodes[0].URL); st != http.StatusOK || !strings.Contains(body, `"username":"admin"`) {
		t.Fatalf("directly: the forged cookie should be accepted by Superset, got %d %s", st, body)
	}
	g := startGatewayT(t, harness.GatewayOptions{Binary: buildGateway(t), Superset: ws, Upstreams: []string{wc.Nodes[0].URL}, DataDir: t.TempDir(),
		SupersetExtra: []string{"allow_weak_secrets: true", "allow_guest_secret_equal_secret_key: true"}})
	if st, body := me(g.URL); st == http.StatusOK || strings.Contains(body, `"username"`) {
		t.Fatalf("through the gateway the forged cookie must be useless, got %d %s", st, body)
	}

	code, out := runAudit(t, "--url", g.URL, "--format", "json")
	r := auditJSON(t, out)
	// The gateway's own headers on every answer; CSP is Superset's
	// (Talisman, off in this harness), the gateway adds frame-ancestors
	// only on /embedded/.
	for _, id := range []string{"header-frame", "header-nosniff"} {
		if f := finding(r, id); f == nil || f.Severity != deployaudit.Pass {
			t.Errorf("gateway header %s not reported as sent:\n%s", id, out)
		}
	}
	if f := finding(r, "header-csp"); f == nil || f.Severity != deployaudit.Medium {
		t.Errorf("no CSP through the gateway with Talisman off should be a medium finding:\n%s", out)
	}
	if f := finding(r, "cookie-attributes"); f == nil || !strings.Contains(f.Title, `"sg_session"`) {
		t.Errorf("the gateway's cookie is not judged:\n%s", out)
	}
	if f := finding(r, "secret-key-not-observable"); f == nil || !strings.Contains(f.Detail, "superset-gateway") {
		t.Errorf("audit through the gateway should say Superset's cookie is kept server-side:\n%s", out)
	}
	_, text := runAudit(t, "--url", g.URL)
	t.Logf("audit through the gateway (exit %d):\n%s", code, text)
}

func readyz(t *testing.T, g *harness.Gateway) string {
	t.Helper()
	resp, err := http.Get(g.URL + "/-/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetric scrapes until line appears (the check runs on the first
// answers, which the client has already seen).
func waitMetric(t *testing.T, g *harness.Gateway, line string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(g.MetricsURL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if last = string(b); strings.Contains(last, line) {
			return last
		}
	}
	var lines []string
	for _, l := range strings.Split(last, "\n") {
		if strings.Contains(l, "secret") {
			lines = append(lines, l)
		}
	}
	t.Fatalf("metric %s not found; secret lines: %s", line, strings.Join(lines, "\n"))
	return ""
}
