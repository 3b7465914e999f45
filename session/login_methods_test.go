package session_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/internal/testkit"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// auditRec is testkit.Events with lookups by event name, oldest first.
type auditRec struct{ testkit.Events }

func (a *auditRec) names() []string {
	var out []string
	for _, e := range a.All() {
		out = append(out, e.Event)
	}
	return out
}

func (a *auditRec) find(name string) (audit.Event, bool) {
	for _, e := range a.All() {
		if e.Event == name {
			return e, true
		}
	}
	return audit.Event{}, false
}

// withOAuth puts an OAuth callback in front of the fake Superset: it logs
// the browser in as user 3 the way FAB's AuthOAuthView does, by adding
// _user_id to the existing Flask session and re-issuing the cookie.
func withOAuth(t *testing.T, clk *clock) *superset {
	t.Helper()
	s := &superset{seen: &upstreamSeen{}}
	s.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now, Observe: s.seen.observe})
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth-authorized/idp" {
			s.fake.ServeHTTP(w, r)
			return
		}
		s.seen.observe(r)
		sess := flaskcookie.Session{}
		if c, err := r.Cookie("session"); err == nil {
			if got, err := flaskcookie.Decode(c.Value, secretKey, 0, clk.Now()); err == nil {
				sess = got
			}
		}
		sess["_user_id"] = "3"
		sess["_fresh"] = true
		v, err := flaskcookie.Encode(sess, secretKey, clk.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: v, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/", http.StatusFound)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func TestOAuthCallbackRotatesAndAudits(t *testing.T) {
	clk := newClock()
	ss := withOAuth(t, clk)
	rec := &auditRec{}
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.Audit = rec }})
	planted, _ := g.anonymous()
	r := g.do("GET", "/oauth-authorized/idp?code=c&state=s", g.cookieHeader(planted), nil)
	c, ok := r.gwCookie(g.vault.CookieName())
	if r.StatusCode != http.StatusFound || !ok || c == "" || c == planted {
		t.Fatalf("callback: %d, cookie %q", r.StatusCode, c)
	}
	if g.me(c) != http.StatusOK || g.me(planted) != http.StatusUnauthorized {
		t.Fatal("OAuth login did not rotate")
	}
	list, err := g.vault.ListUserSessions(context.Background(), "3")
	if err != nil || len(list) != 1 || list[0].AuthMethod != "oauth:idp" || list[0].Username != "bob" {
		t.Fatalf("sessions of user 3: %+v %v", list, err)
	}
	ev, ok := rec.find("login.success")
	if !ok || ev.Actor != "user:3" || ev.Details["method"] != "oauth:idp" || ev.IP != "127.0.0.1" || ev.RequestID == "" {
		t.Fatalf("login.success: %+v (events %v)", ev, rec.names())
	}
	if _, ok := rec.find("session.rotated"); !ok {
		t.Fatalf("no session.rotated in %v", rec.names())
	}
	// The provider is in the path, so it is no label: "oauth" alone.
	if n := g.obs.get("login:oauth:success"); n != 1 {
		t.Fatalf("oauth logins counted %d, want 1 (method label without the provider)", n)
	}
	g.do("GET", "/logout/", g.cookieHeader(c), nil)
	if _, ok := rec.find("session.logout"); !ok {
		t.Fatalf("no session.logout in %v", rec.names())
	}
}

// With server-side Superset sessions and no way to ask who logged in, a
// login is still rotated: identity unknown counts as changed.
func TestLoginRotatesWithoutWhoAmI(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, true)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.WhoAmI = nil }})
	planted, csrf := g.anonymous()
	c := g.login(planted, csrf, "alice", fakesuperset.AlicePassword)
	if c == planted || g.me(c) != http.StatusOK || g.me(planted) != http.StatusUnauthorized {
		t.Fatal("server-side login without WhoAmI was not rotated")
	}
}

func TestFailedLoginAudited(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	rec := &auditRec{}
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.Audit = rec }})
	a, csrf := g.anonymous()
	g.do("POST", "/login/", g.cookieHeader(a), map[string][]string{"username": {"alice"}, "password": {"nope"}, "csrf_token": {csrf}})
	if !slices.Contains(rec.names(), "login.failure") || slices.Contains(rec.names(), "login.success") {
		t.Fatalf("events %v", rec.names())
	}
	if g.obs.get("login:form:failure") != 1 || g.obs.get("login:form:success") != 0 {
		t.Fatalf("logins counted: failure %d, success %d; want 1 and 0", g.obs.get("login:form:failure"), g.obs.get("login:form:success"))
	}
	if g.obs.get("rotated") != 0 {
		t.Fatal("a failed login rotated the session")
	}
}
