package epoch_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/superset/fakesuperset"
)

// Admin disables bob through Superset's users API, through the gateway:
// bob's earlier access and refresh JWTs are refused by the gateway (and
// never reach Superset); re-enabled, a token issued after the stamp works.
func TestDisableThroughGatewayRevokesBobsJWTs(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		s := newStack(t, st, clk)
		adminTok, _ := s.login("admin", fakesuperset.AdminPassword)
		bobAccess, bobRefresh := s.login("bob", fakesuperset.BobPassword)
		if r := s.do("GET", "/api/v1/me/", bobAccess, nil); r.code != 200 {
			t.Fatalf("bob before: %d %s", r.code, r.body)
		}

		clk.Advance(300 * time.Millisecond) // same second as bob's iat
		if r := s.do("PUT", "/api/v1/security/users/3", adminTok, map[string]any{"active": false}); r.code != 200 {
			t.Fatalf("disable bob: %d %s", r.code, r.body)
		}
		if got, want := s.userEpoch("3"), clk.Now().UnixMilli(); got != want {
			t.Fatalf("bob's epoch = %d, want %d", got, want)
		}
		if s.obs.get(epoch.TriggerUserDisabled) != 1 {
			t.Fatalf("stamp not counted: %v", s.obs.get("user_disabled"))
		}
		if ev := s.aud.Find("epoch.stamp", "user:3", "success"); ev == nil || ev.Actor != "user:1" || ev.Reason != epoch.TriggerUserDisabled || ev.RequestID == "" {
			t.Fatalf("stamp audit event = %+v", ev)
		}

		// Re-enable bob so that only the gateway stands between the old
		// tokens and Superset.
		if r := s.do("PUT", "/api/v1/security/users/3", adminTok, map[string]any{"active": true}); r.code != 200 {
			t.Fatalf("enable bob: %d", r.code)
		}
		if s.obs.get(epoch.TriggerUserDisabled) != 1 {
			t.Fatal("re-enabling stamped")
		}
		before := len(s.seen.auths)
		r := s.do("GET", "/api/v1/me/", bobAccess, nil)
		if r.code != 401 || !strings.Contains(r.body, `"msg"`) || !strings.Contains(r.body, "revoked") {
			t.Fatalf("bob's old access token: %d %s", r.code, r.body)
		}
		r = s.do("POST", "/api/v1/security/refresh", bobRefresh, nil)
		if r.code != 401 {
			t.Fatalf("bob's old refresh token: %d %s", r.code, r.body)
		}
		if len(s.seen.auths) != before {
			t.Fatal("a refused token reached Superset")
		}

		// A token from the epoch's own second is refused too; one from
		// the next second is accepted.
		sameSecond, _ := s.login("bob", fakesuperset.BobPassword)
		if r := s.do("GET", "/api/v1/me/", sameSecond, nil); r.code != 401 {
			t.Fatalf("token of the epoch's second: %d", r.code)
		}
		clk.Advance(time.Second)
		fresh, freshRefresh := s.login("bob", fakesuperset.BobPassword)
		if r := s.do("GET", "/api/v1/me/", fresh, nil); r.code != 200 {
			t.Fatalf("fresh token: %d %s", r.code, r.body)
		}
		if r := s.do("POST", "/api/v1/security/refresh", freshRefresh, nil); r.code != 200 {
			t.Fatalf("fresh refresh: %d %s", r.code, r.body)
		}
	})
}

func TestDeleteStampsAndFailuresDoNot(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		s := newStack(t, st, clk)
		adminTok, _ := s.login("admin", fakesuperset.AdminPassword)
		aliceTok, _ := s.login("alice", fakesuperset.AlicePassword)

		// Refusals (4xx) never stamp. A 5xx from a disabling change
		// stamps (its outcome is unknown): user 99 does not exist, so
		// that stamp harms nobody and is checked below.
		for _, c := range []struct {
			method, path string
			body         any
			tok          string
			want         int
		}{
			{"PUT", "/api/v1/security/users/2", map[string]any{"roles": []int{}}, adminTok, 400},
			{"PUT", "/api/v1/security/users/99", map[string]any{"active": false}, adminTok, 500},
			{"PUT", "/api/v1/security/users/3", map[string]any{"active": false}, aliceTok, 403},
			{"DELETE", "/api/v1/security/users/99", nil, adminTok, 404},
			{"DELETE", "/api/v1/security/users/3", nil, aliceTok, 403},
			// 2xx without a disabling field.
			{"PUT", "/api/v1/security/users/3", map[string]any{"first_name": "Robert", "active": true}, adminTok, 200},
		} {
			if r := s.do(c.method, c.path, c.tok, c.body); r.code != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, r.code, r.body, c.want)
			}
		}
		for _, id := range []string{"2", "3"} {
			if e := s.userEpoch(id); e != 0 {
				t.Fatalf("user %s stamped (%d) by a refused or harmless request", id, e)
			}
		}
		if s.userEpoch("99") == 0 {
			t.Fatal("a disabling change answered 500 did not stamp (fail closed)")
		}

		if r := s.do("PUT", "/api/v1/security/users/3", adminTok, map[string]any{"password": "n3w-pass"}); r.code != 200 {
			t.Fatalf("password: %d", r.code)
		}
		if s.userEpoch("3") == 0 || s.obs.get(epoch.TriggerPasswordChanged) != 1 {
			t.Fatal("password change by admin did not stamp")
		}
		if r := s.do("DELETE", "/api/v1/security/users/2", adminTok, nil); r.code != 200 {
			t.Fatalf("delete alice: %d %s", r.code, r.body)
		}
		if s.userEpoch("2") == 0 || s.obs.get(epoch.TriggerUserDeleted) != 1 {
			t.Fatal("delete did not stamp")
		}
		if r := s.do("GET", "/api/v1/me/", aliceTok, nil); r.code != 401 {
			t.Fatalf("deleted alice's token: %d", r.code)
		}
	})
}

// Bob changes his own password: his epoch is stamped and the session layer
// is told (SelfStamped) so that it can re-issue his current session.
func TestOwnPasswordChangeStampsCallerAndFlagsSelf(t *testing.T) {
	backends(t, func(t *testing.T, st store.Store, clk *clock) {
		s := newStack(t, st, clk)
		bob, _ := s.login("bob", fakesuperset.BobPassword)
		jar := newJar(t)
		// PUT /api/v1/me/ needs X-CSRFToken plus Superset's session cookie.
		r := s.doJar(jar, "GET", "/api/v1/security/csrf_token/", bob, "")
		if r.code != 200 {
			t.Fatalf("csrf: %d %s", r.code, r.body)
		}
		csrf := jsonField(t, r.body, "result")
		// Without a password nothing is stamped.
		if r := s.doJar(jar, "PUT", "/api/v1/me/", bob, `{"first_name":"Bobby"}`, "X-CSRFToken", csrf); r.code != 200 {
			t.Fatalf("me name: %d %s", r.code, r.body)
		}
		if s.userEpoch("3") != 0 || len(s.self) != 0 {
			t.Fatal("a name change stamped")
		}
		if r := s.doJar(jar, "PUT", "/api/v1/me/", bob, `{"password":"bobs-new-pass"}`, "X-CSRFToken", csrf); r.code != 200 {
			t.Fatalf("me password: %d %s", r.code, r.body)
		}
		e := s.userEpoch("3")
		if e == 0 || len(s.self) != 1 || s.self[0] != e {
			t.Fatalf("epoch %d, self flags %v", e, s.self)
		}
		if r := s.do("GET", "/api/v1/me/", bob, nil); r.code != 401 {
			t.Fatalf("bob's token after his password change: %d", r.code)
		}
	})
}

// Hook answers 503 when the store refuses the stamp, after Superset said 2xx.
func TestStampFailureAnswers503(t *testing.T) {
	clk := newClock()
	st := &flakyStore{Store: openBolt(t, t.TempDir()+"/gw.db", clk)}
	s := newStack(t, st, clk)
	adminTok, _ := s.login("admin", fakesuperset.AdminPassword)
	st.failMax.Store(true)
	r := s.do("PUT", "/api/v1/security/users/3", adminTok, map[string]any{"active": false})
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("stamp failure answered %d %s", r.code, r.body)
	}
	if ev := s.aud.Find("epoch.stamp", "user:3", "failure"); ev == nil {
		t.Fatal("failed stamp not audited")
	}
}

// Two replicas on one Redis: a stamp seen by replica A refuses bob's token
// on replica B at once (pub/sub), although B cached "no epoch" for a minute.
func TestTwoReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	clk := newClock()
	a := newStack(t, redisStore(t, srv), clk)
	b := newStackOn(t, redisStore(t, srv), clk, a.fake, a.url, a.seen)
	adminTok, _ := a.login("admin", fakesuperset.AdminPassword)
	bob, _ := a.login("bob", fakesuperset.BobPassword)
	if r := b.do("GET", "/api/v1/me/", bob, nil); r.code != 200 {
		t.Fatalf("bob on B: %d", r.code)
	}
	if r := a.do("DELETE", "/api/v1/security/users/3", adminTok, nil); r.code != 200 {
		t.Fatalf("delete bob on A: %d", r.code)
	}
	deadline := time.Now().Add(5 * time.Second)
	// Refused by B itself ("revoked"), not by Superset ("Error loading the
	// user 3").
	for r := b.do("GET", "/api/v1/me/", bob, nil); r.code != 401 || !strings.Contains(r.body, "revoked"); r = b.do("GET", "/api/v1/me/", bob, nil) {
		if time.Now().After(deadline) {
			t.Fatal("replica B still lets bob in")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
