package fakesuperset

// What Superset master (after 6.1.0, unreleased) adds, behind
// Options.Master. Read from apache/superset (the stored index, not a
// running master), Superset master, unreleased, tested against this fake
// only:
//
//   - session epochs (PR #40695, superset/security/session_invalidation.py
//     at 1b6ce74e): login stamps session["_login_at"] (float seconds); a
//     per-user sessions_invalidated_at (rounded up to the next whole
//     second) ends every session that logged in before it. The
//     before_request hook calls logout_user(), clears the session, flashes
//     "Your session has ended. Please sign in again." and lets the request
//     go on anonymous: 401 from the API, a redirect to /login/ from pages.
//     A session without _login_at is ended once an epoch exists.
//   - DELETE /api/v1/security/users/<int:pk>/sessions (PR #42934): an
//     admin stamps that user's epoch without disabling them. pk is a
//     Flask int converter: "abc" or "-1" match no route (404).
//   - PUT /api/v1/me/ with a password requires "current_password" (PR
//     #42934); a wrong one is 400 and changes nothing; success stamps the
//     caller's epoch. Whether master then keeps the caller's own session
//     the PR text does not say; the fake keeps it (re-stamps its
//     _login_at after the epoch), as the later stored master version of
//     superset/views/users/api.py (0bd0e609, PUT /api/v1/me/password)
//     does by logging the caller back in.
//   - POST /api/v1/dashboard/<id_or_slug>/embedded/revoke (PR #40699,
//     can_set_embedded, admin only): sets the embedded dashboard's
//     guest_token_revoked_before to now; a guest token whose iat is
//     before it is not accepted.
//   - guest tokens carry a "rev" claim (PR #40671): the global revocation
//     version, enforced by Superset only with GUEST_TOKEN_REVOCATION_ENABLED
//     (off here, as by default).

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// SessionEndedFlash is master's flash on a session its epoch ended.
const SessionEndedFlash = "Your session has ended. Please sign in again."

const loginAtKey = "_login_at"

func (f *Fake) masterRoutes(m *http.ServeMux) {
	ends := f.api("can_delete_user", f.endUserSessions)
	m.HandleFunc("DELETE /api/v1/security/users/{pk}/sessions", func(w http.ResponseWriter, r *http.Request) {
		// Flask's <int:pk>: only digits route here; anything else is
		// the 404 of an unknown URL, before any authentication.
		if !digitsOnly(r.PathValue("pk")) {
			writeResp(w, httpError(r, http.StatusNotFound, notFoundDescription))
			return
		}
		ends.ServeHTTP(w, r)
	})
	m.Handle("POST /api/v1/dashboard/{idOrSlug}/embedded/revoke", f.apiCSRF("can_read_dashboard", f.revokeEmbedded))
	m.Handle("PUT /api/v1/me/password", f.apiCSRF("can_write", f.mePassword))
}

// mePassword is PUT /api/v1/me/password, the self-service change of a
// later master (stored blob of superset/views/users/api.py at 0bd0e609):
// current_password and new_password required; a wrong current password
// is 400 "Incorrect current password."; success stamps the caller's epoch
// and logs the caller back in (_reestablish_login_session: the session is
// emptied, then login_user).
func (f *Fake) mePassword(r *http.Request, st *reqState) resp {
	u := st.caller()
	if u == nil {
		return jsonResp(http.StatusUnauthorized, map[string]any{"message": "Not authorized"})
	}
	var body map[string]any
	if !isJSON(r) || json.NewDecoder(r.Body).Decode(&body) != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	errs := map[string]any{}
	for _, k := range []string{"current_password", "new_password"} {
		if v, ok := body[k].(string); !ok || v == "" {
			errs[k] = []string{"Missing data for required field."}
		}
	}
	if len(errs) > 0 {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": errs})
	}
	f.mu.Lock()
	cur, ok := f.users[u.ID]
	if !ok || cur.Password != body["current_password"].(string) {
		f.mu.Unlock()
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Incorrect current password."})
	}
	cur.Password = body["new_password"].(string)
	cur.ChangedBy = cur.ID
	*u = *cur
	e := f.stampLocked(u.ID)
	f.mu.Unlock()
	if st.user != nil {
		for k := range st.sess {
			delete(st.sess, k)
		}
		st.loginUser(r, u)
		st.set(loginAtKey, json.Number(strconv.FormatInt(e, 10)))
	}
	return jsonResp(http.StatusOK, map[string]any{"result": userJSON(u)})
}

func writeResp(w http.ResponseWriter, res resp) {
	for k, v := range res.header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

func digitsOnly(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// InvalidateSessions stamps user id's sessions_invalidated_at behind the
// API's back (as master's after_update listener does when a user is
// disabled by any path). Master only; it reports whether the user exists.
func (f *Fake) InvalidateSessions(id int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[id]; !ok {
		return false
	}
	f.stampLocked(id)
	return true
}

// stampLocked is invalidate_user_sessions: the epoch is rounded up to the
// next whole second. f.mu is held.
func (f *Fake) stampLocked(id int) int64 {
	now := float64(f.opt.Now().UnixNano()) / 1e9
	e := int64(math.Ceil(now))
	if e > f.invalidatedAt[id] {
		f.invalidatedAt[id] = e
	}
	return f.invalidatedAt[id]
}

// endUserSessions is DELETE /api/v1/security/users/<pk>/sessions.
func (f *Fake) endUserSessions(r *http.Request, st *reqState) resp {
	id, err := strconv.Atoi(r.PathValue("pk"))
	if err != nil || !f.InvalidateSessions(id) {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	return jsonResp(http.StatusOK, map[string]any{"message": "OK"})
}

// enforceSessionEpoch is master's enforce_session_validity, run by load
// once the session user is known.
func (f *Fake) enforceSessionEpoch(st *reqState) {
	if st.user == nil {
		return
	}
	f.mu.Lock()
	epoch := f.invalidatedAt[st.user.ID]
	f.mu.Unlock()
	if epoch == 0 {
		return
	}
	if n, ok := st.sess[loginAtKey].(json.Number); ok {
		if at, err := n.Float64(); err == nil && at >= float64(epoch) {
			return
		}
	}
	st.user = nil
	for k := range st.sess {
		delete(st.sess, k)
	}
	st.set("_flashes", []any{flaskcookie.Tuple{"warning", SessionEndedFlash}})
}

// stampLoginTime is master's stamp_login_time, called on every login.
func (st *reqState) stampLoginTime() {
	st.set(loginAtKey, json.Number(strconv.FormatFloat(float64(st.now.UnixNano())/1e9, 'f', -1, 64)))
}

// meUpdateMaster checks master's current_password rule for a PUT
// /api/v1/me/ body that sets a password. ok false: the answer to send.
func (f *Fake) meUpdateMaster(u *User, body map[string]any) (resp, bool) {
	if _, ok := body["password"]; !ok {
		return resp{}, true
	}
	cur, isStr := body["current_password"].(string)
	f.mu.Lock()
	stored := ""
	if x, ok := f.users[u.ID]; ok {
		stored = x.Password
	}
	f.mu.Unlock()
	switch {
	case stored == "":
		// An account without a password may set one.
	case !isStr || cur == "":
		return jsonResp(http.StatusBadRequest, map[string]any{"message": map[string]any{
			"current_password": []string{"Current password is required to change the password."}}}), false
	case cur != stored:
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Incorrect current password."}), false
	}
	delete(body, "current_password")
	return resp{}, true
}

// afterOwnPasswordChange stamps the caller's epoch and keeps the caller's
// own session (see the package note above).
func (f *Fake) afterOwnPasswordChange(st *reqState, id int) {
	f.mu.Lock()
	e := f.stampLocked(id)
	f.mu.Unlock()
	if st.user != nil && st.user.ID == id {
		st.set(loginAtKey, json.Number(strconv.FormatInt(e, 10)))
	}
}

// revokeEmbedded is POST /api/v1/dashboard/<id_or_slug>/embedded/revoke.
func (f *Fake) revokeEmbedded(r *http.Request, st *reqState) resp {
	u := st.caller()
	if u == nil || !slices.Contains(u.Roles, "Admin") {
		return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"})
	}
	k := r.PathValue("idOrSlug")
	if k != itoa(f.dashboard.ID) && k != f.dashboard.Slug {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	f.mu.Lock()
	f.guestRevokedBefore = st.now.Unix()
	f.mu.Unlock()
	return jsonResp(http.StatusOK, map[string]any{"message": "OK"})
}

// guestRevoked is master's check in get_guest_user_from_request: a token
// issued before the dashboard's guest_token_revoked_before is refused.
func (f *Fake) guestRevoked(c *guestjwt.Claims) bool {
	f.mu.Lock()
	before := f.guestRevokedBefore
	f.mu.Unlock()
	if before == 0 || !c.IssuedAt.Before(timeUnix(before)) {
		return false
	}
	return slices.ContainsFunc(c.Resources, func(res guestjwt.Resource) bool {
		return res.Type == "dashboard" && (res.ID == itoa(f.dashboard.ID) || res.ID == f.dashboard.EmbedUUID || res.ID == f.dashboard.Slug)
	})
}

func timeUnix(sec int64) time.Time { return time.Unix(sec, 0) }

// guestRev is the "rev" claim master mints (the revocation version, 0
// until `superset revoke-guest-tokens` bumps it); nil on 6.1.0.
func (f *Fake) guestRev() *int64 {
	if !f.opt.Master {
		return nil
	}
	var v int64
	return &v
}
