//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// Defects of issues 12 (finding 7) and 13, end to end: one gateway on its
// own Redis in front of the shared Superset, its audit log in a file.
// Names carry a "def" prefix: the package is shared with other suites.

type defRig struct {
	t     *testing.T
	e     *env
	g     *harness.Gateway
	audit string // the audit file
	token string // admin API token
	node  *epAPI // Superset admin on node 0, bypassing the gateway
	gamma int
}

func newDefRig(t *testing.T) *defRig {
	t.Helper()
	e := shared(t)
	rd := redistest.Start(t, redistest.Options{})
	tok, sum, err := admin.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tf := filepath.Join(dir, "admin-tokens")
	if err := os.WriteFile(tf, []byte("e2e-defects "+sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &defRig{t: t, e: e, token: tok, audit: filepath.Join(dir, "audit.jsonl")}
	r.g = startGatewayT(t, harness.GatewayOptions{
		Binary: buildGateway(t), Superset: e.s, Upstreams: nodeURLs(e), DataDir: filepath.Join(dir, "gw"),
		RedisURL: rd.URL(), AuditOutput: r.audit,
		Extra: []string{"admin: {tokens_file: " + strconv.Quote(tf) + "}"},
	})
	r.node = epLogin(t, e.c.Nodes[0].URL, e.c.Target.Admin)
	r.gamma = gammaRole(t, r.node)
	// The fresh store stamped the global epoch at start; JWTs are issued
	// in whole seconds, so sign-ins wait for the next one.
	time.Sleep(1100 * time.Millisecond)
	return r
}

// newUser creates a Gamma user on Superset (directly, not through the
// gateway).
func (r *defRig) newUser(prefix string) epUser {
	t := r.t
	t.Helper()
	name := prefix + "-" + epRand(4)
	pw := "Pw-" + epRand(8)
	var out struct {
		ID int `json:"id"`
	}
	b := r.node.must(t, http.MethodPost, "/api/v1/security/users/", map[string]any{
		"username": name, "first_name": "Defects", "last_name": "Test", "email": name + "@example.com",
		"password": pw, "active": true, "roles": []int{r.gamma},
	})
	if err := json.Unmarshal(b, &out); err != nil || out.ID == 0 {
		t.Fatalf("create user %s: %.200s", name, b)
	}
	return epUser{ID: out.ID, Credentials: conformance.Credentials{Username: name, Password: pw}}
}

func (r *defRig) adminCall(method, path string, body any) (int, []byte) {
	r.t.Helper()
	return (&epAPI{base: r.g.URL, bearer: r.token}).call(r.t, method, admin.APIPrefix+path, body)
}

// auditLines counts the lines of the audit file.
func (r *defRig) auditLines() int {
	r.t.Helper()
	b, err := os.ReadFile(r.audit)
	if err != nil {
		r.t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// recent is GET /-/admin/api/v1/audit with query q.
func (r *defRig) recent(q string) []auditEvent {
	r.t.Helper()
	code, b := r.adminCall(http.MethodGet, "audit"+q, nil)
	var out struct {
		Events []auditEvent `json:"events"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		r.t.Fatalf("GET audit%s: %d %.200s", q, code, b)
	}
	return out.Events
}

// refusalReasons counts the jwt.refused events in the audit file by reason.
func (r *defRig) refusalReasons() map[string]int {
	b, _ := os.ReadFile(r.audit)
	out := map[string]int{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var ev auditEvent
		if json.Unmarshal(line, &ev) == nil && ev.Event == "jwt.refused" {
			out[ev.Reason]++
		}
	}
	return out
}

// metric reads one sample from the gateway's metrics listener (-1 when
// absent).
func (r *defRig) metric(name, labels string) float64 {
	r.t.Helper()
	resp, err := http.Get(r.g.MetricsURL)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name+labels+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// TestDefectsAuditFlood (issue 12, finding 7): an anonymous attacker sends
// about 1,000 requests with malformed JWTs within a second. A revocation
// made just before stays in the admin's recent events, the audit file
// grows by a bounded number of lines, and what was dropped is counted.
func TestDefectsAuditFlood(t *testing.T) {
	r := newDefRig(t)
	u := r.newUser("flood")
	code, b := r.adminCall(http.MethodPost, "users/"+u.sid()+"/revoke", map[string]string{"reason": "before the flood"})
	if code != http.StatusOK {
		t.Fatalf("revoke %s: %d %.200s", u.sid(), code, b)
	}
	before := r.auditLines()

	const n, workers = 1000, 32
	var refused, other atomic.Int64
	var next atomic.Int64
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, r.g.URL+"/api/v1/me/", nil)
				req.Header.Set("Authorization", fmt.Sprintf("Bearer eyJhbGciOiJIUzI1NiJ9.junk%d.sig", i))
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					refused.Add(1)
				} else {
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d junk-JWT requests in %s: %d refused, %d other", n, took.Round(time.Millisecond), refused.Load(), other.Load())
	if refused.Load() != n {
		t.Fatalf("%d of %d junk JWTs refused with 401", refused.Load(), n)
	}

	// The revocation is still in view, whatever the limit.
	for _, q := range []string{"", "?limit=20", "?since=10m&limit=1000"} {
		var seen bool
		for _, ev := range r.recent(q) {
			if ev.Event == "admin.user.revoke" && ev.Subject == "user:"+u.sid() {
				seen = true
			}
		}
		if !seen {
			t.Errorf("GET audit%s: the revocation made before the flood is gone", q)
		}
	}
	// The file grew by a bounded number of lines: a burst and about one a
	// second per (event, reason), not one per request.
	grew := r.auditLines() - before
	// Each (event, reason) bursts to 5, then 1 a second; a few other
	// events (the admin's reads) come on top.
	bound := 30 + 4*int(took.Seconds()+1)
	t.Logf("audit file grew by %d lines for %d refusals (bound %d); the refusals recorded: %v", grew, n, bound, r.refusalReasons())
	if grew > bound {
		t.Errorf("audit file grew by %d lines for %d refused requests, want at most %d", grew, n, bound)
	}
	dropped := r.metric("superset_gateway_audit_refusals_dropped_total", `{event="jwt.refused"}`)
	t.Logf("dropped counter: %v", dropped)
	if dropped <= 0 || int(dropped)+grew < n {
		t.Errorf("superset_gateway_audit_refusals_dropped_total{event=\"jwt.refused\"} = %v after %d refusals and %d lines", dropped, n, grew)
	}
}

// revokeButtonFor matches the admin page's Revoke… button of token id (a
// link to the confirmation step).
var revokeButtonFor = func(id string) *regexp.Regexp {
	return regexp.MustCompile(`/-/admin/confirm\?action=token&amp;id=` + regexp.QuoteMeta(id) + `&amp;`)
}

// TestDefectsRevokeUserByName (issue 13): "alice" typed where the user id
// goes was recorded as user:alice, reported done and revoked nobody. Now a
// username is resolved through the real Superset's users API and the user
// is really revoked; an unknown user gets 404 on the API and the page. And
// the admin page shows a revoked user's access token as revoked, as the
// gateway enforces it, with no Revoke button.
func TestDefectsRevokeUserByName(t *testing.T) {
	r := newDefRig(t)
	u := r.newUser("byname")

	// u's credentials through the gateway: an API JWT and an access token.
	access, _ := epTokens(t, r.g.URL, u.Credentials)
	uc := newGWClient(t, r.g.URL)
	uc.login(u.Credentials)
	tok := formCreate(t, uc, "defects", []string{"metadata:read"}, 24*time.Hour, "")
	// /api/v1/dashboard/ is in metadata:read and open to Gamma.
	me := func(bearer string) int {
		code, _ := (&epAPI{base: r.g.URL, bearer: bearer}).call(t, http.MethodGet, "/api/v1/dashboard/", nil)
		return code
	}
	if me(access) != http.StatusOK || me(tok) != http.StatusOK {
		t.Fatalf("before the revocation: JWT %d, access token %d", me(access), me(tok))
	}

	// An admin on the page sees the token active, with a Revoke button.
	ac := newGWClient(t, r.g.URL)
	ac.login(r.e.c.Target.Admin)
	id := tokenID(t, tok)
	if _, body := ac.get("/-/admin/"); !revokeButtonFor(id).MatchString(body) {
		t.Fatal("the admin page offers no Revoke button for an active token")
	}

	// Unknown users: 404 and a clear message, nobody revoked.
	for _, ref := range []string{"nosuchuser-" + epRand(3), "987654321"} {
		code, b := r.adminCall(http.MethodPost, "users/"+url.PathEscape(ref)+"/revoke", map[string]string{"reason": "x"})
		if code != http.StatusNotFound || !strings.Contains(string(b), "Superset has no user with the") {
			t.Errorf("revoke unknown %q: %d %.200s", ref, code, b)
		}
	}
	resp, body := adminPagePost(t, ac, "/-/admin/users/revoke", url.Values{"user_id": {"nosuchuser"}, "reason": {"x"}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Superset has no user with the username &#34;nosuchuser&#34;") {
		t.Errorf("page, unknown user: %d", resp.StatusCode)
	}
	if me(access) != http.StatusOK {
		t.Fatal("a refused revocation revoked the user")
	}

	// By username, on the API: the real user is revoked.
	code, b := r.adminCall(http.MethodPost, "users/"+url.PathEscape(u.Username)+"/revoke", map[string]string{"reason": "offboarding"})
	var out struct {
		UserID   string `json:"user_id"`
		Username string `json:"username"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil || out.UserID != u.sid() || out.Username != u.Username {
		t.Fatalf("revoke %s by username: %d %.200s (want user_id %s)", u.Username, code, b, u.sid())
	}
	deadline := time.Now().Add(5 * time.Second)
	for me(access) != http.StatusUnauthorized || me(tok) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("after revoking %s by username: JWT %d, access token %d; want both refused", u.Username, me(access), me(tok))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The page agrees with the gateway: revoked by the user's epoch, no
	// Revoke button.
	_, body = ac.get("/-/admin/")
	if revokeButtonFor(id).MatchString(body) || !strings.Contains(body, "revocation of user:"+u.sid()) {
		t.Errorf("the admin page still offers to revoke %s's token the gateway refuses", u.Username)
	}

	// By username on the page as well: 303 back to the page, whose
	// message (a flash cookie) names the id.
	u2 := r.newUser("bypage")
	resp, _ = adminPagePost(t, ac, "/-/admin/users/revoke", url.Values{"user_id": {u2.Username}, "reason": {"page"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/-/admin/" {
		t.Errorf("page, revoke %s: %d %q", u2.Username, resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := ac.get("/-/admin/"); !strings.Contains(body, "User "+u2.sid()+" revoked") {
		t.Errorf("page, revoke %s: no message naming user %s", u2.Username, u2.sid())
	}
}

// adminPagePost posts a form on the admin page as the admin's browser
// does (same origin).
func adminPagePost(t *testing.T, c *gwClient, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.do(req)
}
