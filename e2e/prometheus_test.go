//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"

	"gopkg.in/yaml.v3"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// TestPrometheusPanelsAndRules runs Debian's Prometheus scraping a real
// gateway in front of the shared Superset, drives traffic through the
// gateway (form and API logins, a failed login, API reads, a dashboard page,
// a refused forged JWT), then checks every vector selector of every
// dashboard panel and alert rule against what Prometheus scraped: a
// misspelt metric or label, or a label value the gateway never produces,
// fails the test. Alerts are normally quiet, so each selector is checked
// rather than each alert's result.
func TestPrometheusPanelsAndRules(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not installed (Debian package prometheus; .ci/run installs it)")
	}
	e := shared(t)
	adminTok, adminYAML := adminToken(t)
	// Rate limits on (the harness turns them off elsewhere): their
	// panels need series; this traffic stays well inside the defaults.
	g := startGatewayOpts(t, e, harness.GatewayOptions{Binary: buildGateway(t), DataDir: t.TempDir(), Extra: []string{adminYAML}, RateLimits: true})
	tg := e.c.TargetFor(0)
	tg.BaseURL = g.URL

	// Traffic.
	browser := jarLogin(t, g.URL, tg.Admin)
	get := func(path string, h http.Header, c *http.Client) int {
		req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		if c == nil {
			c = http.DefaultClient
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(fmt.Sprintf("/superset/dashboard/%d/", tg.DashboardID), nil, browser); st != http.StatusOK {
		t.Fatalf("dashboard page: %d", st)
	}
	if st := get("/api/v1/dashboard/", nil, browser); st != http.StatusOK {
		t.Fatalf("api read: %d", st)
	}
	apiLogin := func(pw string) (int, string) {
		body := fmt.Sprintf(`{"username":%q,"password":%q,"provider":"db","refresh":true}`, tg.Admin.Username, pw)
		resp, err := http.Post(g.URL+"/api/v1/security/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.AccessToken
	}
	st, jwt := apiLogin(tg.Admin.Password)
	if st != http.StatusOK || jwt == "" {
		t.Fatalf("API login: %d", st)
	}
	if st := get("/api/v1/me/", http.Header{"Authorization": {"Bearer " + jwt}}, nil); st != http.StatusOK {
		t.Fatalf("/api/v1/me/ with the JWT: %d", st)
	}
	if st, _ := apiLogin("wrong-password"); st != http.StatusUnauthorized {
		t.Fatalf("API login with a wrong password: %d, want 401", st)
	}
	forged := jwt[:strings.LastIndexByte(jwt, '.')+1] + "AAAA"
	if st := get("/api/v1/me/", http.Header{"Authorization": {"Bearer " + forged}}, nil); st != http.StatusUnauthorized {
		t.Fatalf("forged JWT: %d, want 401", st)
	}
	get("/static/assets/no-such-file.js", nil, nil)
	// Embedding: a guest token issued through the gateway, used, revoked.
	guest := mustSupersetAPI(t, g.URL, tg.Admin).mustGuestToken(t, tg.EmbedUUID)
	guestGet(t, g.URL, guest, fmt.Sprintf("/api/v1/dashboard/%d", tg.DashboardID))
	mustRevoke(t, g.URL, adminTok, "")

	// Prometheus, scraping the gateway every second, with the shipped rules.
	dir := t.TempDir()
	murl, _ := url.Parse(g.MetricsURL)
	rules, _ := filepath.Abs("../deploy/prometheus/alerts.yml")
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [%q]\nscrape_configs:\n  - job_name: gateway\n    static_configs:\n      - targets: [%q]\n",
		rules, murl.Host)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus log:\n%s", b)
		}
	})
	api := "http://" + addr
	query := func(q string) (int, error) {
		resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, err
		}
		if out.Status != "success" {
			return 0, fmt.Errorf("%s: %s", q, out.Error)
		}
		return len(out.Data.Result), nil
	}
	// Wait until the traffic above is in Prometheus and the rules loaded.
	deadline := time.Now().Add(90 * time.Second)
	for {
		n, err := query(`superset_gateway_superset_requests_total{endpoint="dashboard_page"}`)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped the gateway's traffic: %v", err)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second) // a few scrapes, for rate() over two samples

	exprs := map[string]string{} // expression → where it comes from
	for _, f := range []string{"../deploy/grafana/security.json", "../deploy/grafana/superset-performance.json"} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				exprs[tg.Expr] = filepath.Base(f) + ": " + p.Title
			}
		}
	}
	raw, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	for _, gr := range rf.Groups {
		for _, r := range gr.Rules {
			exprs[r.Expr] = "alerts.yml: " + r.Alert
		}
	}
	if len(exprs) < 30 {
		t.Fatalf("only %d expressions found", len(exprs))
	}

	checked := 0
	for e, where := range exprs {
		grafanaFree := strings.ReplaceAll(e, "$__rate_interval", "1m")
		// The whole expression must parse and evaluate in Prometheus.
		if _, err := query(grafanaFree); err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		sels := selectors(grafanaFree)
		if len(sels) == 0 {
			t.Errorf("%s: no selector found in %q", where, e)
		}
		for _, sel := range sels {
			if notExercised[metricOf(sel)] {
				continue
			}
			checked++
			q := sel
			if unreachable[sel] {
				// Values this traffic cannot produce (an outage): the
				// metric and label must still exist.
				q = labelsOnly(sel)
			}
			n, err := query(q)
			if err != nil {
				t.Errorf("%s: %s: %v", where, q, err)
			} else if n == 0 {
				t.Errorf("%s: selector %s returns nothing after the traffic (misspelt metric or label?)", where, q)
			}
		}
	}
	t.Logf("%d expressions, %d selectors checked against Prometheus", len(exprs), checked)
}

// jarLogin signs in through the gateway's POST /login/ as a browser does
// and returns a client holding the gateway's session cookie.
func jarLogin(t *testing.T, base string, cr conformance.Credentials) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET /login/: %d, no csrf_token input", resp.StatusCode)
	}
	resp, err = c.PostForm(base+"/login/", url.Values{
		"username": {cr.Username}, "password": {cr.Password}, "csrf_token": {string(m[1])},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /login/ as %s: %d %q", cr.Username, resp.StatusCode, resp.Header.Get("Location"))
	}
	return c
}

// unreachable are selectors whose label values only an outage produces;
// for them only the metric and the label names are checked.
var unreachable = map[string]bool{
	`superset_gateway_refusals_total{reason="store_unavailable"}`:                 true,
	`superset_gateway_refusals_total{reason="no_healthy_upstream"}`:               true,
	`superset_gateway_store_operation_errors_total{op=~"max_int64|sadd|publish"}`: true,
	`superset_gateway_reconciler_runs_total{outcome="error"}`:                     true,
	`superset_gateway_superset_requests_total{code="5xx"}`:                        true,
}

// notExercised are families this traffic leaves without a single series
// (creating access tokens needs the browser page; an epoch stamp would end
// the admin's credentials the gateway's reconciler uses; this gateway
// serves plain HTTP, so it has no certificate expiry; its one Superset node
// signs with the configured key, so no secret mismatch is reported:
// TestUpstreamSecret shows that gauge set). They are still
// checked against the registry: TestDashboardsDecodeStrictly (deploytest)
// fails on a name docs/metrics.md does not list.
var notExercised = map[string]bool{
	"superset_gateway_access_token_requests_total":              true,
	"superset_gateway_access_tokens_managed_total":              true,
	"superset_gateway_epoch_stamps_total":                       true,
	"superset_gateway_superset_slow_requests_total":             true,
	"superset_gateway_tls_certificate_expiry_timestamp_seconds": true,
	"superset_gateway_upstream_secret_mismatch":                 true,
}

func metricOf(sel string) string {
	if i := strings.IndexByte(sel, '{'); i >= 0 {
		return sel[:i]
	}
	return sel
}

var selectorRE = regexp.MustCompile(`superset_gateway_[a-z0-9_]+(\{[^}]*\})?`)

// selectors are the vector selectors of a PromQL expression (without range
// or offset), found by the gateway's metric prefix.
func selectors(e string) []string {
	return selectorRE.FindAllString(e, -1)
}

var matcherRE = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"[^"]*"`)

// labelsOnly replaces every matcher's value with "any non-empty value".
func labelsOnly(sel string) string {
	return matcherRE.ReplaceAllString(sel, `$1=~".+"`)
}
