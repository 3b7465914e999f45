package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// epochs is an in-memory session.EpochChecker with the epoch package's rule:
// refused unless issued strictly after the user's epoch.
type epochs struct {
	mu   sync.Mutex
	ms   map[string]int64
	down bool
}

func (e *epochs) stamp(uid string, at time.Time) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ms[uid] = at.UnixMilli()
	return e.ms[uid]
}

func (e *epochs) IssuedAfter(_ context.Context, uid string, issued time.Time, g time.Duration) (policy.Decision, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down {
		return policy.Decision{}, store.ErrUnavailable
	}
	if ep, ok := e.ms[uid]; ok && issued.Truncate(g).UnixMilli() <= ep {
		return policy.Decision{Allow: false, Reason: "revoked_user"}, nil
	}
	return policy.Decision{Allow: true}, nil
}

func TestEpochRefusesSessionsIssuedBeforeIt(t *testing.T) {
	clk := newClock()
	ep := &epochs{ms: map[string]int64{}}
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.Epochs = ep }})

	before := g.signIn("alice", fakesuperset.AlicePassword)
	if code := g.me(before); code != http.StatusOK {
		t.Fatalf("signed in: %d", code)
	}
	clk.Advance(time.Second)
	ep.stamp("2", clk.Now()) // alice is user 2 in the fake
	r := g.do("GET", "/api/v1/me/", g.cookieHeader(before), nil)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session issued before the epoch: /api/v1/me/ %d, want 401 (anonymous)", r.StatusCode)
	}
	if v, ok := r.gwCookie(g.vault.CookieName()); !ok || v != "" {
		t.Errorf("the revoked session's cookie was not cleared (present=%v)", ok)
	}
	if g.obs.get("destroyed:revoked") != 1 {
		t.Errorf("revoked record not destroyed: %d", g.obs.get("destroyed:revoked"))
	}
	clk.Advance(time.Second)
	after := g.signIn("alice", fakesuperset.AlicePassword)
	if code := g.me(after); code != http.StatusOK {
		t.Fatalf("a login after the epoch: %d, want 200", code)
	}
}

func TestEpochStoreDownFailsClosedKeepingTheCookie(t *testing.T) {
	clk := newClock()
	ep := &epochs{ms: map[string]int64{}}
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) { o.Epochs = ep }})
	c := g.signIn("bob", fakesuperset.BobPassword)
	ep.mu.Lock()
	ep.down = true
	ep.mu.Unlock()
	r := g.do("GET", "/api/v1/me/", g.cookieHeader(c), nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("epoch store down: %d, want 503 with Retry-After", r.StatusCode)
	}
	if len(r.Header.Values("Set-Cookie")) != 0 {
		t.Fatal("epoch store down: the cookie was touched")
	}
	ep.mu.Lock()
	ep.down = false
	ep.mu.Unlock()
	if code := g.me(c); code != http.StatusOK {
		t.Fatalf("epoch store back: %d, want 200", code)
	}
}

// TestSelfStampReissuesOnlyTheCallersSession: a user who changes their own
// password stamps their epoch; the session that made the change is
// re-issued under a new id and survives, every other one dies.
func TestSelfStampReissuesOnlyTheCallersSession(t *testing.T) {
	ep := &epochs{ms: map[string]int64{}}
	// self plays the epoch hook: it stamps alice on the response of the
	// armed request (after the request path checked her session) and
	// reports the stamp, once.
	var armed sync.Mutex
	var fire bool
	var clk *clock
	self := func() (int64, bool) {
		armed.Lock()
		defer armed.Unlock()
		if !fire {
			return 0, false
		}
		fire = false
		return ep.stamp("2", clk.Now()), true
	}
	clk = newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{modify: func(o *session.Options) {
		o.Epochs = ep
	}, stamp: selfStamp(self)})
	mine := g.signIn("alice", fakesuperset.AlicePassword)
	other := g.signIn("alice", fakesuperset.AlicePassword)
	clk.Advance(time.Second)

	armed.Lock()
	fire = true
	armed.Unlock()
	r := g.do("GET", "/api/v1/me/", g.cookieHeader(mine), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("the request that stamped: %d", r.StatusCode)
	}
	reissued, ok := r.gwCookie(g.vault.CookieName())
	if !ok || reissued == "" || reissued == mine {
		t.Fatalf("session not re-issued under a new id (set=%v same=%v)", ok, reissued == mine)
	}
	if code := g.me(reissued); code != http.StatusOK {
		t.Fatalf("re-issued session: %d, want 200", code)
	}
	if code := g.me(mine); code != http.StatusUnauthorized {
		t.Errorf("the pre-change id of the same session: %d, want 401", code)
	}
	if code := g.me(other); code != http.StatusUnauthorized {
		t.Errorf("another session of the same user: %d, want 401", code)
	}
}

func TestEndSessionAsAdmin(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	c := g.signIn("bob", fakesuperset.BobPassword)
	list, err := g.vault.ListUserSessions(context.Background(), "3")
	if err != nil || len(list) != 1 {
		t.Fatalf("bob's sessions: %v %v", list, err)
	}
	if err := g.vault.EndSessionAsAdmin(context.Background(), list[0].Handle); err != nil {
		t.Fatal(err)
	}
	if code := g.me(c); code != http.StatusUnauthorized {
		t.Fatalf("after an admin ended it: %d, want 401", code)
	}
	if err := g.vault.EndSessionAsAdmin(context.Background(), list[0].Handle); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("ending it twice: %v, want ErrNotFound", err)
	}
	if err := g.vault.EndSessionAsAdmin(context.Background(), "../../etc"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a malformed handle: %v, want ErrNotFound", err)
	}
}

// TestPrincipalIsTheLiveSession: the request path puts the live session
// into the request's context as its one principal (issued at its login),
// and nothing for no cookie.
func TestPrincipalIsTheLiveSession(t *testing.T) {
	clk := newClock()
	ss := startSuperset(t, clk, false)
	var seen []string
	var mu sync.Mutex
	g := startGateway(t, ss, openStore(t, boltBackend, clk), clk, gwOpts{})
	pl := gatewaytest.Pipeline(t, gateway.Parts{Sessions: g.vault, Now: clk.Now})
	probe := pl.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal.FromContext(r.Context())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !ok:
			seen = append(seen, "no exchange")
		case p.Kind == principal.Session && !p.IssuedAt.IsZero():
			seen = append(seen, p.UserID)
		default:
			seen = append(seen, p.Kind.String())
		}
	}))
	c := g.signIn("bob", fakesuperset.BobPassword)
	for _, cookie := range []string{g.cookieHeader(c), ""} {
		req, _ := http.NewRequest("GET", "http://gw/api/v1/me/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		probe.ServeHTTP(httptest.NewRecorder(), req)
	}
	if len(seen) != 2 || seen[0] != "3" || seen[1] != "none" {
		t.Fatalf("the principal was %v, want [3 none]", seen)
	}
	if _, ok := principal.FromContext(context.Background()); ok {
		t.Fatal("FromContext outside the request path reported a principal")
	}
}

// selfStamp plays the epoch hook in the request path: on the response of
// an armed request it reports the caller's own stamp (Exchange.SelfStamped)
// before the vault's hook runs.
type selfStamp func() (int64, bool)

func (selfStamp) Capture(*http.Request, *principal.Exchange) policy.Decision {
	return policy.Decision{Allow: true}
}

func (f selfStamp) StampResponse(resp *http.Response) error {
	if v, ok := f(); ok {
		principal.ExchangeFrom(resp.Request.Context()).SelfStamped = v
	}
	return nil
}
