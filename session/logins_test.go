package session_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// Issue 12: a sign-in is recognised by what Superset did, whatever the
// route; the gateway pages check the epoch; a login's time is when it was
// sent.

// startWrapped is a fake Superset behind wrap, which may answer a request
// differently from how the gateway reads it (a sign-in on a path the
// gateway does not know as one, FAB's REMOTE_USER sign-in on a GET).
func startWrapped(t *testing.T, clk *clock, serverSide bool, wrap func(fake http.Handler) http.Handler) *superset {
	t.Helper()
	s := &superset{seen: &upstreamSeen{}}
	s.fake = fakesuperset.New(fakesuperset.Options{SecretKey: secretKey, Now: clk.Now,
		ServerSideSessions: serverSide, Observe: s.seen.observe})
	s.srv = httptest.NewServer(wrap(s.fake))
	t.Cleanup(s.srv.Close)
	return s
}

// prefixRouted is gunicorn with SCRIPT_NAME /x: Superset routes /x/… as
// /…, so POST /x/login/ is its login form.
func prefixRouted(fake http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/x/"); ok {
			r.URL.Path = "/" + p
		}
		fake.ServeHTTP(w, r)
	})
}

// remoteUser is FAB's AuthRemoteUserView: GET /login/ with X-Remote-User
// signs that user into the caller's Superset session (which, server-side,
// keeps its sid). It drives the fake's own form login underneath.
func remoteUser(fake http.Handler) http.Handler {
	passwords := map[string]string{"alice": fakesuperset.AlicePassword, "bob": fakesuperset.BobPassword}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-Remote-User")
		if r.Method != http.MethodGet || r.URL.Path != "/login/" || user == "" {
			fake.ServeHTTP(w, r)
			return
		}
		cookies := map[string]string{}
		for _, c := range r.Cookies() {
			cookies[c.Name] = c.Value
		}
		header := func() string {
			var parts []string
			for k, v := range cookies {
				parts = append(parts, k+"="+v)
			}
			return strings.Join(parts, "; ")
		}
		page := httptest.NewRecorder()
		get := httptest.NewRequest(http.MethodGet, "/login/", nil)
		get.Header.Set("Cookie", header())
		fake.ServeHTTP(page, get)
		for _, c := range page.Result().Cookies() {
			cookies[c.Name] = c.Value
		}
		m := csrfRE.FindStringSubmatch(page.Body.String())
		if m == nil {
			http.Error(w, "no csrf", http.StatusInternalServerError)
			return
		}
		form := url.Values{"username": {user}, "password": {passwords[user]}, "csrf_token": {m[1]}}
		post := httptest.NewRequest(http.MethodPost, "/login/", strings.NewReader(form.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("Cookie", header())
		login := httptest.NewRecorder()
		fake.ServeHTTP(login, post)
		maps.Copy(w.Header(), login.Header())
		w.WriteHeader(login.Code)
	})
}

// countingWhoAmI counts the calls of a WhoAmIFunc.
func countingWhoAmI(n *atomic.Int64, f session.WhoAmIFunc) session.WhoAmIFunc {
	return func(ctx context.Context, jar session.Jar) (string, string, error) {
		n.Add(1)
		return f(ctx, jar)
	}
}

// Finding 3: with server-side sessions, a sign-in on a path that is no
// login route to the gateway (Superset routed it as /login/) rotates the
// planted id and books the session to the user.
func TestSignInOnAnyPathIsBound(t *testing.T) {
	for _, serverSide := range []bool{true, false} {
		t.Run(map[bool]string{true: "server-side", false: "cookie"}[serverSide], func(t *testing.T) {
			clk := newClock()
			ss := startWrapped(t, clk, serverSide, prefixRouted)
			g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
			planted, csrf := g.anonymous()
			r := g.do("POST", "/x/login/", g.cookieHeader(planted), url.Values{"username": {"alice"}, "password": {fakesuperset.AlicePassword}, "csrf_token": {csrf}})
			c, ok := r.gwCookie(g.vault.CookieName())
			if r.StatusCode != http.StatusFound || !ok || c == "" || c == planted {
				t.Fatalf("POST /x/login/: %d, new cookie %v", r.StatusCode, ok && c != "" && c != planted)
			}
			if g.me(c) != http.StatusOK || g.me(planted) != http.StatusUnauthorized {
				t.Fatal("the sign-in did not move to a new id")
			}
			list, err := g.vault.ListUserSessions(context.Background(), "2")
			if err != nil || len(list) != 1 || list[0].AuthMethod != "other" || list[0].Username != "alice" {
				t.Fatalf("alice's sessions: %+v %v", list, err)
			}
		})
	}
}

// Finding 4: FAB's REMOTE_USER sign-in is a GET; with server-side sessions
// the sid does not change, yet the planted id must die and the new one be
// booked to her, also when she had no gateway cookie at all.
func TestRemoteUserSignInIsBound(t *testing.T) {
	clk := newClock()
	ss := startWrapped(t, clk, true, remoteUser)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	planted, _ := g.anonymous()
	r := g.do("GET", "/login/", g.cookieHeader(planted), nil, "X-Remote-User", "alice")
	c, _ := r.gwCookie(g.vault.CookieName())
	if r.StatusCode != http.StatusFound || c == "" || c == planted {
		t.Fatalf("REMOTE_USER sign-in: %d, rotated %v", r.StatusCode, c != "" && c != planted)
	}
	if g.me(planted) != http.StatusUnauthorized || g.me(c) != http.StatusOK {
		t.Fatal("fixation: the planted id signed in, or the new one not")
	}
	// No gateway cookie before: the new record is hers from the start.
	r = g.do("GET", "/login/", "", nil, "X-Remote-User", "alice")
	if c2, _ := r.gwCookie(g.vault.CookieName()); c2 == "" || g.me(c2) != http.StatusOK {
		t.Fatal("a REMOTE_USER sign-in without a gateway cookie")
	}
	list, err := g.vault.ListUserSessions(context.Background(), "2")
	if err != nil || len(list) != 2 || list[0].AuthMethod != "remote_user" || list[1].AuthMethod != "remote_user" {
		t.Fatalf("alice's sessions: %+v %v", list, err)
	}
}

// The signed-in hot path asks Superset nothing: with server-side sessions
// Superset sets the same sid on every answer, and only a change (or an
// anonymous session, which a sign-in could turn) makes the vault ask.
func TestWhoAmIOnlyWhenTheSessionMayHaveChanged(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, true)
	var calls atomic.Int64
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) {
		o.WhoAmI = countingWhoAmI(&calls, o.WhoAmI)
	}})
	c := g.signIn("alice", fakesuperset.AlicePassword)
	calls.Store(0)
	for range 20 {
		if g.me(c) != http.StatusOK {
			t.Fatal("signed-in request refused")
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d WhoAmI calls for 20 signed-in requests whose sid did not change", n)
	}
	a, _ := g.anonymous()
	calls.Store(0)
	g.do("GET", "/login/", g.cookieHeader(a), nil)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d WhoAmI calls for an anonymous answer that set the sid, want 1", n)
	}
}

// When Superset cannot say who holds its session after an answer that may
// have signed someone in, no gateway session keeps it: 503, the planted id
// is dead, and nobody's books hold an unbooked sign-in.
func TestWhoAmIFailureDropsTheSession(t *testing.T) {
	clk := newClock()
	ss := startWrapped(t, clk, true, prefixRouted)
	var fail atomic.Bool
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) {
		who := o.WhoAmI
		o.WhoAmI = func(ctx context.Context, jar session.Jar) (string, string, error) {
			if fail.Load() {
				return "", "", errors.New("superset unreachable")
			}
			return who(ctx, jar)
		}
	}})
	planted, csrf := g.anonymous()
	fail.Store(true)
	r := g.do("POST", "/x/login/", g.cookieHeader(planted), url.Values{"username": {"alice"}, "password": {fakesuperset.AlicePassword}, "csrf_token": {csrf}})
	c, set := r.gwCookie(g.vault.CookieName())
	if r.StatusCode != http.StatusServiceUnavailable || !set || c != "" {
		t.Fatalf("unidentified sign-in: %d, cookie set %v to %q; want 503 and the cookie cleared", r.StatusCode, set, c)
	}
	fail.Store(false)
	if g.me(planted) != http.StatusUnauthorized {
		t.Fatal("the planted id still reaches Superset's signed-in session")
	}
	if list, _ := g.vault.ListUserSessions(context.Background(), "2"); len(list) != 0 {
		t.Fatalf("sessions of alice: %+v", list)
	}
}

// HEAD /logout/ runs FAB's logout view (Flask answers HEAD with the GET
// view): the session goes, as superset.IsLogout says.
func TestHeadLogoutDestroys(t *testing.T) {
	clk := newClock()
	ss := startWrapped(t, clk, true, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead {
				r.Method = http.MethodGet
			}
			fake.ServeHTTP(w, r)
		})
	})
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	c := g.signIn("alice", fakesuperset.AlicePassword)
	g.do("HEAD", "/logout/", g.cookieHeader(c), nil)
	if list, _ := g.vault.ListUserSessions(context.Background(), "2"); len(list) != 0 {
		t.Fatalf("after HEAD /logout/: %+v", list)
	}
}

// Finding 6: the login time is when the request was sent. Superset checks
// the password, an admin revokes the user, then the answer arrives: the
// session is refused on its next request.
func TestLoginAnsweredAfterARevocationIsRefused(t *testing.T) {
	clk := newClock()
	ep := &epochs{ms: map[string]int64{}}
	ss := startWrapped(t, clk, true, func(fake http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fake.ServeHTTP(w, r)
			if r.Method == http.MethodPost && r.URL.Path == "/login/" {
				clk.Advance(time.Second)
				ep.stamp("2", clk.Now())
				clk.Advance(time.Second)
			}
		})
	})
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.Epochs = ep }})
	a, csrf := g.anonymous()
	sent := clk.Now()
	c := g.login(a, csrf, "alice", fakesuperset.AlicePassword)
	list, _ := g.vault.ListUserSessions(context.Background(), "2")
	if len(list) != 1 || !list[0].LoginAt.Equal(sent.Truncate(time.Millisecond)) {
		t.Fatalf("login_at: %+v, want the time it was sent (%s)", list, sent)
	}
	if g.me(c) != http.StatusUnauthorized {
		t.Fatal("a login answered after the revocation is honoured")
	}
}

// Finding 5: a revoked session on /-/sessions is answered as no session,
// cannot end the user's new sessions, and its record is destroyed on
// sight, never extended.
func TestRevokedSessionOnTheSessionsPage(t *testing.T) {
	clk := newClock()
	ep := &epochs{ms: map[string]int64{}}
	ss := startSuperset(t, clk, false)
	st := &countingStore{Store: openStore(t, boltBackend, clk)}
	g := startGateway(t, ss, st, clk, gwOpts{modify: func(o *session.Options) { o.Epochs = ep }})
	var old []string
	for range 3 {
		old = append(old, g.signIn("alice", fakesuperset.AlicePassword))
	}
	clk.Advance(time.Second)
	ep.stamp("2", clk.Now())
	clk.Advance(time.Second)
	fresh := g.signIn("alice", fakesuperset.AlicePassword)
	freshID, _ := mustCodec(t, g).Decode(fresh)
	clk.Advance(10 * time.Minute) // any touch would now write last_seen

	same := []string{"Sec-Fetch-Site", "same-origin"}
	for _, r := range []reply{
		g.do("POST", "/-/sessions/end-others", g.cookieHeader(old[0]), url.Values{}, same...),
		g.do("POST", "/-/sessions/end", g.cookieHeader(old[1]), url.Values{"session": {handleOf(freshID)}}, same...),
		g.do("GET", "/-/sessions", g.cookieHeader(old[2]), nil),
	} {
		c, set := r.gwCookie(g.vault.CookieName())
		if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/") || !set || c != "" {
			t.Errorf("revoked session on the sessions page: %d %q, cookie cleared %v; want the answer for no session", r.StatusCode, r.Header.Get("Location"), set && c == "")
		}
		if strings.Contains(r.body, handleOf(freshID)[:8]) {
			t.Error("a revoked session was shown the user's sessions")
		}
	}
	if g.me(fresh) != http.StatusOK {
		t.Fatal("a revoked session ended the user's new one")
	}
	for _, c := range old {
		id, _ := mustCodec(t, g).Decode(c)
		if _, err := st.Get(context.Background(), "session:"+handleOf(id)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a revoked session's record after its visit: %v, want gone", err)
		}
	}
	list, _ := g.vault.ListUserSessions(context.Background(), "2")
	if len(list) != 1 || list[0].Handle != handleOf(freshID) {
		t.Fatalf("alice's sessions: %+v", list)
	}
}

// SignedIn is the one answer the gateway pages ask for.
func TestSignedIn(t *testing.T) {
	clk := newClock()
	ep := &epochs{ms: map[string]int64{}}
	ss := startSuperset(t, clk, false)
	st := &countingStore{Store: openStore(t, boltBackend, clk)}
	g := startGateway(t, ss, st, clk, gwOpts{modify: func(o *session.Options) { o.Epochs = ep }})
	req := func(v string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/-/tokens", nil)
		if v != "" {
			r.Header.Set("Cookie", g.cookieHeader(v))
		}
		return r
	}
	if _, err := g.vault.SignedIn(req("")); !errors.Is(err, session.ErrBadCookie) {
		t.Fatalf("no cookie: %v", err)
	}
	a, _ := g.anonymous()
	if _, err := g.vault.SignedIn(req(a)); !errors.Is(err, session.ErrAnonymous) || !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("anonymous: %v", err)
	}
	c := g.signIn("alice", fakesuperset.AlicePassword)
	if s, err := g.vault.SignedIn(req(c)); err != nil || s.UserID != "2" {
		t.Fatalf("signed in: %v %v", s, err)
	}
	ep.down = true
	if _, err := g.vault.SignedIn(req(c)); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("epochs down: %v, want a store error (503), not 'not signed in'", err)
	}
	ep.down = false
	clk.Advance(time.Second)
	ep.stamp("2", clk.Now())
	clk.Advance(10 * time.Minute)
	sets := st.sets.Load()
	if _, err := g.vault.SignedIn(req(c)); !errors.Is(err, session.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	id, _ := mustCodec(t, g).Decode(c)
	if b, err := st.Get(context.Background(), "session:"+handleOf(id)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked record: %q %v, want destroyed", b, err)
	}
	// The destruction writes its dead marker; nothing rewrote the record.
	if n := st.sets.Load() - sets; n != 1 {
		t.Fatalf("%d store writes for a revoked session, want 1 (the dead marker)", n)
	}
}
