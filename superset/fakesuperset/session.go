package fakesuperset

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

const cookieName = "session"

// reqState is one request's view of Flask's globals: the session, whether it
// changed, and who the caller is (Flask-Login's current_user).
type reqState struct {
	now      time.Time
	sess     flaskcookie.Session
	modified bool
	sid      string // server-side session id, "" if none yet
	stored   bool   // sid names a stored session
	user     *User  // session user (FAB load_user: exists and active), nil if anonymous
	guest    *guestjwt.Claims
	jwtUser  *User // set by protect after a Bearer JWT verified
	master   bool  // Options.Master (master.go)
}

func (s *reqState) set(k string, v any) { s.sess[k] = v; s.modified = true }

func (s *reqState) del(k string) {
	if _, ok := s.sess[k]; ok {
		delete(s.sess, k)
		s.modified = true
	}
}

// load reads the session cookie the way Flask does: anything that does not
// verify is an empty session, never an error.
func (f *Fake) load(r *http.Request) *reqState {
	st := &reqState{now: f.opt.Now(), sess: flaskcookie.Session{}}
	c, err := r.Cookie(cookieName)
	if err == nil && c.Value != "" {
		if f.opt.ServerSideSessions {
			f.mu.Lock()
			enc, ok := f.sessions[c.Value]
			f.mu.Unlock()
			if ok {
				if s, err := flaskcookie.Decode(enc, f.opt.SecretKey, 0, st.now); err == nil {
					st.sess, st.sid, st.stored = s, c.Value, true
				}
			}
		} else if s, err := flaskcookie.Decode(c.Value, f.opt.SecretKey, SessionLifetime, st.now); err == nil {
			st.sess = s
		}
	}
	if id, ok := st.sess.UserID(); ok {
		st.user = f.loadUser(id)
	}
	if f.opt.Master {
		st.master = true
		f.enforceSessionEpoch(st)
	}
	if st.user == nil {
		// Flask-Login's request_loader (EMBEDDED_SUPERSET): a guest token is
		// looked at only when no session user loaded.
		if tok := guestTokenOf(r); tok != "" {
			if g, err := f.guest.Verify(tok, st.now); err == nil && !(f.opt.Master && f.guestRevoked(g)) {
				st.guest = g
			}
		}
	}
	return st
}

func guestTokenOf(r *http.Request) string {
	if t := r.Header.Get("X-GuestToken"); t != "" {
		return t
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return r.PostFormValue("guest_token")
	}
	return ""
}

// loadUser is FAB's load_user: the user must exist and be active.
func (f *Fake) loadUser(id string) *User {
	n, err := strconv.Atoi(id)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[n]
	if !ok || !u.Active {
		return nil
	}
	c := *u
	return &c
}

// save writes the session back like Flask's SecureCookieSessionInterface
// (only when modified; an emptied session deletes the cookie) or like
// flask-session (permanent sessions refreshed on every request).
func (f *Fake) save(w http.ResponseWriter, st *reqState) {
	if f.opt.ServerSideSessions {
		f.saveServerSide(w, st)
		return
	}
	if !st.modified {
		return
	}
	if len(st.sess) == 0 {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
		return
	}
	v, err := flaskcookie.Encode(st.sess, f.opt.SecretKey, st.now)
	if err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func (f *Fake) saveServerSide(w http.ResponseWriter, st *reqState) {
	// Stored serialised (as flask-session stores msgpack), so requests
	// never share nested values.
	enc, err := flaskcookie.Encode(st.sess, f.opt.SecretKey, st.now)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(st.sess) == 0 {
		if st.stored {
			delete(f.sessions, st.sid)
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: -1})
		}
		return
	}
	if st.sid == "" {
		st.sid = randomToken(32) // secrets.token_urlsafe(32)
	}
	f.sessions[st.sid] = enc
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: st.sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Expires: st.now.Add(SessionLifetime).UTC(),
	})
}

// ensureCSRF is Flask-WTF's generate_csrf: a raw token in the session, the
// signed form handed out.
func (f *Fake) ensureCSRF(st *reqState) string {
	raw := st.sess.CSRFToken()
	if raw == "" {
		var b [64]byte
		_, _ = rand.Read(b[:])
		sum := sha1.Sum(b[:])
		raw = hex.EncodeToString(sum[:])
		st.set("csrf_token", raw)
	}
	return flaskcookie.SignCSRF(raw, f.opt.SecretKey, st.now)
}

// csrfError returns Flask-WTF's failure reason, or "" when the request's
// token (form field csrf_token, or header X-CSRFToken / X-CSRF-Token)
// matches the session's.
func (f *Fake) csrfError(r *http.Request, st *reqState) string {
	tok := r.Header.Get("X-CSRFToken")
	if tok == "" {
		tok = r.Header.Get("X-CSRF-Token")
	}
	if tok == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		tok = r.PostFormValue("csrf_token")
	}
	if tok == "" {
		return "The CSRF token is missing."
	}
	raw := st.sess.CSRFToken()
	if raw == "" {
		return "The CSRF session token is missing."
	}
	got, err := flaskcookie.VerifyCSRF(tok, f.opt.SecretKey, CSRFTimeLimit, st.now)
	if err != nil {
		if strings.Contains(err.Error(), "expired") {
			return "The CSRF token has expired."
		}
		return "The CSRF token is invalid."
	}
	if got != raw {
		return "The CSRF tokens do not match."
	}
	return ""
}

// loginUser is Flask-Login's login_user(user, remember=False): the session
// is updated in place, never regenerated.
func (st *reqState) loginUser(r *http.Request, u *User) {
	st.set("_user_id", strconv.Itoa(u.ID))
	st.set("_fresh", true)
	st.set("_id", sessionIdentifier(r))
	if st.master {
		st.stampLoginTime()
	}
	st.user = u
}

// sessionIdentifier is Flask-Login 0.6.3's _create_identifier: the hex
// SHA-512 of f"{addr!r}|{ua!r}" where both are Python bytes (or None):
// addr is the first X-Forwarded-For entry, else the socket address.
func sessionIdentifier(r *http.Request) string {
	addr := "None"
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		first, _, _ := strings.Cut(xff[0], ",")
		addr = pyBytesRepr(strings.TrimSpace(first))
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		addr = pyBytesRepr(host)
	}
	ua := "None"
	if v := r.Header.Values("User-Agent"); len(v) > 0 {
		ua = pyBytesRepr(v[0])
	}
	sum := sha512.Sum512([]byte(addr + "|" + ua))
	return hex.EncodeToString(sum[:])
}

// pyBytesRepr is Python's repr() of s.encode("utf-8").
func pyBytesRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteString("b")
	b.WriteByte(q)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
