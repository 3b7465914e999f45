package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/proxy/upstream"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

const secretKey = "test-superset-secret-key-0123456789abcdef"

var bg = context.Background()

// fakeSessions is a Sessions with two sessions of bob.
type fakeSessions struct {
	mu sync.Mutex
	m  map[string]admin.SessionInfo
}

func (f *fakeSessions) ListUserSessions(_ context.Context, userID string) ([]admin.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []admin.SessionInfo
	for _, s := range f.m {
		if s.UserID == userID {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeSessions) EndSessionAsAdmin(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[id]; !ok {
		return fmt.Errorf("session %s: %w", id, session.ErrNotFound)
	}
	delete(f.m, id)
	return nil
}

type env struct {
	t       *testing.T
	front   *httptest.Server
	fake    *httptest.Server
	ep      *epoch.Epochs
	aud     *audit.Logger
	token   string
	mintTok func(sub string) string
	now     time.Time
}

func newEnv(t *testing.T, sess admin.Sessions, routes ...admin.Route) *env {
	t.Helper()
	return newEnvUsers(t, sess, nil, routes...)
}

// newEnvUsers resolves the users admins name with users (nil: ids only).
func newEnvUsers(t *testing.T, sess admin.Sessions, users admin.Users, routes ...admin.Route) *env {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	clk := func() time.Time { return now }
	e := &env{t: t, now: now}
	f := fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk})
	e.fake = httptest.NewServer(f)
	t.Cleanup(e.fake.Close)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e.aud = audit.New(audit.Options{Recent: st})
	e.ep, err = epoch.New(epoch.Options{Store: st, Auditor: e.aud, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := jwtguard.New(jwtguard.Options{Verifier: apijwt.Verifier{Key: []byte(secretKey)}, Now: clk})
	if err != nil {
		t.Fatal(err)
	}
	// What cmd wires: the caller's Superset credential, checked as the
	// proxy would check it (here a Bearer JWT through jwtguard).
	rc, err := admin.NewMeRolesChecker(admin.MeRolesOptions{
		Client: &client.Client{BaseURL: e.fake.URL},
		Credentials: func(r *http.Request) (client.Auth, error) {
			tok, ok, err := jwtguard.BearerToken(r.Header)
			if err != nil || !ok {
				return client.Auth{}, admin.ErrNoCredential
			}
			c, d, err := guard.Verify(r.Context(), tok, apijwt.Access)
			if err != nil {
				return client.Auth{}, err
			}
			if d.Allow {
				if d, err = e.ep.IssuedAfter(r.Context(), c.Subject, c.IssuedAt, time.Second); err != nil {
					return client.Auth{}, err
				}
			}
			if !d.Allow {
				return client.Auth{}, fmt.Errorf("%w: %s", admin.ErrNoCredential, d.Reason)
			}
			return client.Auth{Bearer: tok}, nil
		},
		TTL: time.Nanosecond, // no reuse across the test's revocations
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, sum, err := admin.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok
	h, err := admin.New(admin.Options{
		Tokens:      []admin.Token{{Name: "ci", SHA256: sum}},
		Roles:       []string{"Admin"},
		RoleChecker: rc,
		Epochs:      e.ep,
		Users:       users,
		Sessions:    sess,
		Audit:       e.aud,
		Status:      func(context.Context) any { return map[string]any{"store": "bolt", "durable": true} },
		Routes:      routes,
		RequestInfo: func(r *http.Request) (string, string) { return proxy.RequestID(r), proxy.ClientIP(r).String() },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(admin.APIPrefix, h)
	pool, err := upstream.New(upstream.Options{Nodes: []string{e.fake.URL}})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := proxy.New(proxy.Options{Upstream: pool, Internal: mux})
	if err != nil {
		t.Fatal(err)
	}
	e.front = httptest.NewServer(gw)
	t.Cleanup(e.front.Close)
	e.mintTok = func(sub string) string {
		s, err := apijwt.Mint([]byte(secretKey), apijwt.MintOptions{Subject: sub, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return e
}

type reply struct {
	code int
	body map[string]any
}

func (e *env) call(method, path, bearer, body string, hdr ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.front.URL+admin.APIPrefix+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("%s %s: not JSON: %q", method, path, b)
	}
	return reply{resp.StatusCode, m}
}

// lastEvent returns the newest audit event named name.
func (e *env) lastEvent(name string) audit.Event {
	e.t.Helper()
	evs, err := e.aud.Recent(bg, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Event == name {
			return ev
		}
	}
	e.t.Fatalf("no %s event", name)
	return audit.Event{}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		name, path, bearer string
		want               int
		actor, reason      string
		hdr                []string
	}{
		{"no credential", "status", "", 401, "anonymous", "no_credential", nil},
		{"token in the query string", "status?token=" + e.token + "&access_token=" + e.token, "", 401, "anonymous", "no_credential", nil},
		{"unknown admin token", "status", "sgwa_" + strings.Repeat("A", 43), 401, "anonymous", "bad_token", nil},
		{"forged JWT", "status", "a.b.c", 401, "anonymous", "no_credential", nil},
		{"alice (Alpha) is no admin", "status", e.mintTok("2"), 403, "user:2", "not_admin", nil},
		{"cross-site browser request", "status", e.token, 403, "anonymous", "cross_origin", []string{"Sec-Fetch-Site", "cross-site"}},
		{"admin token", "status", e.token, 200, "admin-token:ci", "", nil},
		{"admin's Superset JWT", "status", e.mintTok("1"), 200, "user:1", "", nil},
	} {
		method := "GET"
		if c.hdr != nil {
			method = "POST"
		}
		r := e.call(method, c.path, c.bearer, "", c.hdr...)
		if c.hdr != nil {
			// POST status is not a route; the refusal comes first.
			c.path = "status"
		}
		if r.code != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, r.code, r.body, c.want)
			continue
		}
		ev := e.lastEvent("admin.status")
		if c.hdr != nil {
			ev = e.lastEvent("admin.unknown")
		}
		wantOutcome := audit.OutcomeSuccess
		if c.want != 200 {
			wantOutcome = audit.OutcomeDenied
		}
		if ev.Actor != c.actor || ev.Outcome != wantOutcome || ev.Reason != c.reason || ev.RequestID == "" {
			t.Errorf("%s: audit %+v", c.name, ev)
		}
	}
	if r := e.call("GET", "status", e.token, ""); r.body["store"] != "bolt" {
		t.Errorf("status body %v", r.body)
	}
	if r := e.call("GET", "no/such/route", e.token, ""); r.code != 404 {
		t.Errorf("unknown route: %d", r.code)
	}
	if r := e.call("GET", "no/such/route", "", ""); r.code != 401 {
		t.Errorf("unknown route, anonymous: %d", r.code)
	}
}

func TestRevokeUserListAndAudit(t *testing.T) {
	e := newEnv(t, nil)
	r := e.call("POST", "users/3/revoke", e.token, `{"reason":"left the company\u0007"}`)
	if r.code != 200 {
		t.Fatalf("revoke: %d %v", r.code, r.body)
	}
	ms, _ := r.body["epoch"].(float64)
	if u, _, _ := e.ep.Epoch(bg, "3"); int64(ms) != u || u == 0 {
		t.Fatalf("answered epoch %v, stored %d", r.body["epoch"], u)
	}
	ev := e.lastEvent("admin.user.revoke")
	if ev.Actor != "admin-token:ci" || ev.Subject != "user:3" || ev.Outcome != audit.OutcomeSuccess || ev.Note != "left the company" {
		t.Fatalf("admin audit %+v", ev)
	}
	if ev := e.lastEvent("epoch.stamp"); ev.Actor != "admin-token:ci" || ev.Reason != epoch.TriggerAdmin || ev.Subject != "user:3" {
		t.Fatalf("stamp audit %+v", ev)
	}
	// Listed, and visible to an admin user through their Superset JWT.
	r = e.call("GET", "revocations", e.mintTok("1"), "")
	revs, _ := r.body["revocations"].([]any)
	if r.code != 200 || len(revs) != 1 || !strings.Contains(fmt.Sprint(revs[0]), "user:3") {
		t.Fatalf("revocations: %d %v", r.code, r.body)
	}
	r = e.call("GET", "audit?since=1h&limit=50", e.token, "")
	evs, _ := r.body["events"].([]any)
	if r.code != 200 || len(evs) < 3 {
		t.Fatalf("audit: %d %v", r.code, r.body)
	}
	if r := e.call("GET", "audit?since=yesterday", e.token, ""); r.code != 400 {
		t.Fatalf("bad since: %d", r.code)
	}
	for _, bad := range []struct{ path, body string }{
		{"users/3:x/revoke", `{}`},
		{"users/3/revoke", `{"reason": 5}`},
		{"users/3/revoke", `{"why": "x"}`},
	} {
		if r := e.call("POST", bad.path, e.token, bad.body); r.code != 400 {
			t.Errorf("%s %s: %d", bad.path, bad.body, r.code)
		}
	}
	// A revoked admin's JWT is no longer an admin credential.
	admin1 := e.mintTok("1")
	if r := e.call("POST", "users/1/revoke", e.token, `{}`); r.code != 200 {
		t.Fatal(r.code)
	}
	if r := e.call("GET", "status", admin1, ""); r.code != 401 {
		t.Fatalf("revoked admin's JWT: %d", r.code)
	}
}

func TestSessions(t *testing.T) {
	if r := newEnv(t, nil).call("GET", "users/3/sessions", "", ""); r.code != 401 {
		t.Fatalf("anonymous: %d", r.code)
	}
	e0 := newEnv(t, nil)
	if r := e0.call("GET", "users/3/sessions", e0.token, ""); r.code != 501 {
		t.Fatalf("without Sessions: %d", r.code)
	}
	fs := &fakeSessions{m: map[string]admin.SessionInfo{
		"h1": {Handle: "h1", UserID: "3", Username: "bob"},
		"h2": {Handle: "h2", UserID: "3", Username: "bob"},
		"h3": {Handle: "h3", UserID: "2", Username: "alice"},
	}}
	e := newEnv(t, fs)
	r := e.call("GET", "users/3/sessions", e.token, "")
	if ss, _ := r.body["sessions"].([]any); r.code != 200 || len(ss) != 2 {
		t.Fatalf("list: %d %v", r.code, r.body)
	}
	if r := e.call("GET", "users/9/sessions", e.token, ""); r.code != 200 || fmt.Sprint(r.body["sessions"]) != "[]" {
		t.Fatalf("no sessions: %d %v", r.code, r.body)
	}
	if r := e.call("DELETE", "sessions/h1", e.token, ""); r.code != 200 {
		t.Fatalf("end: %d %v", r.code, r.body)
	}
	if ev := e.lastEvent("admin.session.end"); ev.Subject != "session:h1" || ev.Outcome != audit.OutcomeSuccess {
		t.Fatalf("audit %+v", ev)
	}
	if r := e.call("DELETE", "sessions/h1", e.token, ""); r.code != 404 {
		t.Fatalf("end again: %d", r.code)
	}
	if r := e.call("DELETE", "sessions/h3", e.mintTok("3"), ""); r.code != 403 {
		t.Fatalf("bob ending a session: %d", r.code)
	}
}

// Other features add routes; they get the same authentication and audit.
func TestExtensionRoutes(t *testing.T) {
	var gotActor string
	e := newEnv(t, nil, admin.Route{Method: "POST", Path: "dashboards/{id}/guest-tokens/revoke", Event: "admin.guest_tokens.revoke",
		Handle: func(_ context.Context, c *admin.Call) (any, error) {
			gotActor = c.Actor
			c.Subject = "dashboard:" + c.Request.PathValue("id")
			return map[string]any{"aliases": []string{c.Request.PathValue("id")}}, nil
		}})
	if r := e.call("POST", "dashboards/12/guest-tokens/revoke", "", ""); r.code != 401 {
		t.Fatalf("anonymous: %d", r.code)
	}
	if r := e.call("POST", "dashboards/12/guest-tokens/revoke", e.token, ""); r.code != 200 || gotActor != "admin-token:ci" {
		t.Fatalf("extension: %d %v", r.code, r.body)
	}
	if ev := e.lastEvent("admin.guest_tokens.revoke"); ev.Subject != "dashboard:12" {
		t.Fatalf("audit %+v", ev)
	}
	_, err := admin.New(admin.Options{Epochs: e.ep, Audit: e.aud, Routes: []admin.Route{{Method: "GET", Path: "status", Event: "x",
		Handle: func(context.Context, *admin.Call) (any, error) { return nil, nil }}}})
	if err == nil {
		t.Fatal("a route clashing with a built-in one was accepted")
	}
}

func TestNewToken(t *testing.T) {
	a, ha, err := admin.NewToken()
	b, _, _ := admin.NewToken()
	if err != nil || a == b || !strings.HasPrefix(a, admin.TokenPrefix) || len(a) < 40 || admin.HashToken(a) != ha || len(ha) != 64 {
		t.Fatalf("NewToken = %q %q %v", a, ha, err)
	}
	if _, err := admin.New(admin.Options{Epochs: &epoch.Epochs{}, Audit: audit.New(audit.Options{}), Tokens: []admin.Token{{Name: "x", SHA256: "zz"}}}); err == nil {
		t.Fatal("a bad token hash was accepted")
	}
}

// TestNotesAreCleanedOnce: an admin's free-text note, whichever route
// takes it, is kept in its own audit field, without control characters and
// cut to audit.MaxNote; the reason field keeps only identifiers.
func TestNotesAreCleanedOnce(t *testing.T) {
	raw := "stolen\x1b[31m laptop\n" + strings.Repeat("é", 1000)
	if got := audit.CleanNote(raw); len(got) > audit.MaxNote || strings.ContainsAny(got, "\x1b\n") || !utf8.ValidString(got) ||
		!strings.HasPrefix(got, "stolen [31m laptop") {
		t.Fatalf("CleanNote = %q", got)
	}
}

// TestRevokeUserByName: the API and so the CLI share the page's check.
// "alice" as an id was taken as the user id "alice" (200, nobody revoked).
func TestRevokeUserByName(t *testing.T) {
	idsOnly := newEnv(t, nil)
	r := idsOnly.call("POST", "users/alice/revoke", idsOnly.token, `{"reason":"x"}`)
	if msg, _ := r.body["error"].(string); r.code != 400 || !strings.Contains(msg, "not a Superset user id") {
		t.Fatalf("alice without a resolver: %d %v", r.code, r.body)
	}
	if ev := idsOnly.lastEvent("admin.user.revoke"); ev.Subject != "" || ev.Reason != admin.ReasonBadUserRef || ev.Outcome != audit.OutcomeFailure {
		t.Errorf("audit %+v", ev)
	}

	e := newEnvUsers(t, nil, fakeUsers{})
	r = e.call("POST", "users/alice/revoke", e.token, `{"reason":"offboarding"}`)
	if r.code != 200 || r.body["user_id"] != "2" || r.body["username"] != "alice" {
		t.Fatalf("alice: %d %v", r.code, r.body)
	}
	if u, _, _ := e.ep.Epoch(bg, "2"); u == 0 {
		t.Fatal("alice (user 2) not revoked")
	}
	if ev := e.lastEvent("admin.user.revoke"); ev.Subject != "user:2" || ev.Outcome != audit.OutcomeSuccess {
		t.Errorf("audit %+v", ev)
	}
	for _, c := range []struct {
		ref  string
		code int
	}{{"mallory", 404}, {"99", 404}, {strings.Repeat("a", 65), 400}} {
		r := e.call("POST", "users/"+c.ref+"/revoke", e.token, `{"reason":"x"}`)
		if msg, _ := r.body["error"].(string); r.code != c.code || msg == "" {
			t.Errorf("%s: %d %v", c.ref, r.code, r.body)
		}
	}
	if ev := e.lastEvent("admin.user.revoke"); ev.Reason != admin.ReasonBadUserRef {
		t.Errorf("last audit %+v", ev)
	}
}

// TestStoreBackupTakesAnAdminToken: the store's copy is for the operator's
// admin token; a Superset admin's own credential (a session or JWT) gets
// 403, and with the Redis store (no Backupper) the token gets 409.
func TestStoreBackupTakesAnAdminToken(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.call("GET", "store/backup", e.mintTok("1"), ""); r.code != 403 {
		t.Fatalf("a Superset admin's JWT: %d %v, want 403", r.code, r.body)
	}
	if ev := e.lastEvent("admin.store.backup"); ev.Reason != "admin_token_required" || ev.Actor != "user:1" {
		t.Fatalf("audit %+v", ev)
	}
	if r := e.call("GET", "store/backup", e.token, ""); r.code != 409 {
		t.Fatalf("admin token without an embedded store: %d %v, want 409", r.code, r.body)
	}
}
