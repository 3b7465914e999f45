//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	goredis "github.com/redis/go-redis/v9"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// tokenPattern is the documented scanner pattern (docs/access-tokens.md).
var tokenPattern = regexp.MustCompile(`^sgw_([a-z2-7]{16})_([a-z2-7]{32})_([0-9a-f]{8})$`)

// shortTTL is an expiry choice added for the expiry check: long enough to
// make one request with the token, short enough to wait out.
const shortTTL = 4 * time.Second

// TestAccessTokens is issue 8's end-to-end suite against the real Superset
// 6.1.0 with headless Chromium: two gateway replicas on one Redis, Alice
// (Alpha + sql_lab) and the harness's queryable SQLite database. Subtests
// share the rig and run in order; Alice is disabled in the last one and
// re-enabled when the test ends.
func TestAccessTokens(t *testing.T) {
	r := newEpRig(t, fmt.Sprintf("access_tokens: {ttl_choices: [%s, 24h]}", shortTTL))
	e := r.e
	data := e.s.Data()
	if data.DatabaseID == 0 || data.DatasetID == 0 || data.ChartID == 0 || data.DashboardID == 0 {
		t.Fatalf("harness data fixture missing: %+v", data)
	}
	tg := e.c.Target
	alice := epUser{ID: userID(t, r.node, tg.Alpha.Username), Credentials: tg.Alpha}
	t.Cleanup(func() { r.setActive(alice, true) })
	adminID := strconv.Itoa(e.s.AdminID())
	r.settle(r.a, alice.sid())
	r.settle(r.a, adminID)

	// Alice's browser: sign in through replica A, create two tokens on
	// the page.
	ab := browser.ForTest(t, browser.Options{})
	browserLogin(t, ab, r.a.URL, alice.Credentials)
	meta := pageCreate(t, ab, r.a.URL, "metadata import", []string{"metadata:read"})
	sql := keyboardCreate(t, ab, r.a.URL, "notebook", "sqllab:execute")
	found := false
	for _, tk := range adminTokens(t, r) {
		if tk.ID != tokenID(t, sql) {
			continue
		}
		found = true
		if tk.Name != "notebook" || !slices.Equal(tk.Scopes, []string{"sqllab:execute"}) ||
			tk.Expires.Sub(tk.Created).Round(time.Second) != 24*time.Hour {
			t.Fatalf("the keyboard-made token is %+v; want notebook, sqllab:execute, 1 day", tk)
		}
	}
	if !found {
		t.Fatal("the keyboard-made token is not in the admin API's list")
	}

	t.Run("ScopesAgainstRealSuperset", func(t *testing.T) {
		// Both replicas honour tokens made on one.
		for _, g := range r.replicas() {
			c := tokenClient{t: t, base: g.URL, token: meta}
			ids := map[string]int{"dashboard": data.DashboardID, "chart": data.ChartID, "dataset": data.DatasetID, "database": data.DatabaseID}
			for _, res := range []string{"dashboard", "chart", "dataset", "database"} {
				got := c.pageThrough(res)
				if !slices.Contains(got, ids[res]) {
					t.Errorf("%s: paging /api/v1/%s/ with the metadata token listed %v, not fixture %d", g.URL, res, got, ids[res])
				}
			}
			var ds struct {
				Result struct {
					TableName string `json:"table_name"`
					Database  struct {
						ID int `json:"id"`
					} `json:"database"`
					Columns []struct {
						Name string `json:"column_name"`
					} `json:"columns"`
				} `json:"result"`
			}
			c.getJSON("/api/v1/dataset/"+strconv.Itoa(data.DatasetID), &ds)
			if ds.Result.TableName != data.Table || ds.Result.Database.ID != data.DatabaseID || len(ds.Result.Columns) != 3 {
				t.Errorf("dataset through the metadata token: %+v", ds.Result)
			}
			var db struct {
				Result struct {
					Name string `json:"database_name"`
				} `json:"result"`
			}
			c.getJSON("/api/v1/database/"+strconv.Itoa(data.DatabaseID), &db)
			if db.Result.Name != data.DatabaseName {
				t.Errorf("database through the metadata token: %+v", db.Result)
			}
			var ch struct {
				Result struct {
					Name string `json:"slice_name"`
				} `json:"result"`
			}
			c.getJSON("/api/v1/chart/"+strconv.Itoa(data.ChartID), &ch)
			if ch.Result.Name != "Orders" {
				t.Errorf("chart through the metadata token: %+v", ch.Result)
			}
			var dc struct {
				Result []struct {
					ID int `json:"id"`
				} `json:"result"`
			}
			c.getJSON("/api/v1/dashboard/"+strconv.Itoa(data.DashboardID)+"/charts", &dc)
			if len(dc.Result) != 1 || dc.Result[0].ID != data.ChartID {
				t.Errorf("dashboard charts through the metadata token: %+v", dc.Result)
			}
			// Outside its scope: SQL, chart data, user admin, and pages.
			c.wantRefused(http.MethodPost, "/api/v1/sqllab/execute/", sqlBody(data, "SELECT 1"), 403, "Access token lacks the scope sqllab:execute")
			c.wantRefused(http.MethodGet, "/api/v1/chart/"+strconv.Itoa(data.ChartID)+"/data/", nil, 403, "Access token lacks the scope chart-data:read")
			c.wantRefused(http.MethodGet, "/api/v1/security/users/", nil, 403, "")
			c.wantRefused(http.MethodDelete, "/api/v1/dataset/"+strconv.Itoa(data.DatasetID), nil, 403, "")
			for _, page := range []string{"/superset/welcome/", "/sqllab/", "/dashboard/list/", "/superset/dashboard/" + tg.DashboardSlug + "/"} {
				c.wantRefused(http.MethodGet, page, nil, 403, "Access tokens cannot open browser pages")
			}
		}

		// Why the gateway obtains CSRF credentials for the token: straight
		// at a node, Alice's own API JWT cannot run SQL without them.
		direct := epLogin(t, e.c.Nodes[0].URL, alice.Credentials)
		if code, b := direct.call(t, http.MethodPost, "/api/v1/sqllab/execute/", sqlBody(data, "SELECT 1")); code != http.StatusBadRequest || !strings.Contains(string(b), "CSRF") {
			t.Errorf("SQL Lab execute with a bare Bearer JWT at a node: %d %.200s; want 400 (CSRF token missing)", code, b)
		}

		// The SQL Lab token runs a query as Alice and reads the result.
		c := tokenClient{t: t, base: r.a.URL, token: sql}
		q := "SELECT region, SUM(amount) AS total FROM orders GROUP BY region ORDER BY region"
		code, b := c.call(http.MethodPost, "/api/v1/sqllab/execute/", sqlBody(data, q))
		var res struct {
			Status string           `json:"status"`
			Data   []map[string]any `json:"data"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &res) != nil || res.Status != "success" {
			t.Fatalf("SQL Lab execute with the sqllab token: %d %.400s", code, b)
		}
		// orders holds rows i = 1..12 with region i%4 and amount 10·i.
		want := map[string]float64{"east": 180, "north": 240, "south": 150, "west": 210}
		if len(res.Data) != len(want) {
			t.Fatalf("SQL Lab result: %v, want %v", res.Data, want)
		}
		for _, row := range res.Data {
			reg, _ := row["region"].(string)
			if tot, _ := row["total"].(float64); tot != want[reg] {
				t.Errorf("SQL Lab result row %v, want total %v", row, want[reg])
			}
		}
		// The query is Alice's in Superset's own query history.
		var hist struct {
			Result []struct {
				SQL  string `json:"sql"`
				User struct {
					FirstName string `json:"first_name"`
				} `json:"user"`
			} `json:"result"`
		}
		c.getJSON("/api/v1/query/?q=(order_column:start_time,order_direction:desc,page_size:5)", &hist)
		found := false
		for _, h := range hist.Result {
			found = found || (h.SQL == q && h.User.FirstName == "Alice")
		}
		if !found {
			t.Errorf("query history through the sqllab token has no query %q by Alice: %+v", q, hist.Result)
		}
		c.wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 403, "Access token lacks the scope")
		c.wantRefused(http.MethodGet, "/api/v1/dataset/"+strconv.Itoa(data.DatasetID), nil, 403, "Access token lacks the scope")
		c.wantRefused(http.MethodGet, "/sqllab/", nil, 403, "Access tokens cannot open browser pages")
		c.wantRefused(http.MethodGet, "/superset/welcome/", nil, 403, "Access tokens cannot open browser pages")

		// Issue test 4: nothing in the store reveals a token secret or the
		// upstream credentials obtained for the SQL Lab write.
		checkStoreHoldsNoSecrets(t, r, []string{meta, sql}, tokenID(t, sql))
	})

	t.Run("RevokeOnPageAndAdminPage", func(t *testing.T) {
		// Alice revokes the SQL Lab token on her page.
		if err := ab.Navigate(r.a.URL + "/-/tokens"); err != nil {
			t.Fatal(err)
		}
		evalUntil(t, ab, `(function(){
			var rows = Array.from(document.querySelectorAll('tbody tr'));
			var r = rows.find(function(r){ return r.cells[0].textContent.indexOf('notebook') === 0 });
			if (!r) { return 'missing' }
			r.querySelector('form button[type=submit]').click();
			return 'clicked';
		})()`, "clicked", 15*time.Second)
		evalUntil(t, ab, `(function(){
			var rows = Array.from(document.querySelectorAll('tbody tr'));
			var r = rows.find(function(r){ return r.cells[0].textContent.indexOf('notebook') === 0 });
			return r ? r.cells[5].textContent.trim() : 'missing';
		})()`, "revoked", 15*time.Second)
		waitTokenRefused(t, r.replicas(), sql, http.StatusUnauthorized, "Access token has been revoked")

		// An admin revokes Alice's other token from the admin page.
		bb := browser.ForTest(t, browser.Options{})
		browserLogin(t, bb, r.b.URL, tg.Admin)
		if err := bb.Navigate(r.b.URL + "/-/admin/"); err != nil {
			t.Fatal(err)
		}
		id := tokenID(t, meta)
		// Revoke… leads to the confirmation step, whose button revokes.
		revokeLink := fmt.Sprintf(`a[href*=%q]`, "action=token&id="+id+"&")
		evalUntil(t, bb, fmt.Sprintf(`(function(){
			var a = document.querySelector(%q);
			if (!a) { return 'no revoke button for the token: ' + document.body.innerText.slice(0, 2000) }
			a.click();
			return 'clicked';
		})()`, revokeLink), "clicked", 15*time.Second)
		if _, err := bb.WaitURLPrefix(r.b.URL + "/-/admin/confirm"); err != nil {
			t.Fatal(err)
		}
		if err := bb.Click(`form[action="/-/admin/tokens/revoke"] button[type=submit]`); err != nil {
			t.Fatal(err)
		}
		waitTokenRefused(t, r.replicas(), meta, http.StatusUnauthorized, "Access token has been revoked")
		evalUntil(t, bb, fmt.Sprintf(`(function(){
			if (location.pathname !== '/-/admin/') { return 'at ' + location.pathname }
			return document.querySelector(%q) ? 'still revocable' : 'gone';
		})()`, revokeLink), "gone", 15*time.Second)
		// Both revocations are audited with who did it.
		revoked := map[string]string{}
		for _, ev := range auditEvents(t, r, "access_token.revoked") {
			revoked[ev.Subject] = ev.Actor
		}
		if revoked["access_token:"+tokenID(t, sql)] != "user:"+alice.sid() || revoked["access_token:"+id] != "user:"+adminID {
			t.Errorf("access_token.revoked events by subject: %v; want the notebook token by user:%s, the metadata token by user:%s", revoked, alice.sid(), adminID)
		}
		list := adminTokens(t, r)
		for _, tk := range list {
			if tk.ID == id && (tk.Status != "revoked" || tk.RevokedBy != "user:"+adminID) {
				t.Errorf("admin API after the admin page's revoke: %+v, want revoked by user:%s", tk, adminID)
			}
		}
	})

	t.Run("RefusalsAreAudited", func(t *testing.T) {
		c := newGWClient(t, r.a.URL)
		c.login(alice.Credentials)
		good := formCreate(t, c, "good", []string{"metadata:read"}, 24*time.Hour, "")
		short := formCreate(t, c, "short-lived", []string{"metadata:read"}, shortTTL, "")
		fenced := formCreate(t, c, "fenced", []string{"metadata:read"}, 24*time.Hour, "203.0.113.0/24, 2001:db8::/32")
		since := time.Now()
		for _, tok := range []string{good, short} {
			(&tokenClient{t: t, base: r.a.URL, token: tok}).pageThrough("dashboard")
		}
		fc := tokenClient{t: t, base: r.a.URL, token: fenced}
		fc.wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 403, "Access token is not allowed from this address")

		m := tokenPattern.FindStringSubmatch(good)
		broken := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
		(&tokenClient{t: t, base: r.a.URL, token: broken}).wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 401, "Invalid access token")
		wrong := withChecksum("sgw_" + m[1] + "_" + strings.Repeat("a", 32))
		(&tokenClient{t: t, base: r.a.URL, token: wrong}).wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 401, "Invalid access token")

		if wait := time.Until(since.Add(shortTTL + 200*time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
		(&tokenClient{t: t, base: r.a.URL, token: short}).wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 401, "Access token has expired")

		// Alice is disabled in Superset's user admin (through the
		// gateway, as an admin would): every token of hers dies.
		gwAdmin := epLogin(t, r.a.URL, tg.Admin)
		gwAdmin.must(t, http.MethodPut, "/api/v1/security/users/"+alice.sid(), map[string]any{"active": false})
		waitTokenRefused(t, r.replicas(), good, http.StatusUnauthorized, "Invalid access token")
		(&tokenClient{t: t, base: r.b.URL, token: fenced}).wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 403, "")
		// Enabling her again does not bring the tokens back.
		r.setActive(alice, true)
		(&tokenClient{t: t, base: r.b.URL, token: good}).wantRefused(http.MethodGet, "/api/v1/dashboard/", nil, 401, "Invalid access token")

		goodID, shortID, fencedID := tokenID(t, good), tokenID(t, short), tokenID(t, fenced)
		want := []struct{ subject, reason string }{
			{"access_token:" + fencedID, "cidr"},
			{"access_token:" + goodID, "bad_checksum"},
			{"access_token:" + goodID, "bad_secret"},
			{"access_token:" + shortID, "expired"},
			{"access_token:" + goodID, "revoked_user"},
		}
		evs := auditEvents(t, r, "access_token.refused")
		for _, w := range want {
			ok := false
			for _, ev := range evs {
				ok = ok || (ev.Reason == w.reason && (ev.Subject == w.subject || w.reason == "bad_checksum"))
			}
			if !ok {
				t.Errorf("no access_token.refused event with reason %q for %s; have %+v", w.reason, w.subject, evs)
			}
		}
		firstUse := map[string]bool{}
		for _, ev := range auditEvents(t, r, "access_token.new_ip") {
			firstUse[ev.Subject] = true
		}
		for _, id := range []string{tokenID(t, meta), tokenID(t, sql), goodID, shortID} {
			if !firstUse["access_token:"+id] {
				t.Errorf("no access_token.new_ip event for the first use of %s", id)
			}
		}
		created := auditEvents(t, r, "access_token.created")
		if len(created) < 5 {
			t.Errorf("access_token.created events: %d, want one per token (5)", len(created))
		}
		checkStoreHoldsNoSecrets(t, r, []string{meta, sql, good, short, fenced}, "")
	})
}

// userID looks a Superset user's id up by username on node.
func userID(t *testing.T, node *epAPI, username string) int {
	t.Helper()
	var out struct {
		Result []struct {
			ID       int    `json:"id"`
			Username string `json:"username"`
		} `json:"result"`
	}
	q := "/api/v1/security/users/?q=" + url.QueryEscape("(filters:!((col:username,opr:eq,value:"+username+")))")
	if err := json.Unmarshal(node.must(t, http.MethodGet, q, nil), &out); err != nil || len(out.Result) != 1 {
		t.Fatalf("look up user %s: %v %+v", username, err, out.Result)
	}
	return out.Result[0].ID
}

// browserLogin signs b in on Superset's real login page through the
// gateway at base.
func browserLogin(t *testing.T, b *browser.Browser, base string, cr conformance.Credentials) {
	t.Helper()
	if err := b.Navigate(base + "/login/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="username-input"]`, cr.Username); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="password-input"]`, cr.Password); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`[data-test="login-button"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitURLPrefix(base + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
}

// pageCreate creates a token on /-/tokens the way a user does: type a
// name, tick scopes with the keyboard-reachable checkboxes, submit, and
// read the token the page shows once.
func pageCreate(t *testing.T, b *browser.Browser, base, name string, scopes []string) string {
	t.Helper()
	if err := b.Navigate(base + "/-/tokens"); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`#name`, name); err != nil {
		t.Fatal(err)
	}
	for _, s := range scopes {
		if err := b.Click(fmt.Sprintf(`input[id=%q]`, "scope-"+s)); err != nil {
			t.Fatal(err)
		}
	}
	// The first choice is the test's short one: pick a day.
	if err := b.Do(chromedp.SetValue(chromedp.CSS(`#ttl`), "86400")); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`form[action="/-/tokens/create"] button[type=submit]`); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVisible(`#new-token`); err != nil {
		t.Fatal(err)
	}
	tok, err := browser.Eval[string](b, `document.getElementById('new-token').value`)
	if err != nil {
		t.Fatal(err)
	}
	if !tokenPattern.MatchString(tok) {
		t.Fatalf("the page showed %q, not a token", tok)
	}
	// Shown once: the list never carries it.
	if err := b.Navigate(base + "/-/tokens"); err != nil {
		t.Fatal(err)
	}
	html, err := browser.Eval[string](b, `document.documentElement.outerHTML`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, tok[4:]) || !strings.Contains(html, name) {
		t.Fatalf("after reload the page shows the token (%v) or misses its name %q", strings.Contains(html, tok[4:]), name)
	}
	return tok
}

// keyboardCreate creates a token on /-/tokens with the keyboard alone, as
// a user who cannot use a mouse would: Tab to each control, type the
// name, Space ticks the scope, arrow keys pick the 1-day expiry, Enter on
// the button submits.
func keyboardCreate(t *testing.T, b *browser.Browser, base, name, scope string) string {
	t.Helper()
	if err := b.Navigate(base + "/-/tokens"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
	defer cancel()
	active := func() string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){
			var e = document.activeElement;
			return e ? (e.id || e.tagName.toLowerCase() + ':' + (e.textContent || '').trim()) : '';
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tabTo := func(want string) {
		t.Helper()
		for range 40 {
			if active() == want {
				return
			}
			if _, err := chromedp.Run(ctx, chromedp.KeyEvent("\t")); err != nil {
				t.Fatal(err)
			}
		}
		t.Fatalf("Tab never reached %q on /-/tokens (last focus %q)", want, active())
	}
	press := func(keys string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.KeyEvent(keys)); err != nil {
			t.Fatal(err)
		}
	}
	tabTo("name")
	press(name)
	tabTo("scope-" + scope)
	press(" ")
	tabTo("ttl")
	for range 10 {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('ttl').value`))
		if err != nil {
			t.Fatal(err)
		}
		if v == "86400" {
			break
		}
		press(kb.ArrowDown)
	}
	tabTo("button:Create token")
	press(kb.Enter)
	if err := b.WaitVisible(`#new-token`); err != nil {
		t.Fatal(err)
	}
	tok, err := browser.Eval[string](b, `document.getElementById('new-token').value`)
	if err != nil {
		t.Fatal(err)
	}
	if !tokenPattern.MatchString(tok) {
		t.Fatalf("the page showed %q, not a token", tok)
	}
	return tok
}

// formCreate creates a token with a plain form POST on c's session, as a
// browser without JavaScript would (same-origin, so CrossOriginProtection
// lets it through).
func formCreate(t *testing.T, c *gwClient, name string, scopes []string, ttl time.Duration, cidrs string) string {
	t.Helper()
	form := url.Values{"name": {name}, "scope": scopes, "ttl": {strconv.FormatInt(int64(ttl/time.Second), 10)}, "cidrs": {cidrs}}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/-/tokens/create", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.base)
	resp, body := c.do(req)
	m := regexp.MustCompile(`id="new-token"[^>]*value="(sgw_[^"]+)"`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("create token %q: %d %.300s", name, resp.StatusCode, body)
	}
	return m[1]
}

// tokenClient calls the gateway with one access token.
type tokenClient struct {
	t     *testing.T
	base  string
	token string
}

func (c *tokenClient) call(method, path string, body any) (int, []byte) {
	c.t.Helper()
	return (&epAPI{base: c.base, bearer: c.token}).call(c.t, method, path, body)
}

func (c *tokenClient) getJSON(path string, out any) {
	c.t.Helper()
	code, b := c.call(http.MethodGet, path, nil)
	if code != http.StatusOK || json.Unmarshal(b, out) != nil {
		c.t.Fatalf("GET %s with a token: %d %.300s", path, code, b)
	}
}

// pageThrough lists /api/v1/<res>/ one item per page, as an ingestion tool
// walks a catalogue, and returns the ids.
func (c *tokenClient) pageThrough(res string) []int {
	c.t.Helper()
	var ids []int
	for page := 0; ; page++ {
		var out struct {
			Count  int `json:"count"`
			Result []struct {
				ID int `json:"id"`
			} `json:"result"`
		}
		c.getJSON(fmt.Sprintf("/api/v1/%s/?q=(page:%d,page_size:1)", res, page), &out)
		for _, r := range out.Result {
			ids = append(ids, r.ID)
		}
		if len(out.Result) == 0 || len(ids) >= out.Count || page > 50 {
			return ids
		}
	}
}

// wantRefused checks the gateway's own refusal: status, flask-jwt-extended
// shaped {"msg": …} starting with msg ("" accepts any).
func (c *tokenClient) wantRefused(method, path string, body any, status int, msg string) {
	c.t.Helper()
	code, b := c.call(method, path, body)
	var out struct {
		Msg string `json:"msg"`
	}
	if code != status || json.Unmarshal(b, &out) != nil || out.Msg == "" || !strings.HasPrefix(out.Msg, msg) {
		c.t.Errorf("%s %s with a token: %d %.200s; want %d %q", method, path, code, b, status, msg)
	}
}

// waitTokenRefused waits (bounded by the cache TTL plus slack) until tok
// is refused on every replica.
func waitTokenRefused(t *testing.T, gs []*harness.Gateway, tok string, status int, msg string) {
	t.Helper()
	deadline := time.Now().Add(epCacheTTL + epSlack)
	for _, g := range gs {
		for {
			code, b := (&epAPI{base: g.URL, bearer: tok}).call(t, http.MethodGet, "/api/v1/dashboard/", nil)
			if code == status && strings.Contains(string(b), msg) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("token still answered %d %.200s at %s; want %d %q", code, b, g.URL, status, msg)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func sqlBody(d harness.Data, sql string) map[string]any {
	return map[string]any{
		"database_id": d.DatabaseID, "sql": sql, "runAsync": false, "queryLimit": 100,
		"client_id": epRand(5), "tab": "gateway e2e",
	}
}

func tokenID(t *testing.T, tok string) string {
	t.Helper()
	m := tokenPattern.FindStringSubmatch(tok)
	if m == nil {
		t.Fatalf("not a token: %q", tok)
	}
	return m[1]
}

// withChecksum appends the documented checksum to "sgw_<id>_<secret>".
func withChecksum(s string) string {
	return fmt.Sprintf("%s_%08x", s, crc32.ChecksumIEEE([]byte(s)))
}

type tokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	OwnerID   string    `json:"owner_id"`
	Status    string    `json:"status"`
	RevokedBy string    `json:"revoked_by"`
}

func adminTokens(t *testing.T, r *epRig) []tokenInfo {
	t.Helper()
	code, b := r.adminCall(r.a, r.token, http.MethodGet, "tokens", nil)
	var out struct {
		Tokens []tokenInfo `json:"tokens"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET tokens: %d %.200s", code, b)
	}
	return out.Tokens
}

type auditEvent struct {
	Event   string `json:"event"`
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	Actor   string `json:"actor"`
}

// auditEvents reads the last 10 minutes of the audit log through the admin
// API, keeping one kind of event.
func auditEvents(t *testing.T, r *epRig, kind string) []auditEvent {
	t.Helper()
	code, b := r.adminCall(r.a, r.token, http.MethodGet, "audit?since=10m&limit=1000", nil)
	var out struct {
		Events []auditEvent `json:"events"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET audit: %d %.200s", code, b)
	}
	var keep []auditEvent
	for _, ev := range out.Events {
		if ev.Event == kind {
			keep = append(keep, ev)
		}
	}
	return keep
}

// checkStoreHoldsNoSecrets reads every raw value in the rig's Redis: no
// token, token secret or its base32 alphabet run may appear, and, when
// sealedID is set, that token's upstream credentials are present and
// sealed (key id, then binary), never plain JSON or a cookie.
func checkStoreHoldsNoSecrets(t *testing.T, r *epRig, tokens []string, sealedID string) {
	t.Helper()
	opt, err := goredis.ParseURL(r.rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opt)
	defer rc.Close()
	ctx := context.Background()
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, tok := range tokens {
		secrets = append(secrets, tokenPattern.FindStringSubmatch(tok)[2])
	}
	sawSealed := false
	for _, k := range keys {
		var vals []string
		switch typ := rc.Type(ctx, k).Val(); typ {
		case "string":
			vals = []string{rc.Get(ctx, k).Val()}
		case "hash":
			for f, v := range rc.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = rc.SMembers(ctx, k).Val()
		case "zset":
			vals = rc.ZRange(ctx, k, 0, -1).Val()
		case "list":
			vals = rc.LRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rc.XRange(ctx, k, "-", "+").Val() {
				b, _ := json.Marshal(m.Values)
				vals = append(vals, string(b))
			}
		}
		for _, v := range append(vals, k) {
			for _, s := range secrets {
				if strings.Contains(v, s) {
					t.Errorf("store key %s holds a token secret", k)
				}
			}
		}
		if sealedID != "" && k == "accesstoken:"+sealedID+":upstream" {
			sawSealed = true
			v := vals[0]
			kid, rest, ok := strings.Cut(v, ":")
			if !ok || len(kid) != 8 || len(rest) < 28 || json.Valid([]byte(v)) || json.Valid([]byte(rest)) ||
				strings.Contains(strings.ToLower(v), "session") || strings.Contains(strings.ToLower(v), "csrf") {
				t.Errorf("upstream credentials of %s are not sealed: %.80q", sealedID, v)
			}
		}
	}
	if sealedID != "" && !sawSealed {
		t.Errorf("no upstream credentials stored for the SQL Lab token %s (keys: %v)", sealedID, keys)
	}
}
