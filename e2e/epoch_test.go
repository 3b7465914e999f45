//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/superset-gateway/superset-gateway/e2e/browser"
	"github.com/superset-gateway/superset-gateway/e2e/harness"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// TestEpochs is issue 6 (A2, invalidation epochs), tests 1–5, against the
// real Superset 6.1.0: one Redis (appendonly, fsync always), two gateway
// replicas sharing it, reconcile_interval 2s, cache_ttl 1s. Each check uses
// its own throw-away Gamma user. The subtests share the replicas and run in
// order; Durability wipes the store, so it runs last.
func TestEpochs(t *testing.T) {
	rig := newEpRig(t)
	admin := rig.e.c.Target.Admin
	adminID := strconv.Itoa(rig.e.s.AdminID())
	// A fresh store stamps the global epoch at the first replica's start:
	// admin's JWT must come from a later second.
	rig.settle(rig.a, adminID)
	// Admin's JWT through replica A, for the user-admin calls the gateway
	// must see.
	gwAdmin := epLogin(t, rig.a.URL, admin)
	bound := epCacheTTL + epSlack

	t.Run("DisabledInReactUsersPage", func(t *testing.T) {
		r := rig.with(t)
		// "zzz-": the page sorts by username, descending, 25 a page.
		u := r.newUser("zzz-bob-disable")
		old := r.signIn(r.a, u)
		wantWorks(t, r.replicas(), old)

		disableInUsersPage(t, r.a, admin, u)
		if active, _ := r.userActive(u); active {
			t.Fatalf("the React users page's save did not disable %s", u.Username)
		}
		took := wantRefused(t, bound, r.replicas(), old)
		t.Logf("disabled in the React users page: every credential refused on both replicas after %s", took.Round(time.Millisecond))
		if !r.hasTrigger(r.a, u, "user_disabled") {
			t.Errorf("no user_disabled stamp for user %d: the gateway did not see the page's PUT", u.ID)
		}

		// Re-enabled (through the gateway): the old credentials stay dead
		// (Superset alone would take them back), a new sign-in works.
		gwAdmin.must(t, http.MethodPut, "/api/v1/security/users/"+u.sid(), map[string]any{"active": true})
		time.Sleep(epReconcile) // let a reconciler run that listed u as inactive stamp first
		wantRefused(t, bound, r.replicas(), old)
		wantWorks(t, r.replicas(), r.signIn(r.b, u))
	})

	t.Run("Deleted", func(t *testing.T) {
		r := rig.with(t)
		u := r.newUser("bob-delete")
		old := r.signIn(r.a, u)
		gwAdmin.must(t, http.MethodDelete, "/api/v1/security/users/"+u.sid(), nil)
		if _, found := r.userActive(u); found {
			t.Fatalf("user %d still exists after DELETE", u.ID)
		}
		took := wantRefused(t, bound, r.replicas(), old)
		t.Logf("deleted: refused on both replicas after %s", took.Round(time.Millisecond))
		if !r.hasTrigger(r.a, u, "user_deleted") {
			t.Errorf("no user_deleted stamp for user %d", u.ID)
		}
	})

	t.Run("AdminChangesPassword", func(t *testing.T) {
		r := rig.with(t)
		u := r.newUser("bob-adminpw")
		old := r.signIn(r.a, u)
		newPW := "Pw-" + epRand(8)
		// Through replica B this time: either replica's hook stamps.
		epLogin(t, r.b.URL, admin).must(t, http.MethodPut, "/api/v1/security/users/"+u.sid(), map[string]any{"password": newPW})
		took := wantRefused(t, bound, r.replicas(), old)
		t.Logf("admin password change: refused on both replicas after %s (Superset alone keeps them)", took.Round(time.Millisecond))
		if !r.hasTrigger(r.a, u, "password_changed") {
			t.Errorf("no password_changed stamp for user %d", u.ID)
		}
		u.Password = newPW
		wantWorks(t, r.replicas(), r.signIn(r.a, u))
	})

	t.Run("UserChangesOwnPassword", func(t *testing.T) {
		r := rig.with(t)
		u := r.newUser("bob-selfpw")
		mine := r.signIn(r.a, u)
		other := r.signIn(r.b, u) // another browser, and its JWTs
		newPW := "Pw-" + epRand(8)
		changeOwnPassword(t, mine.client, newPW)
		cur := mine.client.session()
		if cur == "" || cur == mine.cookie {
			t.Fatalf("PUT /api/v1/me/ with a password: the gateway did not re-issue the caller's session (changed: %v)", cur != mine.cookie)
		}
		// Every earlier credential dies, the pre-change id of the caller's
		// own session included.
		took := wantRefused(t, bound, r.replicas(), other, mine)
		t.Logf("own password change: other session and all JWTs refused on both replicas after %s", took.Round(time.Millisecond))
		for _, g := range r.replicas() {
			if code, user := meAs(t, g.URL, cur); code != http.StatusOK || user != u.Username {
				t.Errorf("the caller's re-issued session at %s: %d %q, want 200 %q", g.URL, code, user, u.Username)
			}
		}
		if !r.hasTrigger(r.a, u, "password_changed") {
			t.Errorf("no password_changed stamp for user %d", u.ID)
		}
		u.Password = newPW
		wantWorks(t, r.replicas(), r.signIn(r.b, u))
	})

	t.Run("DisabledBehindTheGatewaysBack", func(t *testing.T) {
		r := rig.with(t)
		// u was listed active by the reconciler before it is disabled; v is
		// created, signs in and is disabled at once, perhaps between two
		// listings (the reconciler then sees v inactive first).
		u, v := r.newUser("bob-reconcile"), r.newUser("bob-reconcile-new")
		oldU := r.signIn(r.a, u)
		r.waitListedActive(u)
		oldV := r.signIn(r.b, v)
		wantWorks(t, r.replicas(), oldU)
		r.setActive(u, false) // straight to node 0: no gateway sees it
		r.setActive(v, false)
		limit := epReconcile + epCacheTTL
		took := wantRefused(t, limit+epSlack, r.replicas(), oldU, oldV)
		t.Logf("disabled on a Superset node: refused on both replicas after %s (reconcile_interval %s + cache_ttl %s = %s)",
			took.Round(time.Millisecond), epReconcile, epCacheTTL, limit)
		for _, x := range []epUser{u, v} {
			if !r.hasTrigger(r.a, x, "reconciler") {
				t.Errorf("no reconciler stamp for user %d", x.ID)
			}
		}
		r.setActive(u, true)
		time.Sleep(epReconcile)
		wantRefused(t, bound, r.replicas(), oldU)
		wantWorks(t, r.replicas(), r.signIn(r.a, u))
	})

	t.Run("RevokedByHand", func(t *testing.T) {
		r := rig.with(t)
		// Through the admin API with an admin token.
		u := r.newUser("bob-revoke-api")
		old := r.signIn(r.a, u)
		code, b := r.adminCall(r.b, r.token, http.MethodPost, "users/"+u.sid()+"/revoke", map[string]string{"reason": "e2e: laptop stolen"})
		if code != http.StatusOK || !strings.Contains(string(b), `"epoch"`) {
			t.Fatalf("POST users/%d/revoke with the admin token: %d %.200s", u.ID, code, b)
		}
		took := wantRefused(t, bound, r.replicas(), old)
		t.Logf("admin API revoke: refused on both replicas after %s", took.Round(time.Millisecond))
		if active, _ := r.userActive(u); !active {
			t.Errorf("revoking disabled the Superset user; it must only end credentials")
		}
		wantWorks(t, r.replicas(), r.signIn(r.b, u))

		// Through the CLI, the built binary.
		v := r.newUser("bob-revoke-cli")
		oldV := r.signIn(r.b, v)
		cmd := exec.Command(r.bin, "revoke", "user", v.sid(), "--reason", "e2e: CLI")
		cmd.Env = append(os.Environ(), "SG_ADMIN_TOKEN="+r.token, "SG_ADMIN_URL="+r.a.URL)
		out, err := cmd.CombinedOutput()
		var res struct {
			Epoch  int64  `json:"epoch"`
			UserID string `json:"user_id"`
		}
		if err != nil || json.Unmarshal(out, &res) != nil || res.Epoch == 0 || res.UserID != v.sid() {
			t.Fatalf("superset-gateway revoke user %d: %v: %s", v.ID, err, out)
		}
		took = wantRefused(t, bound, r.replicas(), oldV)
		t.Logf("CLI revoke: refused on both replicas after %s", took.Round(time.Millisecond))
		wantWorks(t, r.replicas(), r.signIn(r.a, v))

		// Who may call it: a non-admin's session or JWT → 403, nothing →
		// 401, a bad token → 401, admin's own session or JWT → 200.
		w := r.newUser("bob-revoke-target")
		alice := r.signIn(r.a, epUser{Credentials: r.e.c.Target.Alpha})
		adminS := r.signIn(r.a, epUser{ID: rig.e.s.AdminID(), Credentials: admin})
		path := "/-/admin/api/v1/users/" + w.sid() + "/revoke"
		for _, c := range []struct {
			name string
			api  *epAPI
			want int
		}{
			{"alice's session cookie", &epAPI{base: r.a.URL, cookie: alice.cookie}, http.StatusForbidden},
			{"alice's access JWT", &epAPI{base: r.a.URL, bearer: alice.access}, http.StatusForbidden},
			{"no credential", &epAPI{base: r.a.URL}, http.StatusUnauthorized},
			{"a wrong admin token", &epAPI{base: r.a.URL, bearer: "sgwa_" + epRand(16)}, http.StatusUnauthorized},
			{"admin's session cookie", &epAPI{base: r.a.URL, cookie: adminS.cookie}, http.StatusOK},
			{"admin's access JWT", &epAPI{base: r.b.URL, bearer: adminS.access}, http.StatusOK},
		} {
			code, b := c.api.call(t, http.MethodPost, path, map[string]string{"reason": "e2e: who may"})
			if code != c.want {
				t.Errorf("POST %s with %s: %d %.200s, want %d", path, c.name, code, b, c.want)
			}
		}
		// The refused calls stamped nothing: only the two admin calls.
		_, _, trs := r.epoch(r.a, w.sid())
		if len(trs) != 2 {
			t.Errorf("stamps for user %d after 2 admin calls and 4 refused ones: %v", w.ID, trs)
		}
	})

	// Last: it restarts Redis and the gateways and wipes the store.
	t.Run("Durability", func(t *testing.T) {
		r := rig.with(t)
		// kill -9 Redis (appendonly, appendfsync always) and restart it.
		u1 := r.newUser("bob-dur-redis")
		c1 := r.signIn(r.a, u1)
		r.revoke(u1)
		wantRefused(t, bound, r.replicas(), c1)
		r.rd.Kill()
		r.rd.Restart(t)
		waitServing(t, r.replicas())
		wantRefused(t, bound, r.replicas(), c1)
		t.Log("after kill -9 and restart of Redis: still refused")

		// Revoke, then restart a gateway.
		u2 := r.newUser("bob-dur-gw")
		c2 := r.signIn(r.b, u2)
		r.revoke(u2)
		wantRefused(t, bound, r.replicas(), c2)
		r.a = r.restart(r.a)
		wantRefused(t, bound, r.replicas(), c2, c1)
		t.Log("after a gateway restart: still refused")

		// FLUSHALL: the generation marker is gone with everything else.
		u3 := r.newUser("bob-dur-wipe")
		c3 := r.signIn(r.a, u3)
		r.revoke(u3)
		wantRefused(t, bound, r.replicas(), c3)
		if out, err := r.rd.Do("FLUSHALL"); err != nil {
			t.Fatalf("FLUSHALL: %v %q", err, out)
		}
		// At runtime, without a restart: a replica that finds the global
		// epoch gone stamps it again (store_wiped) within cache_ttl.
		// Refusals may first come from the replicas' caches (cache_ttl),
		// so the stamp is awaited, within the same bound, with requests
		// that make the replicas read the store again.
		wiped := time.Now()
		for !r.hasGlobalTrigger(r.a, "store_wiped") {
			if time.Since(wiped) > bound {
				t.Fatalf("no store_wiped global stamp %s after FLUSHALL at runtime", bound)
			}
			wantRefused(t, bound, r.replicas(), c1, c2, c3)
			time.Sleep(50 * time.Millisecond)
		}
		took := wantRefused(t, bound, r.replicas(), c1, c2, c3)
		t.Logf("after FLUSHALL, running replicas stamped store_wiped within %s and refuse every earlier credential", (time.Since(wiped) - took).Round(time.Millisecond))
		// And after restarting both on the wiped store.
		r.a = r.restart(r.a)
		r.b = r.restart(r.b)
		took = wantRefused(t, bound, r.replicas(), c1, c2, c3)
		t.Logf("after FLUSHALL and a gateway restart: every earlier credential refused (%s)", took.Round(time.Millisecond))
		wantWorks(t, r.replicas(), r.signIn(r.a, u3))
	})
}

// revoke revokes u through the admin API at replica A.
func (r *epRig) revoke(u epUser) {
	r.t.Helper()
	code, b := r.adminCall(r.a, r.token, http.MethodPost, "users/"+u.sid()+"/revoke", map[string]string{"reason": "e2e: durability"})
	if code != http.StatusOK {
		r.t.Fatalf("revoke user %d: %d %.200s", u.ID, code, b)
	}
}

// waitListedActive waits until the reconciler's snapshot in Redis lists u
// as active.
func (r *epRig) waitListedActive(u epUser) {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(3 * epReconcile)
	for {
		raw, err := r.rd.Do("GET", epoch.SnapshotKey)
		if err != nil {
			t.Fatalf("GET %s: %v", epoch.SnapshotKey, err)
		}
		var snap struct {
			Active []string `json:"active"`
		}
		if json.Unmarshal([]byte(raw), &snap) == nil && slices.Contains(snap.Active, u.sid()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler never listed user %d as active: %.300s", u.ID, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasGlobalTrigger reports a global stamp with trigger in the revocations.
func (r *epRig) hasGlobalTrigger(g *harness.Gateway, trigger string) bool {
	r.t.Helper()
	code, b := r.adminCall(g, r.token, http.MethodGet, "revocations", nil)
	if code != http.StatusOK {
		r.t.Fatalf("GET revocations: %d %.200s", code, b)
	}
	return strings.Contains(string(b), `"subject":"global"`) && strings.Contains(string(b), `"trigger":"`+trigger+`"`)
}

// waitServing waits until every replica answers /api/v1/me/ (401
// anonymous) again, i.e. its store is back.
func waitServing(t *testing.T, gs []*harness.Gateway) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, g := range gs {
		for {
			code, _ := (&epAPI{base: g.URL}).call(t, http.MethodGet, "/api/v1/me/", nil)
			if code != http.StatusServiceUnavailable {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s still 503 after Redis came back", g.URL)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// changeOwnPassword is PUT /api/v1/me/ {"password"} with c's gateway
// session and the CSRF token Superset wants (docs/superset-6.1.md).
func changeOwnPassword(t *testing.T, c *gwClient, pw string) {
	t.Helper()
	resp, body := c.get("/api/v1/security/csrf_token/")
	var tok struct {
		Result string `json:"result"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.Result == "" {
		t.Fatalf("GET /api/v1/security/csrf_token/: %d %.200s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPut, c.base+"/api/v1/me/", strings.NewReader(`{"password":`+strconv.Quote(pw)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRFToken", tok.Result)
	req.Header.Set("Referer", c.base+"/")
	resp, body = c.do(req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /api/v1/me/ with a password: %d %.300s", resp.StatusCode, body)
	}
}

// disableInUsersPage signs admin in through the gateway in Chromium, opens
// Superset 6.1's React users page (/users/), edits u, unticks "Is
// active?" and saves: the page's own PUT /api/v1/security/users/<pk> goes
// through the gateway with admin's gateway session.
func disableInUsersPage(t *testing.T, g *harness.Gateway, admin conformance.Credentials, u epUser) {
	t.Helper()
	b := browser.ForTest(t, browser.Options{})
	if err := b.Navigate(g.URL + "/login/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="username-input"]`, admin.Username); err != nil {
		t.Fatal(err)
	}
	if err := b.Fill(`input[data-test="password-input"]`, admin.Password); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`[data-test="login-button"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitURLPrefix(g.URL + "/superset/welcome/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Navigate(g.URL + "/users/"); err != nil {
		t.Fatal(err)
	}
	// The list sorts by username, descending, 25 a page, so u (named
	// "zzz-…") is on the first: find its row and click "Edit user".
	name := strconv.Quote(u.Username)
	clickEdit := `(() => {
		const rows = [...document.querySelectorAll('tr')].filter(r =>
			[...r.querySelectorAll('td')].some(td => td.textContent.trim() === ` + name + `));
		if (rows.length !== 1) return 'rows:' + rows.length;
		const el = rows[0].querySelector('[data-test="user-list-edit-action"]');
		if (!el) return 'no edit action in ' + rows[0].innerHTML.slice(-600);
		el.click();
		return 'ok';
	})()`
	evalUntil(t, b, clickEdit, "ok", 45*time.Second)
	// Untick "Is active?" and save, again until the modal is gone: the form
	// may still be filling in the user's values, and Save is disabled until
	// the form validates.
	save := `(() => {
		const modal = document.querySelector('.ant-modal');
		const btn = modal && modal.querySelector('[data-test="form-modal-save-button"]');
		if (!btn) return window.__sgwSaved ? 'saved' : 'no modal';
		const box = modal.querySelector('input[type="checkbox"][id$="active"]');
		if (!box) return 'no checkbox';
		if (box.checked) { box.click(); return 'unticked'; }
		if (btn.disabled) return 'save disabled: ' + modal.innerText.slice(0, 300);
		btn.click();
		window.__sgwSaved = true;
		return 'clicked';
	})()`
	evalUntil(t, b, save, "saved", 45*time.Second)
}

// evalUntil evaluates js in the page until it returns want.
func evalUntil(t *testing.T, b *browser.Browser, js, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for {
		ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		cancel()
		if err == nil && got == want {
			return
		}
		last = got
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("browser: waited %s for %q, last answer %q", limit, want, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
