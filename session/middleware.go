package session

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// flaskCookieName is Superset's SESSION_COOKIE_NAME.
const flaskCookieName = "session"

// flaskMaxAge is Flask's PERMANENT_SESSION_LIFETIME default, the age limit
// Superset applies to its own cookie.
const flaskMaxAge = 31 * 24 * time.Hour

// reqState carries what the request path learned to the response path.
type reqState struct {
	sess  *Session // nil: no live session
	clear bool     // the client sent a gateway cookie that must be cleared
	stale bool     // the client sent an id rotated away just now (ErrRotated)
	guest bool     // the request carries a guest token
}

type stateKey struct{}

// Middleware is the request path; install it in proxy.Options.Middleware
// (it must run for every request bound to Superset, and together with
// ModifyResponse). It decodes the gateway cookie, loads the session,
// removes every cookie the client sent (Superset's session, remember_token,
// async-token and anything else: none of them is the browser's to give) and
// sends the jar's cookies instead. When the store cannot answer it replies
// 503 with Retry-After and leaves the client's cookie alone.
func (v *Vault) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := v.now()
		rs := &reqState{guest: hasGuestToken(r) || isEmbeddedPage(r) || (v.isGuest != nil && v.isGuest(r))}
		if ck, err := r.Cookie(v.codec.Name()); err == nil {
			e, err := v.sessionFor(r.Context(), ck.Value, now)
			switch {
			case err == nil:
				rs.sess = e.s
				if !v.checkEpoch(w, r, rs) {
					return
				}
			case errors.Is(err, ErrRotated):
				rs.stale = true
			case errors.Is(err, ErrBadCookie), errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
				rs.clear = true
			default:
				v.log.Warn("session store unavailable", zap.Error(err))
				v.unavailable(w)
				return
			}
		}
		delete(r.Header, "Cookie")
		if rs.sess != nil {
			if h := rs.sess.cookieHeader(now); h != "" {
				r.Header["Cookie"] = []string{h}
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, rs)))
	})
}

// checkEpoch refuses a signed-in session issued before its user's (or the
// global) invalidation epoch: the record is destroyed and the request goes
// on anonymous, with the cookie cleared. It answers 503 itself and returns
// false when the epoch cannot be read.
func (v *Vault) checkEpoch(w http.ResponseWriter, r *http.Request, rs *reqState) bool {
	s := rs.sess
	if v.epochs == nil || s.UserID == "" {
		return true
	}
	d, err := v.epochs.IssuedAfter(r.Context(), s.UserID, s.LoginAt, time.Millisecond)
	if err != nil {
		v.log.Warn("epoch store unavailable", zap.Error(err))
		v.unavailable(w)
		return false
	}
	if d.Allow {
		return true
	}
	if err := v.destroy(r.Context(), s.hid, s.UserID, "revoked"); err != nil {
		// The epoch alone keeps refusing it; the record just lingers
		// until its TTL.
		v.log.Warn("revoked session not destroyed", zap.Error(err))
	}
	v.emit(r.Context(), r, audit.Event{Event: "session.revoked", Actor: actor(s), Subject: subject(s),
		Outcome: audit.OutcomeDenied, Reason: d.Reason})
	rs.sess, rs.clear = nil, true
	return true
}

func (v *Vault) unavailable(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Retry-After", v.retryAfter)
	h.Set("Cache-Control", "no-store")
	http.Error(w, "Service temporarily unavailable; please retry.", http.StatusServiceUnavailable)
}

// isEmbeddedPage reports a load of Superset's embedded dashboard page. It
// carries no guest token (the SDK hands the token to the page afterwards),
// yet Superset sets a session cookie there; the embedded app authenticates
// every API call with X-GuestToken and needs no session, and in a
// cross-site iframe the browser would refuse the gateway cookie anyway, so
// each load would leave one more anonymous record behind.
func isEmbeddedPage(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/embedded/")
}

// hasGuestToken reports a guest token in the X-GuestToken header or the
// guest_token query parameter. (A guest_token form field is not looked at
// here: that would consume the body.)
func hasGuestToken(r *http.Request) bool {
	if r.Header.Get("X-GuestToken") != "" {
		return true
	}
	return strings.Contains(r.URL.RawQuery, "guest_token") && r.URL.Query().Get("guest_token") != ""
}

// ModifyResponse is the response path; set it as (or call it from)
// proxy.Options.ModifyResponse. It removes every Set-Cookie from Superset's
// answer, keeps them in the session's jar, creates the record when Superset
// first sets a cookie, rotates the id when the identity changes and
// destroys the session on logout. Responses to requests that did not pass
// through Middleware are only stripped. It never returns an error: store
// failures turn the response into a 503.
func (v *Vault) ModifyResponse(resp *http.Response) error {
	var cookies []*http.Cookie
	if len(resp.Header["Set-Cookie"]) > 0 {
		cookies = resp.Cookies()
		delete(resp.Header, "Set-Cookie")
	}
	req := resp.Request
	if req == nil {
		return nil
	}
	rs, _ := req.Context().Value(stateKey{}).(*reqState)
	if rs == nil {
		return nil
	}
	if rs.stale {
		// Sent with the id a login has just rotated away, answered after
		// that login: the browser already holds the new id, which neither
		// a cleared cookie nor a new anonymous session may replace (see
		// RotatedGrace). Superset's cookies were dropped above.
		return nil
	}
	ctx := req.Context()
	now := v.now()
	sess := rs.sess

	if isLogout(req) && resp.StatusCode < 400 {
		if sess != nil {
			if err := v.destroy(ctx, sess.hid, sess.UserID, "logout"); err != nil {
				v.log.Warn("logout: session not destroyed", zap.Error(err))
				v.replaceUnavailable(resp)
				return nil
			}
			v.emit(ctx, req, audit.Event{Event: "session.logout", Actor: actor(sess), Subject: subject(sess), Outcome: audit.OutcomeSuccess})
		}
		if sess != nil || rs.clear {
			v.setCookie(resp, "")
		}
		return nil
	}

	// The caller changed their own password: their epoch now refuses this
	// session too, so it is re-issued with a login_at after the epoch.
	var reissueAt time.Time
	if sess != nil && sess.UserID != "" && v.selfStamped != nil && resp.StatusCode < 300 {
		if ep, ok := v.selfStamped(ctx); ok {
			reissueAt = now
			if min := time.UnixMilli(ep + 1); reissueAt.Before(min) {
				reissueAt = min
			}
		}
	}
	if len(cookies) == 0 && !isLoginish(req) && reissueAt.IsZero() {
		if rs.clear {
			v.setCookie(resp, "")
		}
		return nil
	}
	if rs.guest && sess == nil {
		// Embedded traffic is stateless: whatever Superset set is dropped.
		if rs.clear {
			v.setCookie(resp, "")
		}
		return nil
	}

	var jar Jar
	var before string
	if sess != nil {
		jar = sess.Jar.Clone()
		before, _ = sess.Jar.Value(flaskCookieName, now)
	} else {
		jar = Jar{}
	}
	changed := jar.apply(cookies, now)
	after, _ := jar.Value(flaskCookieName, now)
	loginish := isLoginish(req) && resp.StatusCode < 400

	var cur Session
	if sess != nil {
		cur = *sess
	}
	uid, uname, known := v.identify(ctx, cur.UserID, cur.Username, before, after, sess == nil, loginish, jar, now)

	switch {
	case sess == nil:
		if len(jar) == 0 {
			if rs.clear {
				v.setCookie(resp, "")
			}
			return nil
		}
		if uid == "" && !v.limiter.allow(v.clientIP(req), now) {
			v.obs.SessionRateLimited()
			v.replaceTooMany(resp)
			return nil
		}
		tmpl := v.template(req, uid, uname, now)
		s, val, err := v.create(ctx, tmpl, jar, now)
		if err != nil {
			v.log.Warn("session not created", zap.Error(err))
			v.replaceUnavailable(resp)
			return nil
		}
		v.setCookie(resp, val)
		if uid != "" {
			v.loginEvent(ctx, req, s)
		}
	case uid != cur.UserID || !known || !reissueAt.IsZero():
		// Identity changed (or a login we cannot see through): a new id,
		// so whatever id was known before — planted, copied, or simply
		// the anonymous one — is worthless from now on.
		if err := v.destroy(ctx, cur.hid, cur.UserID, reasonRotated); err != nil {
			v.log.Warn("rotation: old session not destroyed", zap.Error(err))
			v.replaceUnavailable(resp)
			return nil
		}
		tmpl := v.template(req, uid, uname, now)
		if !reissueAt.IsZero() && uid == cur.UserID && known {
			// Same user, same login: keep how they signed in, with a
			// login time after their new epoch.
			tmpl.LoginAt, tmpl.AuthMethod = reissueAt, cur.AuthMethod
		}
		s, val, err := v.create(ctx, tmpl, jar, now)
		if err != nil {
			v.log.Warn("rotation: new session not created", zap.Error(err))
			v.replaceUnavailable(resp)
			v.setCookie(resp, "")
			return nil
		}
		v.obs.SessionRotated()
		v.setCookie(resp, val)
		v.emit(ctx, req, audit.Event{Event: "session.rotated", Actor: actor(s), Subject: subject(s), Outcome: audit.OutcomeSuccess,
			Details: map[string]any{"from": short(cur.hid)}})
		if uid != "" {
			v.loginEvent(ctx, req, s)
		}
	case changed:
		if _, err := v.update(ctx, sess, jar, now); err != nil {
			if errors.Is(err, ErrNotFound) {
				// Destroyed while Superset answered. If a login rotated
				// it away, the browser holds the new id: keep it.
				if !v.rotatedRecently(ctx, sess.hid, now) {
					v.setCookie(resp, "")
				}
				return nil
			}
			v.log.Warn("session jar not saved", zap.Error(err))
			v.replaceUnavailable(resp)
			return nil
		}
	}
	if loginish && uid == "" && req.Method == http.MethodPost {
		v.emit(ctx, req, audit.Event{Event: "login.failure", Actor: "anonymous", Outcome: audit.OutcomeFailure,
			Reason: "still_anonymous", Details: map[string]any{"method": authMethod(req)}})
	}
	if rs.clear && resp.Header.Get("Set-Cookie") == "" {
		v.setCookie(resp, "")
	}
	return nil
}

// identify decides who the jar belongs to after a response. known is false
// when a login-ish response may have changed the identity but it cannot be
// told (no WhoAmI, or WhoAmI failed): the caller rotates anyway.
func (v *Vault) identify(ctx context.Context, uid, uname, before, after string, fresh, loginish bool, jar Jar, now time.Time) (string, string, bool) {
	if after == before && !loginish && !fresh {
		return uid, uname, true
	}
	if after == "" {
		return "", "", true
	}
	if fs, err := flaskcookie.Decode(after, v.secret, flaskMaxAge, now); err == nil {
		nu, _ := fs.UserID()
		if nu != uid {
			uname = ""
			if nu != "" && v.whoAmI != nil {
				// Best effort, for the sessions page: the cookie only
				// holds the id.
				if wu, wn, err := v.whoAmI(ctx, jar); err == nil && wu == nu {
					uname = wn
				}
			}
		}
		return nu, uname, true
	}
	if !loginish {
		// A server-side (opaque) session id: identity changes only
		// through the login routes, where it is checked below.
		return uid, uname, true
	}
	if v.whoAmI == nil {
		return uid, uname, false
	}
	wu, wn, err := v.whoAmI(ctx, jar)
	if err != nil {
		v.log.Warn("whoami after login failed; rotating the session anyway", zap.Error(err))
		return uid, uname, false
	}
	return wu, wn, true
}

func (v *Vault) template(req *http.Request, uid, uname string, now time.Time) Session {
	s := Session{UserID: uid, Username: uname, UserAgent: clip(req.UserAgent(), 256)}
	if ip := v.clientIP(req); ip.IsValid() {
		s.ClientIP = ip.String()
	}
	if uid != "" {
		s.LoginAt = now
		s.AuthMethod = authMethod(req)
	}
	return s
}

func (v *Vault) loginEvent(ctx context.Context, req *http.Request, s *Session) {
	v.emit(ctx, req, audit.Event{Event: "login.success", Actor: actor(s), Subject: subject(s), Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"method": s.AuthMethod}})
}

func actor(s *Session) string {
	if s.UserID == "" {
		return "anonymous"
	}
	return "user:" + s.UserID
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (v *Vault) setCookie(resp *http.Response, value string) {
	resp.Header.Add("Set-Cookie", v.codec.Cookie(value).String())
	// A response that sets the session cookie must not be cached by a
	// shared cache and replayed to someone else.
	resp.Header.Set("Cache-Control", "no-store")
}

// replaceUnavailable turns resp into a 503 with Retry-After; Superset's
// answer is discarded because the vault could not record what it did.
func (v *Vault) replaceUnavailable(resp *http.Response) {
	v.replace(resp, http.StatusServiceUnavailable, "Service temporarily unavailable; please retry.\n")
	resp.Header.Set("Retry-After", v.retryAfter)
}

func (v *Vault) replaceTooMany(resp *http.Response) {
	v.replace(resp, http.StatusTooManyRequests, "Too many new sessions from your address; please retry shortly.\n")
	resp.Header.Set("Retry-After", v.retryAfter)
}

func (v *Vault) replace(resp *http.Response, code int, body string) {
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
	resp.StatusCode = code
	resp.Status = strconv.Itoa(code) + " " + http.StatusText(code)
	resp.Header = http.Header{
		"Content-Type":           {"text/plain; charset=utf-8"},
		"Cache-Control":          {"no-store"},
		"X-Content-Type-Options": {"nosniff"},
	}
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.TransferEncoding = nil
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

func isLogout(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/logout/"
}

// isLoginish reports the routes through which FAB logs a user in: the form
// post (DB, LDAP), the OAuth start and callback, and provider logins
// (/login/<provider>, also used by OpenID).
func isLoginish(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/login/":
		return r.Method == http.MethodPost
	case strings.HasPrefix(p, "/oauth-authorized/"), strings.HasPrefix(p, "/login/"):
		return true
	}
	return false
}

// authMethod names how a login happened, from the route that did it.
func authMethod(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/login/":
		return "form"
	case strings.HasPrefix(p, "/oauth-authorized/"):
		return "oauth:" + clip(strings.Trim(strings.TrimPrefix(p, "/oauth-authorized/"), "/"), 64)
	case strings.HasPrefix(p, "/login/"):
		return "login:" + clip(strings.Trim(strings.TrimPrefix(p, "/login/"), "/"), 64)
	}
	return "other"
}

// FromContext returns the live signed-in or anonymous session that
// Middleware found for this request (also on the upstream request that
// response hooks see, which no longer carries the gateway cookie). ok is
// false outside Middleware or when the request has no live session.
func FromContext(ctx context.Context) (s *Session, ok bool) {
	rs, _ := ctx.Value(stateKey{}).(*reqState)
	if rs == nil || rs.sess == nil {
		return nil, false
	}
	return rs.sess, true
}
