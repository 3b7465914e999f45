package session

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset"
	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// flaskCookieName is Superset's SESSION_COOKIE_NAME.
const flaskCookieName = "session"

// flaskMaxAge is Flask's PERMANENT_SESSION_LIFETIME default, the age limit
// Superset applies to its own cookie.
const flaskMaxAge = 31 * 24 * time.Hour

// reqState is the vault's request state (principal.Exchange.SessionState):
// what the request path learned, for the response path.
type reqState struct {
	sess  *Session  // nil: no live session
	clear bool      // the client sent a gateway cookie that must be cleared
	stale bool      // the client sent an id rotated away just now (ErrRotated)
	guest bool      // a stateless request (the embedded page): no session is made
	start time.Time // when the request entered the gateway: a login's time
}

// sentOr is when the request was sent, or now when the request path did
// not record it.
func (rs *reqState) sentOr(now time.Time) time.Time {
	if rs.start.IsZero() || rs.start.After(now) {
		return now
	}
	return rs.start
}

// Authenticate is the vault's part of the gateway's authentication stage,
// for requests that carry no token: it decodes the gateway cookie and
// loads the session into x. The principal is a Session (signed in, or an
// anonymous session holding Superset's pre-login cookies) or None (no
// cookie, or one that is bad, expired, unknown or just rotated away). It
// does not check the epoch (the gateway's revocation stage does, and calls
// Revoked). err is a store failure: the gateway answers 503 and the
// client's cookie stays.
func (v *Vault) Authenticate(ctx context.Context, r *http.Request, x *principal.Exchange) (principal.Principal, error) {
	rs := &reqState{guest: isEmbeddedPage(r), start: x.Start}
	x.SessionState = rs
	ck, err := r.Cookie(v.codec.Name())
	if err != nil {
		return principal.Principal{}, nil
	}
	e, err := v.sessionFor(ctx, ck.Value, v.now(), true)
	switch {
	case err == nil:
		rs.sess = e.s
	case errors.Is(err, ErrRotated):
		rs.stale = true
		return principal.Principal{}, nil
	case errors.Is(err, ErrBadCookie), errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
		rs.clear = true
		return principal.Principal{}, nil
	default:
		return principal.Principal{Kind: principal.Session}, err
	}
	s := rs.sess
	return principal.Principal{Kind: principal.Session, UserID: s.UserID, Username: s.Username,
		IssuedAt: s.LoginAt, Granularity: time.Millisecond, ID: short(s.hid)}, nil
}

// Revoked ends a signed-in session the revocation check refused: the
// record is destroyed, the request goes on anonymous and the cookie is
// cleared on the way back.
func (v *Vault) Revoked(ctx context.Context, r *http.Request, x *principal.Exchange, reason policy.Reason) error {
	rs, _ := x.SessionState.(*reqState)
	if rs == nil || rs.sess == nil {
		return nil
	}
	v.endRevoked(ctx, r, rs.sess, reason)
	rs.sess, rs.clear = nil, true
	return nil
}

// endRevoked destroys a session an epoch refused, wherever it was seen.
func (v *Vault) endRevoked(ctx context.Context, r *http.Request, s *Session, reason policy.Reason) {
	if err := v.destroy(ctx, s.hid, s.UserID, "revoked"); err != nil {
		// The epoch alone keeps refusing it; the record just lingers
		// until its TTL.
		v.log.Warn("revoked session not destroyed", zap.Error(err))
	}
	v.emit(ctx, r, audit.Event{Event: "session.revoked", Actor: actor(s), Subject: subject(s),
		Outcome: audit.OutcomeDenied, Reason: string(reason)})
}

// Inject sets the request's Cookie header to the session's Superset
// cookies (the gateway has already removed every cookie the client sent).
func (v *Vault) Inject(r *http.Request, x *principal.Exchange) {
	rs, _ := x.SessionState.(*reqState)
	if rs == nil || rs.sess == nil {
		return
	}
	if h := rs.sess.cookieHeader(v.now()); h != "" {
		r.Header["Cookie"] = []string{h}
	}
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

// ModifyResponse is the response path; set it as (or call it from)
// proxy.Options.ModifyResponse. It removes every Set-Cookie from Superset's
// answer, keeps them in the session's jar, creates the record when Superset
// first sets a cookie, rotates the id when the identity changes and
// destroys the session on logout. Responses to requests that did not pass
// through Authenticate are only stripped. It never returns an error: store
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
	x := principal.ExchangeFrom(req.Context())
	if x == nil {
		return nil
	}
	rs, _ := x.SessionState.(*reqState)
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

	if superset.IsLogout(req.Method, req.URL.Path) && resp.StatusCode < 400 {
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

	if sess != nil && sess.UserID != "" && x.SelfStamped == 0 && answeredAnonymous(req, resp) &&
		v.endedUpstream(ctx, req, sess, cookies, now) {
		v.setCookie(resp, "")
		return nil
	}

	// The caller changed their own password: their epoch now refuses this
	// session too, so it is re-issued with a login_at after the epoch.
	var reissueAt time.Time
	if sess != nil && sess.UserID != "" && resp.StatusCode < 300 {
		if ep := x.SelfStamped; ep != 0 {
			reissueAt = now
			if min := time.UnixMilli(ep + 1); reissueAt.Before(min) {
				reissueAt = min
			}
		}
	}
	method, loginRoute := superset.LoginMethod(req.Method, req.URL.Path)
	if len(cookies) == 0 && !loginRoute && reissueAt.IsZero() {
		// The hot path: Superset set no cookie, so its session cannot
		// have changed hands.
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

	uid, uname, known, err := v.identify(ctx, sess, outcome{before: before, after: after,
		setsSession: setsCookie(cookies, flaskCookieName), loginRoute: loginRoute}, jar, now)
	if err != nil {
		// Superset's session may now be someone's, and nobody can say
		// whose: no gateway session may hold it, or it would act as a
		// user the gateway has not booked (not listed, not ended by a
		// revocation). The client signs in again once Superset answers.
		v.log.Warn("cannot tell who holds Superset's session after this answer; it is dropped", zap.Error(err))
		if sess != nil {
			if err := v.destroy(ctx, sess.hid, sess.UserID, "unidentified"); err != nil {
				v.log.Warn("unidentified session not destroyed", zap.Error(err))
			}
		}
		v.replaceUnavailable(resp)
		if sess != nil || rs.clear {
			v.setCookie(resp, "")
		}
		return nil
	}
	if !loginRoute {
		method = superset.MethodOther
	}

	var cur Session
	if sess != nil {
		cur = *sess
	}
	switch {
	case sess == nil:
		if len(jar) == 0 {
			if rs.clear {
				v.setCookie(resp, "")
			}
			return nil
		}
		if uid == "" && !v.allowAnonymous(ctx, req, now) {
			v.obs.SessionRateLimited()
			v.replaceTooMany(resp)
			return nil
		}
		tmpl := v.template(req, uid, uname, method, rs.sentOr(now))
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
		if cur.UserID == "" && uid != "" && v.rotatedRecently(ctx, cur.hid, now) {
			// Another answer on the same anonymous id (the login, or
			// a request in flight beside it) already bound it to a
			// user and the browser holds that id: a second record
			// would only be a duplicate. See RotatedGrace.
			return nil
		}
		if err := v.destroy(ctx, cur.hid, cur.UserID, reasonRotated); err != nil {
			v.log.Warn("rotation: old session not destroyed", zap.Error(err))
			v.replaceUnavailable(resp)
			return nil
		}
		tmpl := v.template(req, uid, uname, method, rs.sentOr(now))
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
	if loginRoute && req.Method == http.MethodPost && resp.StatusCode < 400 && uid == "" {
		v.emit(ctx, req, audit.Event{Event: "login.failure", Actor: "anonymous", Outcome: audit.OutcomeFailure,
			Reason: "still_anonymous", Details: map[string]any{"method": method}})
		v.obs.Login(loginKind(method), "failure")
	}
	if rs.clear && resp.Header.Get("Set-Cookie") == "" {
		v.setCookie(resp, "")
	}
	return nil
}

// answeredAnonymous reports an answer Superset gives a caller it does not
// see as signed in: 401, or a redirect to its login page. Superset also
// sends a signed-in user who lacks a permission (or a form's CSRF token) to
// /login/, so this only says "ask": endedUpstream decides.
func answeredAnonymous(req *http.Request, resp *http.Response) bool {
	if superset.IsLogin(req.Method, req.URL.Path) {
		return false
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			return false
		}
		p := loc.Path
		return p == "/login" || strings.HasPrefix(p, "/login/")
	}
	return false
}

// endedUpstream handles a signed-in session that Superset answered as if
// anonymous. Superset ends sessions itself (a disabled or deleted user;
// Superset master's own session epoch, which logs the session out and lets
// the request go on anonymous): the gateway's record must not go on saying
// "signed in" over a Superset session that is not, or the browser is sent
// to the login page by Superset while the gateway still holds a signed-in
// record. It asks what Superset's session now is (a cookie Superset
// emptied of its user is enough; otherwise WhoAmI) and, if nobody is
// signed in there, destroys the record; the caller clears the cookie. It
// reports whether it did; when Superset cannot say, the session is left
// alone.
func (v *Vault) endedUpstream(ctx context.Context, req *http.Request, sess *Session, cookies []*http.Cookie, now time.Time) bool {
	jar := sess.Jar.Clone()
	jar.apply(cookies, now)
	after, _ := jar.Value(flaskCookieName, now)
	anonymous := after == ""
	if !anonymous {
		if fs, err := flaskcookie.Decode(after, v.secret, flaskMaxAge, now); err == nil {
			uid, _ := fs.UserID()
			anonymous = uid == ""
		}
	}
	// A cookie that still names a user proves nothing: Superset 6.1.0
	// keeps a disabled or deleted user's cookie as it was and only
	// refuses to load the user (seen live). Superset is asked.
	if !anonymous && v.whoAmI != nil {
		uid, _, err := v.whoAmI(ctx, jar)
		if err != nil {
			v.log.Warn("cannot tell whether Superset ended a session; it is kept", zap.Error(err))
			return false
		}
		anonymous = uid == ""
	}
	if !anonymous {
		return false
	}
	if err := v.destroy(ctx, sess.hid, sess.UserID, reasonUpstreamLogout); err != nil {
		v.log.Warn("a session Superset ended was not destroyed", zap.Error(err))
		return false
	}
	v.emit(ctx, req, audit.Event{Event: "session.ended", Actor: actor(sess), Subject: subject(sess), Outcome: audit.OutcomeSuccess,
		Reason: reasonUpstreamLogout})
	return true
}

// reasonUpstreamLogout: Superset itself no longer saw the session as
// signed in.
const reasonUpstreamLogout = "upstream_logout"

// outcome is what a response did to Superset's session cookie.
type outcome struct {
	before, after string // the cookie's value before and after the answer
	setsSession   bool   // the answer set the cookie (maybe to the same value)
	loginRoute    bool   // the request is a sign-in route (superset.LoginMethod)
}

// identify decides who holds jar after a response, from what Superset
// did rather than from the route: a Flask (client-side) cookie names its
// user; an opaque one (SESSION_SERVER_SIDE, whose sid survives a login,
// docs/superset-6.1.md §11) is asked about with WhoAmI whenever the answer
// may have changed its holder: a new or changed sid, a sign-in route, or
// an anonymous session whose sid Superset set again (FAB signs in on any
// path Superset routes to a login view). A signed-in session whose cookie
// did not change costs nothing here. known is false only without WhoAmI,
// when a sign-in route may have changed the identity unseen (the caller
// rotates anyway). err means Superset could not say (WhoAmI failed).
func (v *Vault) identify(ctx context.Context, sess *Session, o outcome, jar Jar, now time.Time) (uid, uname string, known bool, err error) {
	var cur Session
	if sess != nil {
		cur = *sess
	}
	if o.after == "" {
		return "", "", true, nil
	}
	if sess != nil && o.after == o.before && !o.loginRoute && (!cur.Anonymous() || !o.setsSession) {
		return cur.UserID, cur.Username, true, nil
	}
	if fs, err := flaskcookie.Decode(o.after, v.secret, flaskMaxAge, now); err == nil {
		nu, _ := fs.UserID()
		uname := cur.Username
		if nu != cur.UserID {
			uname = ""
			if nu != "" && v.whoAmI != nil {
				// Best effort, for the sessions page: the cookie only
				// holds the id.
				if wu, wn, err := v.whoAmI(ctx, jar); err == nil && wu == nu {
					uname = wn
				}
			}
		}
		return nu, uname, true, nil
	}
	if v.whoAmI == nil {
		// Nobody to ask: a sign-in route is rotated with the identity
		// unknown; anything else keeps the identity it had.
		return cur.UserID, cur.Username, !o.loginRoute, nil
	}
	wu, wn, err := v.whoAmI(ctx, jar)
	if err != nil {
		return "", "", false, err
	}
	return wu, wn, true, nil
}

// setsCookie reports whether the answer set the named cookie.
func setsCookie(cookies []*http.Cookie, name string) bool {
	for _, c := range cookies {
		if c.Name == name {
			return true
		}
	}
	return false
}

// template is a new record for the identity a response revealed. Its
// login time is when the request was sent (sent), not when Superset
// answered: a login Superset checked before a revocation or a password
// change was stamped lands before that epoch and is refused.
func (v *Vault) template(req *http.Request, uid, uname, method string, sent time.Time) Session {
	s := Session{UserID: uid, Username: uname, UserAgent: clip(req.UserAgent(), 256)}
	if ip := v.clientIP(req); ip.IsValid() {
		s.ClientIP = ip.String()
	}
	if uid != "" {
		s.LoginAt = sent
		s.AuthMethod = method
	}
	return s
}

func (v *Vault) loginEvent(ctx context.Context, req *http.Request, s *Session) {
	v.emit(ctx, req, audit.Event{Event: "login.success", Actor: actor(s), Subject: subject(s), Outcome: audit.OutcomeSuccess,
		Details: map[string]any{"method": s.AuthMethod}})
	v.obs.Login(loginKind(s.AuthMethod), "success")
}

// loginKind is the metric label of a login method: "oauth:<provider>"
// becomes "oauth", since the provider comes from the request's path.
func loginKind(method string) string {
	kind, _, _ := strings.Cut(method, ":")
	if kind == "" {
		return "unknown"
	}
	return kind
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

// allowAnonymous applies the anonymous-session limit: the shared one of
// the rate limits when configured, else the per-replica one.
func (v *Vault) allowAnonymous(ctx context.Context, req *http.Request, now time.Time) bool {
	if v.anonLimiter != nil {
		return v.anonLimiter.AllowAnonymous(ctx, v.clientIP(req))
	}
	return v.limiter.allow(v.clientIP(req), now)
}
