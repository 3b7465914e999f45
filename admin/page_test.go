package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// fakeTokens is an AccessTokens in memory whose store can be "down".
type fakeTokens struct {
	mu   sync.Mutex
	list []admin.AccessToken
	down bool
}

func (f *fakeTokens) ListAll(context.Context) ([]admin.AccessToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, fmt.Errorf("fake list: %w", store.ErrUnavailable)
	}
	return slices.Clone(f.list), nil
}

func (f *fakeTokens) Revoke(_ context.Context, id, by string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return fmt.Errorf("fake revoke: %w", store.ErrUnavailable)
	}
	for i := range f.list {
		if f.list[i].ID == id {
			if f.list[i].Status != "revoked" {
				f.list[i].Status, f.list[i].RevokedBy, f.list[i].Revoked = "revoked", by, time.Now()
			}
			return nil
		}
	}
	return fmt.Errorf("token %s: %w", id, admin.ErrNotFound)
}

func (f *fakeTokens) get(id string) admin.AccessToken {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.list {
		if t.ID == id {
			return t
		}
	}
	return admin.AccessToken{}
}

func (f *fakeTokens) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// fakeRoles is a RoleChecker keyed by the "who" cookie, standing in for
// the session vault and GET /api/v1/me/roles/ (cmd's wiring test covers
// the real ones).
type fakeRoles struct{}

func (fakeRoles) Roles(_ context.Context, r *http.Request) (admin.Principal, error) {
	c, err := r.Cookie("who")
	if err != nil {
		return admin.Principal{}, admin.ErrNoCredential
	}
	switch c.Value {
	case "admin":
		return admin.Principal{UserID: "1", Username: "admin", Roles: []string{"Admin"}}, nil
	case "alice":
		return admin.Principal{UserID: "2", Username: "alice", Roles: []string{"Alpha"}}, nil
	case "down":
		return admin.Principal{}, fmt.Errorf("vault: %w", store.ErrUnavailable)
	}
	return admin.Principal{}, fmt.Errorf("%w: unknown session", admin.ErrNoCredential)
}

// validID is accesstoken.ValidID's rule, which cmd passes in.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

const (
	aliceTok   = "aliceaaaaaaaaaaa"
	bobTok     = "bobbbbbbbbbbbbbb"
	oldTok     = "oldcccccccccccc2"
	unknownTok = "zzzzzzzzzzzzzzzz"
)

type pageEnv struct {
	t    *testing.T
	srv  *httptest.Server
	ep   *epoch.Epochs
	aud  *audit.Logger
	toks *fakeTokens
	sess *fakeSessions
}

// fakeDirectory is Superset's users and embedded dashboards as the admin
// sees them.
type fakeDirectory struct{}

var directoryUsers = []client.User{{ID: 1, Username: "admin", Active: true}, {ID: 2, Username: "alice", Active: true}, {ID: 3, Username: "bob", Active: true}}

func (fakeDirectory) SearchUsers(_ context.Context, _ *http.Request, q string) ([]client.User, error) {
	var out []client.User
	for _, u := range directoryUsers {
		if strings.Contains(u.Username, q) {
			out = append(out, u)
		}
	}
	return out, nil
}

func (fakeDirectory) User(_ context.Context, _ *http.Request, id int) (client.User, error) {
	for _, u := range directoryUsers {
		if u.ID == id {
			return u, nil
		}
	}
	return client.User{}, client.ErrUnknownUser
}

func (fakeDirectory) EmbeddedDashboards(context.Context, *http.Request) ([]client.EmbeddedDashboardInfo, error) {
	return nil, nil
}

// fakeUsers is Superset's users as the service user sees them: 1 admin,
// 2 alice, 3 bob.
type fakeUsers struct{}

func (fakeUsers) ResolveUser(_ context.Context, ref string) (client.User, error) {
	for _, u := range []client.User{{ID: 1, Username: "admin"}, {ID: 2, Username: "alice"}, {ID: 3, Username: "bob"}} {
		if ref == strconv.Itoa(u.ID) || ref == u.Username {
			return u, nil
		}
	}
	return client.User{}, client.ErrUnknownUser
}

func newPageEnv(t *testing.T) *pageEnv { return newPageEnvWith(t, fakeUsers{}) }

// newPageEnvWith resolves users with users (nil: ids only, unchecked);
// mod may set further page options.
func newPageEnvWith(t *testing.T, users admin.Users, mod ...func(*admin.PageOptions)) *pageEnv {
	return newPageEnvFlash(t, users, nil, mod...)
}

// newPageEnvFlash is newPageEnvWith keeping messages in flashes.
func newPageEnvFlash(t *testing.T, users admin.Users, flashes sessions.Store, mod ...func(*admin.PageOptions)) *pageEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &pageEnv{t: t, aud: audit.New(audit.Options{Recent: st}), sess: &fakeSessions{m: map[string]admin.SessionInfo{
		"h-laptop": {Handle: "h-laptop", UserID: "3", Username: "bob", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", ClientIP: "203.0.113.9"},
		"h-phone":  {Handle: "h-phone", UserID: "3", Username: "bob", UserAgent: "Mozilla/5.0 (iPhone) Safari/604.1", ClientIP: "198.51.100.20"},
	}}}
	e.ep, err = epoch.New(epoch.Options{Store: st, Auditor: e.aud})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	e.toks = &fakeTokens{list: []admin.AccessToken{
		{Attrs: accesstoken.Attrs{ID: aliceTok, OwnerID: "2", OwnerName: "alice", Name: "<script>alert(1)</script>", Scopes: []string{"dashboards:read"},
			Created: now, Expires: now.Add(24 * time.Hour)}, LastUsed: now, LastUsedIP: "198.51.100.7", Status: "active"},
		{Attrs: accesstoken.Attrs{ID: bobTok, OwnerID: "3", OwnerName: "bob", Name: "nightly import", Scopes: []string{"metadata:read", "charts:read"},
			CIDRs: []string{"10.0.0.0/8"}, Created: now.Add(-time.Hour), Expires: now.Add(48 * time.Hour)}, Status: "active"},
		{Attrs: accesstoken.Attrs{ID: oldTok, OwnerID: "3", OwnerName: "bob", Name: "old", Scopes: []string{"api:read"},
			Created: now.Add(-2 * time.Hour), Expires: now.Add(time.Hour), Revoked: now, RevokedBy: "user:3"}, Status: "revoked"},
	}}
	h, err := admin.New(admin.Options{
		Roles:       []string{"Admin"},
		RoleChecker: fakeRoles{},
		Epochs:      e.ep,
		Users:       users,
		Audit:       e.aud,
		Sessions:    e.sess,
		RequestInfo: func(*http.Request) (string, string) { return "req-1", "192.0.2.1" },
	})
	if err != nil {
		t.Fatal(err)
	}
	po := admin.PageOptions{AccessTokens: e.toks, ValidTokenID: validID, Directory: fakeDirectory{}, Flashes: flashes}
	for _, m := range mod {
		m(&po)
	}
	pg, err := h.Page(po)
	if err != nil {
		t.Fatal(err)
	}
	// As cmd mounts them: the longer API prefix wins over the page's.
	mux := http.NewServeMux()
	mux.Handle(admin.APIPrefix, h)
	mux.Handle("/-/admin", pg)
	mux.Handle(admin.PagePath, pg)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

type pageReply struct {
	*http.Response
	body string
}

// do sends method path as the user named by who ("" for nobody), with
// form as a urlencoded body when non-nil, and does not follow redirects.
func (e *pageEnv) do(method, path, who string, form url.Values, hdr ...string) pageReply {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if who != "" {
		req.AddCookie(&http.Cookie{Name: "who", Value: who})
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pageReply{resp, string(b)}
}

// post is a same-origin form post, as the admin's browser sends it.
func (e *pageEnv) post(path, who string, form url.Values, hdr ...string) pageReply {
	e.t.Helper()
	return e.do(http.MethodPost, path, who, form, append([]string{"Sec-Fetch-Site", "same-origin"}, hdr...)...)
}

// events returns the audit events named name, newest first.
func (e *pageEnv) events(name string) []audit.Event {
	e.t.Helper()
	evs, err := e.aud.Recent(bg, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.Event == name {
			out = append(out, ev)
		}
	}
	return out
}

func (e *pageEnv) lastEvent(name string) audit.Event {
	e.t.Helper()
	evs := e.events(name)
	if len(evs) == 0 {
		e.t.Fatalf("no %s event", name)
	}
	return evs[0]
}

func TestPageListsEveryOwnersTokens(t *testing.T) {
	e := newPageEnv(t)
	r := e.do(http.MethodGet, admin.PagePath, "admin", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Signed in as <strong>admin</strong>") {
		t.Fatalf("GET %s: %d", admin.PagePath, r.StatusCode)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, want := range []string{
		"alice", "bob", "nightly import", aliceTok, bobTok, oldTok, "metadata:read, charts:read", "from 10.0.0.0/8",
		"from 198.51.100.7", "by user:3", "<caption>Every user's access tokens", `<th scope="col">Owner</th>`,
		`<label for="user_id">`, `action="/-/admin/confirm"`, `name="ref"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Only active tokens can be revoked.
	if n := strings.Count(r.body, `/-/admin/confirm?action=token&amp;id=`); n != 2 {
		t.Errorf("%d revoke buttons, want 2 (the revoked token has none)", n)
	}
	if strings.Contains(tokenRow(t, r.body, oldTok), "action=token&amp;id=") {
		t.Error("a revoked token has a Revoke button")
	}
	if strings.Contains(r.body, "<script>alert(1)</script>") || !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("a token's name is not escaped")
	}
	if ev := e.lastEvent("admin.page.view"); ev.Actor != "user:1" || ev.Outcome != audit.OutcomeSuccess || ev.RequestID != "req-1" {
		t.Errorf("view audit %+v", ev)
	}
	// The bare path leads to the page.
	if r := e.do(http.MethodGet, "/-/admin", "admin", nil); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != admin.PagePath {
		t.Errorf("GET /-/admin: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
}

// The extension section appears only with the policy on, and escapes
// what Superset's list put in an id.
func TestPageListsExtensionVerdicts(t *testing.T) {
	if r := newPageEnv(t).do(http.MethodGet, admin.PagePath, "admin", nil); strings.Contains(r.body, `id="extensions"`) {
		t.Fatal("extension section without the policy")
	}
	e := newPageEnvWith(t, fakeUsers{}, func(o *admin.PageOptions) {
		o.Extensions = func() admin.Extensions {
			return admin.Extensions{AdvisoryError: "osv: advisory source unreadable", FailClosed: true, Verdicts: []admin.ExtensionVerdict{
				{ID: "acme.good", Version: "1.0.0", Source: "list", Allowed: true},
				{ID: "acme.<b>bad</b>", Version: "1.0.0", Source: "list", Reasons: []string{"policy:blocked", "advisory:GHSA-x"}},
			}}
		}
	})
	r := e.do(http.MethodGet, admin.PagePath, "admin", nil)
	for _, want := range []string{`<h2 id="extensions">Extensions</h2>`, "<strong>unavailable</strong> (osv: advisory source unreadable); extensions are refused",
		"acme.good@1.0.0", "acme.&lt;b&gt;bad&lt;/b&gt;@1.0.0", "policy:blocked, advisory:GHSA-x"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestPageRevokesAToken(t *testing.T) {
	e := newPageEnv(t)
	r := e.post("/-/admin/tokens/revoke", "admin", url.Values{"id": {bobTok}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/-/admin/?done=token&id="+bobTok {
		t.Fatalf("revoke: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if tok := e.toks.get(bobTok); tok.Status != "revoked" || tok.RevokedBy != "user:1" {
		t.Fatalf("after revoke: %+v", tok)
	}
	ev := e.lastEvent("admin.access_tokens.revoke")
	if ev.Actor != "user:1" || ev.Subject != "access_token:"+bobTok || ev.Outcome != audit.OutcomeSuccess || ev.IP != "192.0.2.1" {
		t.Fatalf("audit %+v", ev)
	}
	r = e.do(http.MethodGet, r.Header.Get("Location"), "admin", nil)
	if !strings.Contains(r.body, "Access token "+bobTok+" revoked.") {
		t.Error("no confirmation after the redirect")
	}
	// The confirmation is built from fixed words: a crafted link shows nothing.
	r = e.do(http.MethodGet, "/-/admin/?done=token&id=%3Cb%3Eyou+were+hacked", "admin", nil)
	if strings.Contains(r.body, "hacked") || strings.Contains(r.body, `class="done"`) {
		t.Error("a crafted ?done= put its own text on the page")
	}
}

func TestPageRevokesAUser(t *testing.T) {
	e := newPageEnv(t)
	r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"3"}, "reason": {"laptop stolen\u0007"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/-/admin/?done=user&id=3" {
		t.Fatalf("revoke user: %d %q %s", r.StatusCode, r.Header.Get("Location"), r.body)
	}
	if v, _, err := e.ep.Epoch(bg, "3"); err != nil || v == 0 {
		t.Fatalf("user 3's epoch: %d %v", v, err)
	}
	ev := e.lastEvent("admin.user.revoke")
	if ev.Actor != "user:1" || ev.Subject != "user:3" || ev.Outcome != audit.OutcomeSuccess || ev.Note != "laptop stolen" {
		t.Fatalf("admin audit %+v", ev)
	}
	if ev := e.lastEvent("epoch.stamp"); ev.Actor != "user:1" || ev.Reason != epoch.TriggerAdmin || ev.Subject != "user:3" {
		t.Fatalf("stamp audit %+v", ev)
	}
	r = e.do(http.MethodGet, r.Header.Get("Location"), "admin", nil)
	for _, want := range []string{"User 3 revoked", "<caption>The most recent revocations (up to 20)", "user:3", "laptop stolen"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page after revoking lacks %q", want)
		}
	}
}

func TestPageRefusesNonAdmins(t *testing.T) {
	e := newPageEnv(t)
	// Not signed in: to the login page, back here afterwards.
	for _, c := range []struct {
		method, path string
		form         url.Values
	}{
		{http.MethodGet, admin.PagePath, nil},
		{http.MethodPost, "/-/admin/tokens/revoke", url.Values{"id": {aliceTok}}},
	} {
		r := e.do(c.method, c.path, "", c.form)
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || loc == nil || loc.Path != "/login/" || loc.Query().Get("next") != admin.PagePath {
			t.Errorf("anonymous %s %s: %d %q", c.method, c.path, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if ev := e.lastEvent("admin.access_tokens.revoke"); ev.Actor != "anonymous" || ev.Outcome != audit.OutcomeDenied || ev.Reason != "no_credential" {
		t.Errorf("anonymous audit %+v", ev)
	}

	// Signed in without an admin role: 403, nothing revoked.
	if r := e.do(http.MethodGet, admin.PagePath, "alice", nil); r.StatusCode != http.StatusForbidden || strings.Contains(r.body, bobTok) {
		t.Errorf("alice GET: %d", r.StatusCode)
	}
	if r := e.post("/-/admin/tokens/revoke", "alice", url.Values{"id": {bobTok}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("alice revoke: %d", r.StatusCode)
	}
	if r := e.post("/-/admin/users/revoke", "alice", url.Values{"user_id": {"3"}, "reason": {"x"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("alice revoke user: %d", r.StatusCode)
	}
	if tok := e.toks.get(bobTok); tok.Status != "active" {
		t.Fatal("a non-admin revoked a token")
	}
	if v, _, _ := e.ep.Epoch(bg, "3"); v != 0 {
		t.Fatal("a non-admin revoked a user")
	}
	if ev := e.lastEvent("admin.user.revoke"); ev.Actor != "user:2" || ev.Outcome != audit.OutcomeDenied || ev.Reason != "not_admin" {
		t.Errorf("non-admin audit %+v", ev)
	}

	// The API keeps its own prefix and its own answers.
	r := e.do(http.MethodGet, admin.APIPrefix+"status", "", nil)
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Content-Type"), "json") {
		t.Errorf("API without credential: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
}

func TestPageRefusesCrossOriginPosts(t *testing.T) {
	e := newPageEnv(t)
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
	} {
		r := e.do(http.MethodPost, "/-/admin/tokens/revoke", "admin", url.Values{"id": {aliceTok}}, hdr...)
		if r.StatusCode != http.StatusForbidden || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("token revoke with %s: %d", hdr[0], r.StatusCode)
		}
		r = e.do(http.MethodPost, "/-/admin/users/revoke", "admin", url.Values{"user_id": {"3"}, "reason": {"x"}}, hdr...)
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("user revoke with %s: %d", hdr[0], r.StatusCode)
		}
	}
	if tok := e.toks.get(aliceTok); tok.Status != "active" {
		t.Fatal("a cross-site post revoked a token")
	}
	if v, _, _ := e.ep.Epoch(bg, "3"); v != 0 {
		t.Fatal("a cross-site post revoked a user")
	}
	for _, name := range []string{"admin.access_tokens.revoke", "admin.user.revoke"} {
		evs := e.events(name)
		if len(evs) != 2 {
			t.Fatalf("%s: %d events, want 2", name, len(evs))
		}
		for _, ev := range evs {
			if ev.Outcome != audit.OutcomeDenied || ev.Reason != "cross_origin" || ev.Actor != "anonymous" {
				t.Errorf("cross-origin audit %+v", ev)
			}
		}
	}
}

func TestPageBadInput(t *testing.T) {
	e := newPageEnv(t)
	for _, c := range []struct {
		name, path string
		form       url.Values
		code       int
		want       string
		reason     string
	}{
		{"malformed token id", "/-/admin/tokens/revoke", url.Values{"id": {"../../etc"}}, 400, "not an access-token id", "bad token id"},
		{"no token id", "/-/admin/tokens/revoke", url.Values{}, 400, "not an access-token id", "bad token id"},
		{"unknown token", "/-/admin/tokens/revoke", url.Values{"id": {unknownTok}}, 404, "No access token has the id " + unknownTok, "not_found"},
		{"malformed user id", "/-/admin/users/revoke", url.Values{"user_id": {"3\tx"}, "reason": {"x"}}, 400, "neither a Superset user id", admin.ReasonBadUserRef},
		{"global is no user", "/-/admin/users/revoke", url.Values{"user_id": {epoch.GlobalSubject}, "reason": {"x"}}, 404, "Superset has no user with the username &#34;*&#34;", admin.ReasonUnknownUser},
		{"unknown user id", "/-/admin/users/revoke", url.Values{"user_id": {"99"}, "reason": {"x"}}, 404, "Superset has no user with the id &#34;99&#34;", admin.ReasonUnknownUser},
		{"leading zero", "/-/admin/users/revoke", url.Values{"user_id": {"03"}, "reason": {"x"}}, 404, "no user with the username &#34;03&#34;", admin.ReasonUnknownUser},
		{"no reason", "/-/admin/users/revoke", url.Values{"user_id": {"3"}, "reason": {" \u0007 "}}, 400, "Give a reason", "reason required"},
	} {
		r := e.post(c.path, "admin", c.form)
		if r.StatusCode != c.code || !strings.Contains(r.body, c.want) || !strings.Contains(r.body, `role="alert"`) {
			t.Errorf("%s: %d, message shown: %v", c.name, r.StatusCode, strings.Contains(r.body, c.want))
		}
		ev := e.events(map[string]string{"/-/admin/tokens/revoke": "admin.access_tokens.revoke", "/-/admin/users/revoke": "admin.user.revoke"}[c.path])[0]
		if ev.Outcome != audit.OutcomeFailure || ev.Reason != c.reason || ev.Actor != "user:1" {
			t.Errorf("%s: audit %+v", c.name, ev)
		}
	}
	if v, _, _ := e.ep.Epoch(bg, "3"); v != 0 {
		t.Fatal("a refused form revoked user 3")
	}
	// The name typed is kept (escaped) for another try; the reason is
	// asked again on the confirmation page, never echoed raw.
	r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"3\"><b>"}, "reason": {"<i>why</i>"}})
	if r.StatusCode != 404 || !strings.Contains(r.body, `value="3&#34;&gt;&lt;b&gt;"`) || strings.Contains(r.body, "<i>why</i>") {
		t.Errorf("form not kept or not escaped: %d", r.StatusCode)
	}
	// Wrong methods and paths.
	if r := e.do(http.MethodGet, "/-/admin/tokens/revoke", "admin", nil); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET on a form action: %d %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := e.post(admin.PagePath, "admin", url.Values{}); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST on the page: %d", r.StatusCode)
	}
	if r := e.do(http.MethodGet, "/-/admin/nothing-here", "admin", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.StatusCode)
	}
	big := url.Values{"id": {strings.Repeat("a", 128<<10)}}
	if r := e.post("/-/admin/tokens/revoke", "admin", big); r.StatusCode != http.StatusBadRequest {
		t.Errorf("oversized form: %d", r.StatusCode)
	}
}

func TestPageStoreUnavailable(t *testing.T) {
	e := newPageEnv(t)
	// The identity cannot be established: 503, not a login redirect.
	r := e.do(http.MethodGet, admin.PagePath, "down", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("identity down: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if ev := e.lastEvent("admin.page.view"); ev.Outcome != audit.OutcomeDenied || ev.Reason != "identity_unavailable" {
		t.Errorf("identity down audit %+v", ev)
	}
	e.toks.setDown(true)
	r = e.do(http.MethodGet, admin.PagePath, "admin", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" {
		t.Errorf("token store down, GET: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	r = e.post("/-/admin/tokens/revoke", "admin", url.Values{"id": {aliceTok}})
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "5" {
		t.Errorf("token store down, revoke: %d", r.StatusCode)
	}
	if ev := e.lastEvent("admin.access_tokens.revoke"); ev.Outcome != audit.OutcomeFailure || ev.Reason != "store_unavailable" || ev.Actor != "user:1" {
		t.Errorf("store down audit %+v", ev)
	}
}

func TestPageOptions(t *testing.T) {
	e := newPageEnv(t)
	h, err := admin.New(admin.Options{Epochs: e.ep, Audit: e.aud, RoleChecker: fakeRoles{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Page(admin.PageOptions{ValidTokenID: validID}); !errors.Is(err, admin.ErrConfig) {
		t.Errorf("without AccessTokens: %v", err)
	}
	tokensOnly, err := admin.New(admin.Options{Epochs: e.ep, Audit: e.aud})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokensOnly.Page(admin.PageOptions{AccessTokens: e.toks, ValidTokenID: validID}); !errors.Is(err, admin.ErrConfig) {
		t.Errorf("without a RoleChecker: %v", err)
	}
}

// TestPageUserNamedByUsername: "alice" typed in the user field. Before,
// the page said "User alice revoked", recorded user:alice and revoked
// nobody. Without a way to ask Superset it is refused with 400; with one,
// alice (user 2) is revoked under her id.
func TestPageUserNamedByUsername(t *testing.T) {
	t.Run("no resolver", func(t *testing.T) {
		e := newPageEnvWith(t, nil)
		r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"alice"}, "reason": {"offboarding"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "is not a Superset user id (a plain number)") ||
			strings.Contains(r.body, "revoked:") {
			t.Fatalf("alice typed as an id: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		ev := e.events("admin.user.revoke")[0]
		if ev.Outcome != audit.OutcomeFailure || ev.Subject != "" || ev.Reason != admin.ReasonBadUserRef {
			t.Errorf("audit %+v", ev)
		}
		// A plain id still works without a resolver.
		if r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"3"}, "reason": {"x"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("id 3: %d", r.StatusCode)
		}
	})
	t.Run("resolved", func(t *testing.T) {
		e := newPageEnv(t)
		r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"alice"}, "reason": {"offboarding"}})
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != admin.PagePath+"?done=user&id=2" {
			t.Fatalf("revoke alice: %d %q", r.StatusCode, r.Header.Get("Location"))
		}
		if v, _, _ := e.ep.Epoch(bg, "2"); v == 0 {
			t.Fatal("alice (user 2) not revoked")
		}
		ev := e.events("admin.user.revoke")[0]
		if ev.Outcome != audit.OutcomeSuccess || ev.Subject != "user:2" || ev.Details["username"] != "alice" {
			t.Errorf("audit %+v", ev)
		}
		page := e.do(http.MethodGet, admin.PagePath+"?done=user&id=2", "admin", nil)
		if !strings.Contains(page.body, "User 2 revoked") {
			t.Error("no confirmation")
		}
		if page := e.do(http.MethodGet, admin.PagePath+"?done=user&id=alice", "admin", nil); strings.Contains(page.body, "alice revoked") {
			t.Error("a crafted link confirms a revocation of a non-id")
		}
	})
}

// TestPageShowsWhatTheGatewayEnforces: after bob (user 3) is revoked, his
// token created before is refused by the gateway; the page showed it
// "active" with a Revoke button. It must show it revoked by his epoch.
func TestPageShowsWhatTheGatewayEnforces(t *testing.T) {
	e := newPageEnv(t)
	if r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"3"}, "reason": {"laptop stolen"}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke bob: %d", r.StatusCode)
	}
	page := e.do(http.MethodGet, admin.PagePath, "admin", nil)
	row := tokenRow(t, page.body, bobTok)
	if strings.Contains(row, "action=token&amp;id=") || !strings.Contains(row, "revocation of user:3") || !strings.Contains(row, `class="revoked"`) {
		t.Errorf("bob's token after his revocation:\n%s", row)
	}
	if row := tokenRow(t, page.body, aliceTok); !strings.Contains(row, "action=token&amp;id=") {
		t.Errorf("alice's token lost its Revoke button:\n%s", row)
	}
}

// tokenRow is the table row of the token id.
func tokenRow(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, id)
	if i < 0 {
		t.Fatalf("token %s not listed", id)
	}
	start := strings.LastIndex(body[:i], "<tr")
	end := strings.Index(body[i:], "</tr>")
	return body[start : i+end]
}

// TestPageUserViewWithoutIds (issue 19): the admin finds bob by part of
// his name, sees his sessions by device and place and only his tokens,
// and ends his sessions through a confirmation step: the GET that asks
// changes nothing, the POST it leads to ends them, says so and is
// audited; the same POST from another site ends nothing.
func TestPageUserViewWithoutIds(t *testing.T) {
	e := newPageEnv(t)
	r := e.do(http.MethodGet, admin.PagePath+"?q=bo", "admin", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, `<a href="/-/admin/users/3">bob</a>`) || strings.Contains(r.body, `<a href="/-/admin/users/2">alice</a></th><td></td>`) {
		t.Fatalf("search for bo: %d\n%s", r.StatusCode, r.body)
	}
	r = e.do(http.MethodGet, "/-/admin/users/3", "admin", nil)
	for _, want := range []string{"<h1>bob</h1>", "Firefox on Linux", "203.0.113.9", "Safari on iOS", "nightly import",
		"action=sessions&amp;user_id=3&amp;name=bob", "action=user&amp;user_id=3&amp;name=bob"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("bob's page lacks %q", want)
		}
	}
	if strings.Contains(r.body, aliceTok) {
		t.Error("bob's page lists alice's token")
	}
	confirm := e.do(http.MethodGet, "/-/admin/confirm?action=sessions&user_id=3&name=bob", "admin", nil)
	if confirm.StatusCode != http.StatusOK || !strings.Contains(confirm.body, "End every session of bob?") ||
		!strings.Contains(confirm.body, `action="/-/admin/sessions/end-all"`) {
		t.Fatalf("confirm: %d\n%s", confirm.StatusCode, confirm.body)
	}
	if n := len(e.sess.m); n != 2 {
		t.Fatalf("the confirmation step ended sessions: %d left", n)
	}
	form := url.Values{"user_id": {"3"}, "back": {"3"}}
	if r := e.do(http.MethodPost, "/-/admin/sessions/end-all", "admin", form, "Sec-Fetch-Site", "cross-site"); r.StatusCode != http.StatusForbidden || len(e.sess.m) != 2 {
		t.Fatalf("cross-site end-all: %d, %d sessions left", r.StatusCode, len(e.sess.m))
	}
	r = e.post("/-/admin/sessions/end-all", "admin", form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/-/admin/users/3?done=sessions&n=2" || len(e.sess.m) != 0 {
		t.Fatalf("end-all: %d %q, %d left", r.StatusCode, r.Header.Get("Location"), len(e.sess.m))
	}
	if ev := e.lastEvent("admin.session.end"); ev.Subject != "user:3" || ev.Actor != "user:1" || ev.Outcome != audit.OutcomeSuccess {
		t.Errorf("audit %+v", ev)
	}
	if r := e.do(http.MethodGet, "/-/admin/users/3?done=sessions&n=2", "admin", nil); !strings.Contains(r.body, "2 sessions ended.") {
		t.Error("no message after ending the sessions")
	}
	for _, bad := range []string{"?action=nope", "?action=session&user_id=3", "?action=guests&dashboard=x", "?action=token&id=zz"} {
		if r := e.do(http.MethodGet, "/-/admin/confirm"+bad, "admin", nil); r.StatusCode != http.StatusBadRequest {
			t.Errorf("confirm%s: %d, want 400", bad, r.StatusCode)
		}
	}
	if r := e.do(http.MethodGet, "/-/admin/confirm?action=sessions&user_id=3", "alice", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a non-admin's confirmation page: %d", r.StatusCode)
	}
}

// TestPageFlashMessage: with a flash store the message after an action
// rides in a signed, encrypted, HttpOnly cookie scoped to the admin page,
// shown once; the redirect carries nothing; a cookie made with other keys
// (another deployment, or forged) shows nothing.
func TestPageFlashMessage(t *testing.T) {
	keys := [][2][]byte{{[]byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")}}
	st, err := admin.NewFlashStore(keys, true)
	if err != nil {
		t.Fatal(err)
	}
	e := newPageEnvFlash(t, fakeUsers{}, st)
	r := e.post("/-/admin/sessions/end-all", "admin", url.Values{"user_id": {"3"}, "back": {"3"}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/-/admin/users/3" {
		t.Fatalf("end-all: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == admin.FlashCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.Path != admin.PagePath || ck.SameSite != http.SameSiteLaxMode || strings.Contains(ck.Value, "ended") {
		t.Fatalf("flash cookie %+v", ck)
	}
	show := func(c *http.Cookie) pageReply {
		return e.do(http.MethodGet, "/-/admin/users/3", "admin", nil, "Cookie", "who=admin; "+c.Name+"="+c.Value)
	}
	if p := show(ck); !strings.Contains(p.body, "2 sessions ended.") {
		t.Fatal("the flash message is not shown")
	} else if c := p.Header.Get("Set-Cookie"); !strings.Contains(c, admin.FlashCookie+"=;") && !strings.Contains(c, "Max-Age=0") {
		t.Errorf("the flash is not cleared: %q", c)
	}
	other, _ := admin.NewFlashStore([][2][]byte{{[]byte("another hash key, 32 bytes long!"), []byte("another block key 32 bytes long!")}}, true)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/-/admin/", nil)
	s, _ := other.Get(req, admin.FlashCookie)
	s.AddFlash("<b>forged</b>")
	if err := s.Save(req, rec); err != nil {
		t.Fatal(err)
	}
	if p := show(rec.Result().Cookies()[0]); p.StatusCode != http.StatusOK || strings.Contains(p.body, "forged") {
		t.Errorf("a cookie under other keys: %d, shown: %v", p.StatusCode, strings.Contains(p.body, "forged"))
	}
	if _, err := admin.NewFlashStore(nil, true); err == nil {
		t.Error("a flash store without keys")
	}
}

// TestPageRevokeByNameIsConfirmed: the revoke-a-user form on the list
// only leads to the confirmation page (a GET that stamps nothing), which
// asks for the reason and posts the typed name to the revoke action.
func TestPageRevokeByNameIsConfirmed(t *testing.T) {
	e := newPageEnv(t)
	r := e.do(http.MethodGet, "/-/admin/confirm?action=user&ref=bob", "admin", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Revoke bob?") || !strings.Contains(r.body, `action="/-/admin/users/revoke"`) ||
		!strings.Contains(r.body, `name="user_id" value="bob"`) || !strings.Contains(r.body, `<label for="reason">`) {
		t.Fatalf("confirm by name: %d\n%s", r.StatusCode, r.body)
	}
	if revs, err := e.ep.Revocations(bg, 10); err != nil || len(revs) != 0 {
		t.Fatalf("the confirmation page revoked: %v %v", revs, err)
	}
	if r := e.do(http.MethodGet, "/-/admin/confirm?action=user&ref=%20", "admin", nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("confirm with no name: %d", r.StatusCode)
	}
}
