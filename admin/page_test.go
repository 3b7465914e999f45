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
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "gw.db"), bolt.Options{SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &pageEnv{t: t, aud: audit.New(audit.Options{Recent: st})}
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
		RequestInfo: func(*http.Request) (string, string) { return "req-1", "192.0.2.1" },
	})
	if err != nil {
		t.Fatal(err)
	}
	po := admin.PageOptions{AccessTokens: e.toks, ValidTokenID: validID}
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
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "Signed in as admin") {
		t.Fatalf("GET %s: %d", admin.PagePath, r.StatusCode)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	for _, want := range []string{
		"alice", "bob", "nightly import", aliceTok, bobTok, oldTok, "metadata:read, charts:read", "from 10.0.0.0/8",
		"from 198.51.100.7", "by user:3", "<caption>Every user's access tokens", `<th scope="col">Owner</th>`,
		`<label for="user_id">`, `<label for="reason">`, `action="/-/admin/users/revoke"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Only active tokens can be revoked.
	if n := strings.Count(r.body, `action="/-/admin/tokens/revoke"`); n != 2 {
		t.Errorf("%d revoke forms, want 2 (the revoked token has none)", n)
	}
	if strings.Contains(r.body, oldTok+`"><button`) {
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
	// What was typed is kept (escaped) for another try.
	r := e.post("/-/admin/users/revoke", "admin", url.Values{"user_id": {"3\"><b>"}, "reason": {"<i>why</i>"}})
	if r.StatusCode != 404 || !strings.Contains(r.body, `value="3&#34;&gt;&lt;b&gt;"`) || !strings.Contains(r.body, "&lt;i&gt;why&lt;/i&gt;") {
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
	if strings.Contains(row, "<button") || !strings.Contains(row, "revocation of user:3") || !strings.Contains(row, `class="revoked"`) {
		t.Errorf("bob's token after his revocation:\n%s", row)
	}
	if row := tokenRow(t, page.body, aliceTok); !strings.Contains(row, "<button") {
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
