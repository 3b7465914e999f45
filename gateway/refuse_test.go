package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
)

// TestAnswerFor pins the one status mapping: every reason a stage can
// return, for each kind of credential that returns it.
func TestAnswerFor(t *testing.T) {
	type k = principal.Kind
	for _, c := range []struct {
		kind   k
		reason policy.Reason
		status int
	}{
		{principal.APIJWT, policy.ReasonExpired, 401},
		{principal.APIJWT, policy.ReasonBadSignature, 401},
		{principal.APIJWT, policy.ReasonAlgNotAllowed, 401},
		{principal.RefreshJWT, policy.ReasonWrongType, 401},
		{principal.APIJWT, policy.ReasonRevokedUser, 401},
		{principal.APIJWT, policy.ReasonRevokedGlobal, 401},
		{principal.APIJWT, policy.ReasonRevokedJTI, 401},
		{principal.APIJWT, policy.ReasonBadAuthorizationHeader, 401},
		{principal.AccessToken, policy.ReasonMalformed, 401},
		{principal.AccessToken, policy.ReasonBadChecksum, 401},
		{principal.AccessToken, policy.ReasonUnknownToken, 401},
		{principal.AccessToken, policy.ReasonBadSecret, 401},
		{principal.AccessToken, policy.ReasonTokenRevoked, 401},
		{principal.AccessToken, policy.ReasonExpired, 401},
		{principal.AccessToken, policy.ReasonRevokedUser, 401},
		{principal.AccessToken, policy.ReasonTokensDisabled, 401},
		{principal.AccessToken, policy.ReasonCIDR, 403},
		{principal.AccessToken, policy.MissingScopeReason("charts:read"), 403},
		{principal.AccessToken, policy.ReasonNotAPI, 403},
		{principal.AccessToken, policy.ReasonNoScope, 403},
		{principal.AccessToken, policy.ReasonUpstreamCredits, 502},
		{principal.Guest, policy.ReasonGuestRevoked, 401},
		{principal.Guest, policy.ReasonDefaultSecret, 401},
		{principal.Guest, policy.ReasonFormTooLarge, 413},
		{principal.Guest, policy.ReasonAmbiguous, 400},
		{principal.Guest, policy.ReasonMalformedForm, 400},
		{principal.APIJWT, policy.ReasonMixedCredentials, 400},
		{principal.None, policy.ReasonBadUserID, 400},
		{principal.Session, policy.ReasonStoreUnavailable, 503},
		{principal.AccessToken, policy.ReasonStoreUnavailable, 503},
		{principal.FABAPIKey, policy.ReasonFABAPIKey, 401},
		{principal.None, policy.ReasonFABAPIKeyManagement, 403},
		{principal.APIJWT, policy.ReasonFABAPIKeyManagement, 403},
		{principal.FABAPIKey, policy.ReasonMalformed, 401},
		{principal.FABAPIKey, policy.ReasonFABAPIKeyUnknown, 401},
		{principal.FABAPIKey, policy.ReasonTokenRevoked, 401},
		{principal.FABAPIKey, policy.ReasonRevokedUser, 401},
		{principal.FABAPIKey, policy.ReasonRevokedGlobal, 401},
		{principal.FABAPIKey, policy.ReasonFABAPIKeyNoScopes, 403},
		{principal.FABAPIKey, policy.ReasonFABAPIKeyUnresolved, 403},
		{principal.FABAPIKey, policy.MissingScopeReason("charts:read"), 403},
		{principal.FABAPIKey, policy.ReasonNoScope, 403},
		{principal.FABAPIKey, policy.ReasonStoreUnavailable, 503},
	} {
		a := AnswerFor(c.kind, c.reason)
		if a.Status != c.status {
			t.Errorf("AnswerFor(%v, %s) = %d, want %d", c.kind, c.reason, a.Status, c.status)
		}
		if a.RetryAfter != (c.status == 503) {
			t.Errorf("AnswerFor(%v, %s): Retry-After %v", c.kind, c.reason, a.RetryAfter)
		}
		if a.Message == "" || strings.Contains(string(c.reason), "_") && strings.Contains(a.Message, string(c.reason)) {
			t.Errorf("AnswerFor(%v, %s): message %q (empty, or the internal label)", c.kind, c.reason, a.Message)
		}
	}
}

type countRefusals map[string]int

func (c countRefusals) ObserveCredentialRefusal(kind, reason string) { c[kind+" "+reason]++ }

type lastEvent struct{ ev audit.Event }

func (l *lastEvent) Refusal(_ context.Context, ev audit.Event) error { l.ev = ev; return nil }

// TestRefuseIsOneValueEverywhere: the reason a stage returned is the
// metric label, the audit reason and decides the answer, and the answer
// never carries the request's data.
func TestRefuseIsOneValueEverywhere(t *testing.T) {
	obs, aud := countRefusals{}, &lastEvent{}
	f := NewRefuser(RefuserOptions{Observer: obs, Auditor: aud, RetryAfter: 2500 * time.Millisecond,
		RequestInfo: func(*http.Request) (string, string) { return "rid-1", "192.0.2.7" }})
	r := httptest.NewRequest("GET", "/api/v1/chart/?q=secret-query", nil)
	w := httptest.NewRecorder()
	f.Refuse(w, r, principal.Principal{Kind: principal.AccessToken, UserID: "7", ID: "tok1"}, policy.MissingScopeReason("charts:read"), nil)
	if w.Code != 403 || obs["access_token missing_scope:charts:read"] != 1 {
		t.Fatalf("status %d, counted %v", w.Code, obs)
	}
	var body struct{ Msg string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || !strings.HasPrefix(w.Body.String(), `{"msg": "`) {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	if strings.Contains(w.Body.String(), "secret-query") {
		t.Fatal("the answer echoes the request")
	}
	ev := aud.ev
	if ev.Event != "access_token.refused" || ev.Reason != "missing_scope:charts:read" || ev.Actor != "user:7" ||
		ev.Subject != "access_token:tok1" || ev.RequestID != "rid-1" || ev.IP != "192.0.2.7" {
		t.Fatalf("audit %+v", ev)
	}
	// A store failure: 503, Retry-After rounded up, never audited as a
	// credential's fault.
	aud.ev = audit.Event{}
	w = httptest.NewRecorder()
	f.Refuse(w, r, principal.Principal{Kind: principal.Session}, policy.ReasonStoreUnavailable, context.DeadlineExceeded)
	if w.Code != 503 || w.Header().Get("Retry-After") != "3" || aud.ev.Event != "" || obs["session store_unavailable"] != 1 {
		t.Fatalf("store down: %d %q %+v", w.Code, w.Header().Get("Retry-After"), aud.ev)
	}
}

// TestRefuseBrowserGetsAPage: a browser page load gets the status and
// headers of the refusal with a page saying what to do and the request
// id; the same refusal for an API call (or a client that does not ask for
// HTML) stays the exact JSON of Superset's own answers.
func TestRefuseBrowserGetsAPage(t *testing.T) {
	f := NewRefuser(RefuserOptions{RetryAfter: 2 * time.Second,
		RequestInfo: func(*http.Request) (string, string) { return "rid-42", "192.0.2.7" }})
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	refuse := func(path, accept string, p principal.Principal, reason policy.Reason) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		f.Refuse(w, r, p, reason, nil)
		return w
	}
	w := refuse("/superset/dashboard/1/?x=<script>", browser, principal.Principal{Kind: principal.Session}, policy.ReasonStoreUnavailable)
	body := w.Body.String()
	if w.Code != 503 || w.Header().Get("Retry-After") != "2" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("browser 503: %d %v", w.Code, w.Header())
	}
	for _, want := range []string{"Temporarily unavailable", "What to do", "Retry in 2 seconds", "rid-42", "Back to Superset"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Fatal("the page echoes the request")
	}
	w = refuse("/superset/dashboard/1/", browser, principal.Principal{Kind: principal.APIJWT}, policy.ReasonRevokedUser)
	if w.Code != 401 || !strings.Contains(w.Body.String(), "Please sign in again") || !strings.Contains(w.Body.String(), `href="/login/"`) || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("browser 401: %d %v\n%s", w.Code, w.Header(), w.Body.String())
	}
	for _, c := range []struct{ path, accept string }{
		{"/api/v1/chart/", browser},
		{"/superset/dashboard/1/", "application/json"},
		{"/superset/dashboard/1/", ""},
	} {
		w := refuse(c.path, c.accept, principal.Principal{Kind: principal.APIJWT}, policy.ReasonRevokedUser)
		if got := w.Body.String(); got != "{\"msg\": \"Token has been revoked\"}\n" || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s Accept %q: %q %q", c.path, c.accept, w.Header().Get("Content-Type"), got)
		}
	}
}
