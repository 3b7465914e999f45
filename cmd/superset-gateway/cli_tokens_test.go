package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// listTokens runs `tokens list --json` with extra flags and returns the
// records.
func listTokens(t *testing.T, env []string, flags ...string) []accesstoken.Info {
	t.Helper()
	code, out, errOut := runCmd(t, context.Background(), env, append([]string{"tokens", "list", "--json"}, flags...)...)
	if code != exitOK {
		t.Fatalf("tokens list --json %v: exit %d: %s", flags, code, errOut)
	}
	var got struct {
		Tokens []accesstoken.Info `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Tokens == nil {
		t.Fatalf("tokens list --json %v printed %q: %v", flags, out, err)
	}
	return got.Tokens
}

// tokenStatus is the status of GET /api/v1/dashboard/1 (in the scope
// dashboards:read) through the gateway with an access token: 401 or 403
// is the gateway's refusal, anything else Superset's answer.
func tokenStatus(t *testing.T, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/dashboard/1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tokenIDs(list []accesstoken.Info) []string {
	ids := make([]string, len(list))
	for i, in := range list {
		ids[i] = in.ID
	}
	return ids
}

// TestCLITokensListAndRevoke: through the real serve, alice and bob create
// tokens on /-/tokens; `tokens list` shows both (table and JSON, filtered by
// user and status) without their secrets; `revoke token ID` and `revoke token
// sgw_…` end them on the gateway; an unknown id is the API's 404.
func TestCLITokensListAndRevoke(t *testing.T) {
	g, adminToken := adminGateway(t)
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	aliceTok := createAccessToken(t, g.base, "alice", fakesuperset.AlicePassword, "ci", "dashboards:read")
	bobTok := createAccessToken(t, g.base, "bob", fakesuperset.BobPassword, "nightly export", "dashboards:read")
	aliceID, bobID := strings.Split(aliceTok, "_")[1], strings.Split(bobTok, "_")[1]
	env := []string{"SG_ADMIN_TOKEN=" + adminToken, "SG_ADMIN_URL=" + g.base}
	for _, tok := range []string{aliceTok, bobTok} {
		if code := tokenStatus(t, g.base, tok); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Fatalf("a fresh token in its scope: %d", code)
		}
	}

	code, out, errOut := runCmd(t, context.Background(), env, "tokens", "list")
	if code != exitOK {
		t.Fatalf("tokens list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID OWNER NAME SCOPES STATUS EXPIRES LAST USED" {
		t.Fatalf("tokens list printed:\n%s", out)
	}
	for _, want := range [][]string{{aliceID, "alice (", "ci", "dashboards:read", "active", " from 127.0.0.1"}, {bobID, "bob (", "nightly export", "active"}} {
		var found bool
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, want[0]+" ") {
				found = true
				for _, w := range want[1:] {
					if !strings.Contains(l, w) {
						t.Errorf("row %q lacks %q", l, w)
					}
				}
			}
		}
		if !found {
			t.Errorf("no row for %s in:\n%s", want[0], out)
		}
	}
	if strings.Contains(out, aliceTok) || strings.Contains(out, bobTok) {
		t.Error("tokens list prints a token's secret")
	}

	all := listTokens(t, env)
	if len(all) != 2 {
		t.Fatalf("tokens list --json: %v", tokenIDs(all))
	}
	var aliceUser string
	for _, in := range all {
		if in.ID == aliceID {
			aliceUser = in.OwnerID
			if in.OwnerName != "alice" || in.Name != "ci" || in.Status != "active" || in.Expires.IsZero() {
				t.Errorf("alice's record: %+v", in)
			}
		}
	}
	if got := listTokens(t, env, "--user", aliceUser); len(got) != 1 || got[0].ID != aliceID {
		t.Errorf("--user %s: %v, want only alice's %s", aliceUser, tokenIDs(got), aliceID)
	}
	if got := listTokens(t, env, "--user", "999"); len(got) != 0 {
		t.Errorf("--user 999: %v, want none", tokenIDs(got))
	}

	code, out, errOut = runCmd(t, context.Background(), env, "revoke", "token", aliceID)
	if code != exitOK {
		t.Fatalf("revoke token: exit %d: %s", code, errOut)
	}
	var revoked struct {
		Revoked string `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(out), &revoked); err != nil || revoked.Revoked != aliceID {
		t.Fatalf("revoke token printed %q", out)
	}
	deadline := time.Now().Add(2 * time.Second)
	for tokenStatus(t, g.base, aliceTok) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a token revoked with the CLI still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := tokenStatus(t, g.base, bobTok); code == http.StatusUnauthorized || code == http.StatusForbidden {
		t.Errorf("bob's token after alice's was revoked: %d", code)
	}
	if got := listTokens(t, env, "--status", "revoked"); len(got) != 1 || got[0].ID != aliceID || got[0].RevokedBy != "admin-token:ci" {
		t.Errorf("--status revoked: %+v, want alice's, revoked by admin-token:ci", got)
	}
	if got := listTokens(t, env, "--status", "active"); len(got) != 1 || got[0].ID != bobID {
		t.Errorf("--status active: %v, want only bob's %s", tokenIDs(got), bobID)
	}
	code, out, _ = runCmd(t, context.Background(), env, "tokens", "list", "--status", "revoked")
	if code != exitOK || !strings.Contains(out, aliceID) || !strings.Contains(out, "revoked") || strings.Contains(out, bobID) {
		t.Errorf("tokens list --status revoked: %d\n%s", code, out)
	}

	// The whole token names its id; the CLI sends only the id.
	code, out, errOut = runCmd(t, context.Background(), env, "revoke", "token", bobTok)
	if code != exitOK || !strings.Contains(out, bobID) {
		t.Fatalf("revoke token sgw_…: exit %d %q %s", code, out, errOut)
	}
	deadline = time.Now().Add(2 * time.Second)
	for tokenStatus(t, g.base, bobTok) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("a token revoked by its whole value still works")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(g.stdout.String(), bobTok) || strings.Contains(g.stderr.String(), bobTok) {
		t.Error("the gateway logged a token given to revoke token")
	}

	code, _, errOut = runCmd(t, context.Background(), env, "revoke", "token", strings.Repeat("a", accesstoken.IDLen))
	if code != exitFailure || strings.TrimSpace(errOut) != "superset-gateway: admin API: 404 Not Found: not_found" {
		t.Errorf("revoke of an unknown id: exit %d %q, want 1 with the API's 404", code, errOut)
	}
}

// TestCLITokensRefusals: bad ids, flags and a missing admin token are usage
// errors (exit 2, one line) found before any request, and a whole token
// given with a bad checksum is never echoed.
func TestCLITokensRefusals(t *testing.T) {
	var calls atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"error":"should not be called"}`, http.StatusTeapot)
	}))
	defer api.Close()
	tok, id, _, err := accesstoken.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	badSum := tok[:len(tok)-8] + "00000000"
	if badSum == tok {
		badSum = tok[:len(tok)-8] + "11111111"
	}
	env := []string{"SG_ADMIN_TOKEN=sgwa_anything", "SG_ADMIN_URL=" + api.URL}
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{env, []string{"revoke", "token", "not-an-id"}, `"not-an-id" is not a token id`},
		{env, []string{"revoke", "token", strings.ToUpper(id)}, "is not a token id"},
		{env, []string{"revoke", "token", id[:15]}, "is not a token id"},
		{env, []string{"revoke", "token", badSum}, "bad token checksum"},
		{env, []string{"revoke", "token", tok[:len(tok)-1]}, "malformed token"},
		{env, []string{"revoke", "token"}, "usage: revoke token ID"},
		{env, []string{"revoke", "token", id, "extra"}, `unexpected argument "extra"`},
		{env, []string{"revoke", "token", id, "--reason", "leaked"}, "--reason does not apply"},
		{env, []string{"revoke", "user", "3", "--reason", "x", "--all"}, "--all does not apply"},
		{env, []string{"revoke", "tokens", id}, `unknown target "tokens"`},
		{nil, []string{"revoke", "token", id, "--url", api.URL}, "no admin token"},
		{nil, []string{"tokens", "list", "--url", api.URL}, "no admin token"},
		{env, []string{"tokens"}, "usage: tokens list"},
		{env, []string{"tokens", "show"}, "usage: tokens list"},
		{env, []string{"tokens", "list", "extra"}, `unexpected argument "extra"`},
		{env, []string{"tokens", "list", "--status", "live"}, `--status "live": want active, expired or revoked`},
		{env, []string{"tokens", "list", "--user", "alice"}, `--user "alice" is not a Superset user id`},
		{env, []string{"tokens", "list", "--json=maybe"}, "invalid boolean"},
	} {
		code, out, errOut := runCmd(t, context.Background(), c.env, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 || out != "" {
			t.Errorf("%v: exit %d %q, want 2 and one line containing %q", c.args, code, errOut, c.want)
		}
		if strings.Contains(errOut, tok[len(accesstoken.Prefix)+accesstoken.IDLen:len(tok)-8]) {
			t.Errorf("%v: the token's secret is echoed: %q", c.args, errOut)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the admin API was called %d times by refused commands", n)
	}
}

// TestCLITokensListFormat: against a stand-in admin API, `tokens list`
// sends one authenticated GET, sorts by creation, prints "-" and "never"
// for missing values and replaces control characters from the API, and
// --json passes each record through as the API sent it.
func TestCLITokensListFormat(t *testing.T) {
	const answer = `{"tokens":[
{"id":"bbbbbbbbbbbbbbbb","owner_id":"7","owner_name":"eve\u001b[31m","name":"tab\there","scopes":["charts:read","dashboards:read"],"created":"2030-01-02T00:00:00Z","expires":"2030-02-01T00:00:00Z","last_used":"2030-01-03T04:05:06Z","last_used_ip":"10.0.0.9","status":"active","future_field":{"x":1}},
{"id":"aaaaaaaaaaaaaaaa","owner_id":"8","owner_name":"","name":"old","scopes":[],"created":"2030-01-01T00:00:00Z","expires":"2030-01-01T01:00:00Z","status":"expired"}]}`
	var (
		mu  sync.Mutex
		got []string
	)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	}))
	defer api.Close()
	env := []string{"SG_ADMIN_TOKEN=sgwa_x", "SG_ADMIN_URL=" + api.URL + "/"}

	code, out, errOut := runCmd(t, context.Background(), env, "tokens", "list")
	if code != exitOK {
		t.Fatalf("tokens list: exit %d: %s", code, errOut)
	}
	want := `ID                OWNER         NAME      SCOPES                       STATUS   EXPIRES               LAST USED
aaaaaaaaaaaaaaaa  8             old       -                            expired  2030-01-01T01:00:00Z  never
bbbbbbbbbbbbbbbb  eve?[31m (7)  tab?here  charts:read,dashboards:read  active   2030-02-01T00:00:00Z  2030-01-03T04:05:06Z from 10.0.0.9
`
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != "GET /-/admin/api/v1/tokens Bearer sgwa_x" {
		t.Errorf("requests: %q", got)
	}
	mu.Unlock()

	code, out, _ = runCmd(t, context.Background(), env, "tokens", "list", "--json", "--status", "active")
	if code != exitOK || !strings.Contains(out, `"future_field":{"x":1}`) || strings.Contains(out, "aaaaaaaaaaaaaaaa") || !strings.HasSuffix(out, "}\n") {
		t.Errorf("--json --status active: %d %q", code, out)
	}
	code, out, _ = runCmd(t, context.Background(), env, "tokens", "list", "--json", "--user", "9")
	if code != exitOK || out != "{\"tokens\":[]}\n" {
		t.Errorf("--json, nothing matches: %d %q", code, out)
	}
}
