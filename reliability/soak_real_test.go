//go:build e2e

package reliability_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

var (
	soakRealFor     = flag.Duration("soak-real", 2*time.Minute, "how long TestSoakReal runs (make soak-real: SOAK_REAL)")
	soakRealRate    = flag.Int("soak-real-rate", 8, "requests per second of TestSoakReal's steady traffic")
	soakRealReport  = flag.String("soak-real-report", "", "write TestSoakReal's figures (markdown) to this file")
	soakRealBrowser = flag.Duration("soak-real-browser", 20*time.Second, "interval of TestSoakReal's browser sign-ins (Chromium); 0: none")
)

// TestSoakReal is TestSoak's traffic against the real Superset 6.1.0 (one
// gunicorn node of the e2e harness, $SUPERSET_VENV) behind two gateway
// replicas on one Redis, plus sign-ins of a real browser (Chromium through
// the React login page) every -soak-real-browser, whose session is used
// on the other replica and then logged out. The same checks: the history,
// flat curves, no failed request, every kind of revocation propagated. On
// demand: make soak-real.
func TestSoakReal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sup, err := harness.Bootstrap(ctx, harness.Options{Venv: os.Getenv("SUPERSET_VENV"), Log: os.Stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Close() })
	cl, err := sup.Start(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop)
	tg := cl.Target

	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	dir := t.TempDir()
	bin, keys, tokens, token := soakSetup(t, dir)
	start := func(name string) *replica {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return startReplica(t, bin, d, replicaOpts{upstreams: []string{tg.BaseURL}, redisURL: rs.URL(), keys: keys, tokens: tokens,
			secretKeyFile: sup.SecretKeyFile(), serviceUser: sup.AdminID(),
			superset: fmt.Sprintf(", guest_token_secret_file: %q, guest_token_audience: %q", sup.GuestTokenSecretFile(), sup.GuestTokenAudience())})
	}
	a, b := start("0"), start("1")
	nextSecond()

	user := func(cr conformance.Credentials) soakUser {
		u := soakUser{name: cr.Username, password: cr.Password}
		u.id = userID(t, a.base, u)
		return u
	}
	s := newSoakTraffic(a, b, token, user(tg.Admin), user(tg.Alpha), user(tg.Gamma), strconv.Itoa(tg.DashboardID))
	if *soakRealBrowser > 0 {
		s.more = append(s.more, func(ctx context.Context) { s.browserSignIns(ctx, t, *soakRealBrowser) })
	}
	runSoak(t, s, rs, *soakRealFor, *soakRealRate, *soakRealReport, fmt.Sprintf(
		"by `make soak-real`: two replicas on one Redis in front of one node of the real Superset %s (e2e harness)%s",
		harness.Version, browserNote(*soakRealBrowser)))
}

func browserNote(every time.Duration) string {
	if every <= 0 {
		return ", no browser"
	}
	return fmt.Sprintf(", a Chromium sign-in through the login page every %s", every)
}

// userID signs u in on base's API and asks who-am-I for the id.
func userID(t *testing.T, base string, u soakUser) string {
	t.Helper()
	s := &soakTraffic{client: &http.Client{Timeout: time.Minute}}
	c, err := s.apiLogin(base, u)
	if err != nil {
		t.Fatalf("%s: %v", u.name, err)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/me/", nil)
	c.set(req)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		Result struct {
			ID int `json:"id"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil || me.Result.ID == 0 {
		t.Fatalf("%s: /api/v1/me/ %d: %v", u.name, resp.StatusCode, err)
	}
	return strconv.Itoa(me.Result.ID)
}

// browserSignIns signs the steady user in on a with Chromium through
// Superset's React login page every interval, uses the browser's gateway
// session on b (recorded in the history as a cookie session), and logs
// the browser out.
func (s *soakTraffic) browserSignIns(ctx context.Context, t *testing.T, every time.Duration) {
	br := browser.ForTest(t, browser.Options{})
	for ctx.Err() == nil {
		if err := s.browserSignIn(br); err != nil {
			s.fail(err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (s *soakTraffic) browserSignIn(br *browser.Browser) error {
	if err := br.Navigate(s.a.base + "/login/"); err != nil {
		return fmt.Errorf("browser: login page: %w", err)
	}
	if err := br.Fill(`input[data-test="username-input"]`, s.steady.name); err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	if err := br.Fill(`input[data-test="password-input"]`, s.steady.password); err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	if err := br.Click(`[data-test="login-button"]`); err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	if _, err := br.WaitURLPrefix(s.a.base + "/superset/welcome/"); err != nil {
		return fmt.Errorf("browser: after sign-in: %w", err)
	}
	done := time.Now()
	cookies, err := br.Cookies(s.a.base)
	if err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	val := ""
	for _, c := range cookies {
		if c.Name == "sg_session" {
			val = c.Value
		}
	}
	if val == "" {
		return fmt.Errorf("browser: no gateway cookie after sign-in")
	}
	c := &cred{name: "browser session", user: s.steady.id, issued: done,
		set: func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sg_session", Value: val}) }}
	if code := s.use(s.b.base, "/api/v1/me/", c); code != http.StatusOK {
		return fmt.Errorf("browser session on the other replica: %d", code)
	}
	if err := br.Navigate(s.a.base + "/logout/"); err != nil {
		return fmt.Errorf("browser: logout: %w", err)
	}
	return nil
}
