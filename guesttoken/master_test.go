package guesttoken_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// masterEnv is the gateway in front of the fake Superset; master selects
// Superset master's behaviour (unreleased; fakesuperset/master.go).
type masterEnv struct {
	*env
	fake    *fakesuperset.Fake
	reached func() []string
	client  *http.Client
}

func newMasterEnv(t *testing.T, master bool, res guesttoken.Resolver) *masterEnv {
	t.Helper()
	clock := newClock()
	var reached []string
	fake := fakesuperset.New(fakesuperset.Options{
		SecretKey: "fake-superset-secret-key-0123456789abcdef", GuestSecret: testSecret, GuestAudience: testAudience,
		Now: clock.Now, Master: master, Observe: func(r *http.Request) { reached = append(reached, r.Method+" "+r.URL.Path) },
	})
	if res == nil {
		res = fakeResolver{fake.Dashboard()}
	}
	e := newEnv(t, newBolt(t), fake.ServeHTTP, func(o *guesttoken.Options, ro *guesttoken.RevokerOptions) {
		ro.Resolver, ro.Now, o.Now = res, clock.Now, clock.Now
		ro.Auditor, ro.Caller = o.Auditor, o.Caller
	})
	e.clock = clock
	jar, _ := cookiejar.New(nil)
	return &masterEnv{env: e, fake: fake, reached: func() []string { return slices.Clone(reached) }, client: &http.Client{Jar: jar}}
}

func (m *masterEnv) call(t *testing.T, method, path, body string, h map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, m.gw.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v, resp.Header
}

// api signs user in with the API and returns the headers a script sends
// (Bearer and Superset's CSRF token).
func (m *masterEnv) api(t *testing.T, user, password string) map[string]string {
	t.Helper()
	_, login, _ := m.call(t, "POST", "/api/v1/security/login", `{"username":"`+user+`","password":"`+password+`","provider":"db"}`, nil)
	h := map[string]string{"Authorization": "Bearer " + login["access_token"].(string), "X-Test-Actor": "user:" + user}
	_, csrf, _ := m.call(t, "GET", "/api/v1/security/csrf_token/", "", h)
	h["X-CSRFToken"] = csrf["result"].(string)
	return h
}

func (m *masterEnv) issue(t *testing.T, admin map[string]string, id string) string {
	t.Helper()
	status, v, _ := m.call(t, "POST", guesttoken.IssuePath, `{"user":{"username":"guest"},"resources":[{"type":"dashboard","id":"`+id+`"}],"rls":[]}`, admin)
	if status != 200 {
		t.Fatalf("guest_token: %d %v", status, v)
	}
	return v["token"].(string)
}

// TestUpstreamRevokeStampsEveryAlias (Superset master, unreleased, against
// the fake): POST /api/v1/dashboard/<slug>/embedded/revoke answered 2xx by
// Superset stamps the gateway's revoked_before under the slug, the id and
// the embed uuid, so tokens naming the dashboard any way are refused by the
// gateway itself. Refusals by Superset stamp nothing.
func TestUpstreamRevokeStampsEveryAlias(t *testing.T) {
	m := newMasterEnv(t, true, nil)
	d := m.fake.Dashboard()
	admin := m.api(t, "admin", fakesuperset.AdminPassword)
	alice := m.api(t, "alice", fakesuperset.AlicePassword)
	byUUID, byID, bySlug := m.issue(t, admin, d.EmbedUUID), m.issue(t, admin, strconv.Itoa(d.ID)), m.issue(t, admin, d.Slug)
	dash := "/api/v1/dashboard/" + strconv.Itoa(d.ID)
	for _, tok := range []string{byUUID, byID} {
		if status, v, _ := m.call(t, "GET", dash, "", map[string]string{"X-GuestToken": tok}); status != 200 {
			t.Fatalf("guest read before the revoke: %d %v", status, v)
		}
	}

	// Superset refuses: a non-admin (403), an unknown dashboard (404).
	for _, c := range []struct {
		ref  string
		h    map[string]string
		want int
	}{{d.Slug, alice, 403}, {"999", admin, 404}, {"no-such-slug", admin, 404}} {
		if status, v, _ := m.call(t, "POST", "/api/v1/dashboard/"+c.ref+"/embedded/revoke", "", c.h); status != c.want {
			t.Fatalf("revoke %s: %d %v, want %d", c.ref, status, v, c.want)
		}
	}
	if list, err := m.rev.List(ctxT(t)); err != nil || len(list) != 0 {
		t.Fatalf("a revoke Superset refused stamped: %v %v", list, err)
	}
	if ev := revokeEvents(m); len(ev) != 0 {
		t.Fatalf("a revoke Superset refused was audited: %+v", ev)
	}

	m.clock.Advance(time.Second)
	if status, v, _ := m.call(t, "POST", "/api/v1/dashboard/"+d.Slug+"/embedded/revoke", "", admin); status != 200 {
		t.Fatalf("revoke by slug: %d %v", status, v)
	}
	list, err := m.rev.List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var aliases []string
	for _, r := range list {
		aliases = append(aliases, r.Aliases...)
	}
	slices.Sort(aliases)
	want := []string{strconv.Itoa(d.ID), d.EmbedUUID, d.Slug}
	slices.Sort(want)
	if !slices.Equal(aliases, want) {
		t.Fatalf("stamped aliases %v, want %v", aliases, want)
	}
	if ev := revokeEvents(m); len(ev) != 1 || ev[0].Subject != "dashboard:"+d.Slug || ev[0].Outcome != "success" ||
		ev[0].Actor != "user:admin" || ev[0].RequestID == "" || ev[0].Details["source"] != "superset" {
		t.Fatalf("audit events %+v", ev)
	}
	n := len(m.reached())
	for name, tok := range map[string]string{"uuid": byUUID, "id": byID, "slug": bySlug} {
		if status, v, _ := m.call(t, "GET", dash, "", map[string]string{"X-GuestToken": tok}); status != 401 || v["msg"] == nil {
			t.Errorf("token naming the %s after the revoke: %d %v", name, status, v)
		}
	}
	if got := m.reached(); len(got) != n {
		t.Errorf("revoked tokens reached Superset: %v", got[n:])
	}
	m.clock.Advance(time.Second)
	if status, _, _ := m.call(t, "GET", dash, "", map[string]string{"X-GuestToken": m.issue(t, admin, d.EmbedUUID)}); status != 200 {
		t.Errorf("token issued after the revoke: %d (%s)", status, m.obs.lastReason())
	}
}

// TestUpstreamRevokeAbsentOn61: Superset 6.1.0 has no such route (404);
// nothing is stamped.
func TestUpstreamRevokeAbsentOn61(t *testing.T) {
	m := newMasterEnv(t, false, nil)
	admin := m.api(t, "admin", fakesuperset.AdminPassword)
	if status, v, _ := m.call(t, "POST", "/api/v1/dashboard/1/embedded/revoke", "", admin); status != 404 {
		t.Fatalf("6.1 revoke: %d %v, want 404", status, v)
	}
	if list, err := m.rev.List(ctxT(t)); err != nil || len(list) != 0 {
		t.Fatalf("a 404 stamped: %v %v", list, err)
	}
}

// TestUpstreamRevokeUnresolvedAnswers503: Superset revoked, but the
// gateway cannot resolve the other aliases: the reference is stamped and
// the client is told to retry (503, Retry-After).
func TestUpstreamRevokeUnresolvedAnswers503(t *testing.T) {
	m := newMasterEnv(t, true, fakeResolver{fakesuperset.Dashboard{ID: 42, Slug: "elsewhere", EmbedUUID: "00000000-0000-0000-0000-000000000000"}})
	admin := m.api(t, "admin", fakesuperset.AdminPassword)
	status, _, h := m.call(t, "POST", "/api/v1/dashboard/1/embedded/revoke", "", admin)
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("unresolved revoke: %d (Retry-After %q), want 503", status, h.Get("Retry-After"))
	}
	list, err := m.rev.List(ctxT(t))
	if err != nil || len(list) != 1 || !slices.Equal(list[0].Aliases, []string{"1"}) {
		t.Fatalf("stamps %v %v, want the reference alone", list, err)
	}
	if ev := revokeEvents(m); len(ev) != 1 || ev[0].Outcome != "failure" || ev[0].Reason != "not_every_alias" {
		t.Fatalf("audit events %+v", ev)
	}
}

func revokeEvents(m *masterEnv) []guesttoken.AuditEvent {
	var out []guesttoken.AuditEvent
	for _, ev := range m.aud.all() {
		if ev.Event == "guest_token.revoke" {
			out = append(out, ev)
		}
	}
	return out
}

// TestRevClaimAccepted: Superset master mints guest tokens with a "rev"
// claim (its global revocation version); the gateway accepts them and
// leaves the version to Superset.
func TestRevClaimAccepted(t *testing.T) {
	m := newMasterEnv(t, true, nil)
	admin := m.api(t, "admin", fakesuperset.AdminPassword)
	tok := m.issue(t, admin, m.fake.Dashboard().EmbedUUID)
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if _, ok := claims["rev"]; !ok {
		t.Fatalf("master's token carries no rev claim: %s", payload)
	}
	if status, v, _ := m.call(t, "GET", "/api/v1/dashboard/1", "", map[string]string{"X-GuestToken": tok}); status != 200 {
		t.Fatalf("token with rev: %d %v (%s)", status, v, m.obs.lastReason())
	}
	// A rev of any JSON type is Superset's business, not the gateway's.
	c := validClaims(m.clock.Now())
	c["rev"] = "not-a-number"
	if status, v, _ := m.call(t, "GET", "/api/v1/dashboard/1", "", map[string]string{"X-GuestToken": signRaw(t, testSecret, c)}); status == 401 {
		t.Fatalf("gateway refused a token for its rev claim: %d %v (%s)", status, v, m.obs.lastReason())
	}
}
