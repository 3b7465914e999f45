package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
)

// trace records the order in which the pipeline calls its stages.
type trace struct{ calls []string }

func (t *trace) add(s string) { t.calls = append(t.calls, s) }

var allow = policy.Decision{Allow: true}

// fakeAuth is a credential stage answering a fixed principal.
type fakeAuth struct {
	name string
	tr   *trace
	p    principal.Principal
	d    policy.Decision
	err  error
}

func (f fakeAuth) Authenticate(context.Context, *http.Request, *principal.Exchange) (principal.Principal, policy.Decision, error) {
	f.tr.add("authenticate:" + f.name)
	return f.p, f.d, f.err
}

type fakeSessions struct {
	tr *trace
	p  principal.Principal
}

func (f fakeSessions) Authenticate(context.Context, *http.Request, *principal.Exchange) (principal.Principal, error) {
	f.tr.add("authenticate:session")
	return f.p, nil
}
func (f fakeSessions) Revoked(context.Context, *http.Request, *principal.Exchange, policy.Reason) error {
	f.tr.add("session:revoked")
	return nil
}
func (f fakeSessions) Inject(r *http.Request, _ *principal.Exchange) {
	f.tr.add("inject:session")
	r.Header.Set("Cookie", "session=from-the-vault")
}
func (f fakeSessions) ModifyResponse(*http.Response) error { f.tr.add("hook:session"); return nil }

type fakeTokens struct {
	fakeAuth
}

func (f fakeTokens) Authorize(context.Context, *http.Request, *principal.Exchange) policy.Decision {
	f.tr.add("authorize:token")
	return allow
}
func (f fakeTokens) Inject(_ context.Context, r *http.Request, _ *principal.Exchange) (policy.Decision, error) {
	f.tr.add("inject:token")
	return allow, nil
}
func (f fakeTokens) ModifyResponse(*http.Response) error { f.tr.add("hook:token"); return nil }

type fakeEpochs struct {
	tr  *trace
	d   policy.Decision
	err error
}

func (f fakeEpochs) IssuedAfter(context.Context, string, time.Time, time.Duration) (policy.Decision, error) {
	f.tr.add("revocation:epochs")
	return f.d, f.err
}

type fakeGuestRev struct{ tr *trace }

func (f fakeGuestRev) Check(context.Context, time.Time, []string) (policy.Decision, error) {
	f.tr.add("revocation:guest")
	return allow, nil
}

type fakeStamp struct{ tr *trace }

func (f fakeStamp) Capture(*http.Request, *principal.Exchange) policy.Decision {
	f.tr.add("capture:stamp")
	return allow
}
func (f fakeStamp) StampResponse(*http.Response) error { f.tr.add("hook:stamp"); return nil }

type parts struct {
	tr                 *trace
	jwt, token, guest  principal.Principal
	session            principal.Principal
	jwtD, tokenD, gstD policy.Decision
	epochs             policy.Decision
	epochErr           error
	extD               policy.Decision
}

type fakeExtensions struct {
	tr *trace
	d  policy.Decision
}

func (f fakeExtensions) Check(*http.Request) policy.Decision {
	f.tr.add("authorize:extensions")
	return f.d
}
func (f fakeExtensions) ModifyResponse(*http.Response) error { f.tr.add("hook:extensions"); return nil }

func (c parts) build(t *testing.T) *Pipeline {
	t.Helper()
	tr := c.tr
	or := func(d policy.Decision) policy.Decision {
		if d.Allow || d.Reason != "" {
			return d
		}
		return allow
	}
	ep := c.epochs
	if !ep.Allow && ep.Reason == "" {
		ep = allow
	}
	pl, err := NewPipeline(Parts{
		JWT:           fakeAuth{"jwt", tr, c.jwt, or(c.jwtD), nil},
		Tokens:        fakeTokens{fakeAuth{"token", tr, c.token, or(c.tokenD), nil}},
		Guests:        fakeAuth{"guest", tr, c.guest, or(c.gstD), nil},
		GuestRevoked:  fakeGuestRev{tr},
		GuestIssuance: func(*http.Response) error { tr.add("hook:guest"); return nil },
		Sessions:      fakeSessions{tr, c.session},
		Epochs:        fakeEpochs{tr, ep, c.epochErr},
		Stamp:         fakeStamp{tr},
		Extensions:    fakeExtensions{tr, or(c.extD)},
		Refusals:      NewRefuser(RefuserOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// serve runs one request through the pipeline and a backend that records
// what reached it, then the response hooks, as proxy runs them.
func serve(t *testing.T, pl *Pipeline, tr *trace, r *http.Request) (*httptest.ResponseRecorder, *http.Request) {
	t.Helper()
	var seen *http.Request
	w := httptest.NewRecorder()
	pl.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.add("proxy")
		seen = r
		if err := pl.ModifyResponse(&http.Response{StatusCode: 200, Header: http.Header{}, Request: r}); err != nil {
			t.Fatal(err)
		}
	})).ServeHTTP(w, r)
	return w, seen
}

// TestStageOrder pins the request path: a reordering of the stages or the
// response hooks fails here, whatever each package's own tests do.
func TestStageOrder(t *testing.T) {
	tr := &trace{}
	at := time.Unix(1_900_000_000, 0)
	pl := parts{tr: tr, session: principal.Principal{Kind: principal.Session, UserID: "3", IssuedAt: at}}.build(t)
	r := httptest.NewRequest("GET", "/api/v1/dashboard/", nil)
	r.Header.Set("Cookie", "session=the-clients-own; sg_session=x")
	_, seen := serve(t, pl, tr, r)
	want := []string{"authenticate:jwt", "authenticate:token", "authenticate:guest", "authenticate:session",
		"revocation:epochs", "authorize:extensions", "inject:session", "capture:stamp", "proxy",
		"hook:stamp", "hook:guest", "hook:token", "hook:extensions", "hook:session"}
	if !slices.Equal(tr.calls, want) {
		t.Fatalf("stages ran as\n%v\nwant\n%v", tr.calls, want)
	}
	if got := seen.Header.Get("Cookie"); got != "session=from-the-vault" {
		t.Fatalf("Superset got Cookie %q: a client cookie slipped through", got)
	}
	if p, ok := principal.FromContext(seen.Context()); !ok || p.UserID != "3" || !p.IssuedAt.Equal(at) {
		t.Fatalf("principal in context: %+v %v", p, ok)
	}

	// An access token: authorised and injected by its stage, no session.
	tr.calls = nil
	pl = parts{tr: tr, token: principal.Principal{Kind: principal.AccessToken, UserID: "3", IssuedAt: at}}.build(t)
	r = httptest.NewRequest("GET", "/api/v1/dashboard/", nil)
	r.Header.Set("Cookie", "sg_session=x")
	_, seen = serve(t, pl, tr, r)
	want = []string{"authenticate:jwt", "authenticate:token", "authenticate:guest",
		"revocation:epochs", "authorize:token", "authorize:extensions", "inject:token", "capture:stamp", "proxy",
		"hook:stamp", "hook:guest", "hook:token", "hook:extensions", "hook:session"}
	if !slices.Equal(tr.calls, want) {
		t.Fatalf("token request ran as\n%v\nwant\n%v", tr.calls, want)
	}
	if seen.Header.Get("Cookie") != "" {
		t.Fatal("a token request forwarded the client's cookie")
	}
}

// An extension the policy refuses never reaches Superset, and the answer
// is the refusal writer's.
func TestExtensionRefusedBeforeProxy(t *testing.T) {
	tr := &trace{}
	pl := parts{tr: tr, extD: policy.Decision{Reason: policy.ReasonExtensionRefused}}.build(t)
	w, seen := serve(t, pl, tr, httptest.NewRequest("GET", "/api/v1/extensions/acme/bad/remoteEntry.js", nil))
	if seen != nil || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "extension policy") {
		t.Fatalf("%d %q reached=%v", w.Code, w.Body.String(), seen != nil)
	}
}

func TestMixedCredentialsRefused(t *testing.T) {
	tr := &trace{}
	at := time.Unix(1_900_000_000, 0)
	for name, c := range map[string]parts{
		"jwt and guest token":          {tr: tr, jwt: principal.Principal{Kind: principal.APIJWT, UserID: "3", IssuedAt: at}, guest: principal.Principal{Kind: principal.Guest, IssuedAt: at}},
		"access token and guest token": {tr: tr, token: principal.Principal{Kind: principal.AccessToken, UserID: "3", IssuedAt: at}, guest: principal.Principal{Kind: principal.Guest, IssuedAt: at}},
		"jwt with another user's session": {tr: tr, jwt: principal.Principal{Kind: principal.APIJWT, UserID: "3", IssuedAt: at},
			session: principal.Principal{Kind: principal.Session, UserID: "4", IssuedAt: at}},
	} {
		w, seen := serve(t, c.build(t), tr, httptest.NewRequest("GET", "/api/v1/me/", nil))
		if seen != nil || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "one credential") {
			t.Errorf("%s: %d %q reached=%v", name, w.Code, w.Body.String(), seen != nil)
		}
	}
	// The JWT's own user's session (it carries Superset's CSRF cookie) is
	// not a second credential.
	pl := parts{tr: tr, jwt: principal.Principal{Kind: principal.APIJWT, UserID: "3", IssuedAt: at},
		session: principal.Principal{Kind: principal.Session, UserID: "3", IssuedAt: at}}.build(t)
	if w, seen := serve(t, pl, tr, httptest.NewRequest("GET", "/api/v1/me/", nil)); seen == nil {
		t.Fatalf("JWT with its own user's session: %d", w.Code)
	}
}

// A revoked token is refused before Superset; a revoked browser session
// goes on anonymous (the vault destroys it); a store failure is 503.
func TestRevocationStage(t *testing.T) {
	tr := &trace{}
	at := time.Unix(1_900_000_000, 0)
	revoked := policy.Decision{Reason: policy.ReasonRevokedUser}
	pl := parts{tr: tr, jwt: principal.Principal{Kind: principal.APIJWT, UserID: "3", IssuedAt: at}, epochs: revoked}.build(t)
	if w, seen := serve(t, pl, tr, httptest.NewRequest("GET", "/api/v1/me/", nil)); seen != nil || w.Code != 401 {
		t.Fatalf("revoked JWT: %d reached=%v", w.Code, seen != nil)
	}
	tr.calls = nil
	pl = parts{tr: tr, session: principal.Principal{Kind: principal.Session, UserID: "3", IssuedAt: at}, epochs: revoked}.build(t)
	_, seen := serve(t, pl, tr, httptest.NewRequest("GET", "/superset/welcome/", nil))
	if seen == nil || !slices.Contains(tr.calls, "session:revoked") {
		t.Fatalf("revoked session: reached=%v calls %v", seen != nil, tr.calls)
	}
	if p, _ := principal.FromContext(seen.Context()); p.SignedIn() {
		t.Fatalf("a revoked session went on signed in: %+v", p)
	}
	pl = parts{tr: tr, jwt: principal.Principal{Kind: principal.APIJWT, UserID: "3", IssuedAt: at},
		epochErr: errors.New("store: unavailable")}.build(t)
	w, seen := serve(t, pl, tr, httptest.NewRequest("GET", "/api/v1/me/", nil))
	if seen != nil || w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("store down: %d reached=%v", w.Code, seen != nil)
	}
}
