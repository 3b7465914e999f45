package session

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/ui"
)

//go:embed templates/sessions.html
var pageFS embed.FS

func parsePage() (*template.Template, error) {
	t, err := ui.Layout("sessions.html", template.FuncMap{
		"when":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"browser": browserName,
	})
	if err == nil {
		t, err = t.ParseFS(pageFS, "templates/sessions.html")
	}
	if err != nil {
		return nil, fmt.Errorf("session: page template: %w", err)
	}
	return t, nil
}

// Info describes one session for the /-/sessions page and the admin API.
type Info struct {
	Handle     string    `json:"handle"`
	UserID     string    `json:"user_id"`
	Username   string    `json:"username,omitempty"`
	AuthMethod string    `json:"auth_method,omitempty"`
	LoginAt    time.Time `json:"login_at"`
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"last_seen"`
	ClientIP   string    `json:"client_ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Current    bool      `json:"current,omitempty"` // the caller's own session
}

func (s *Session) info() Info {
	return Info{Handle: s.hid, UserID: s.UserID, Username: s.Username, AuthMethod: s.AuthMethod,
		LoginAt: s.LoginAt, Created: s.Created, LastSeen: s.LastSeen, ClientIP: s.ClientIP, UserAgent: s.UserAgent}
}

// SignedIn returns the live, signed-in session of the gateway cookie on r
// whose login is after its user's and the global invalidation epoch
// (Options.Epochs): the one answer to "who is signed in here" for every
// gateway page (/-/sessions, /-/tokens, /-/admin/), the same the proxied
// routes get from Authenticate and the revocation stage. A revoked session
// is destroyed on sight, before anything could extend it. Errors:
// ErrBadCookie, ErrNotFound, ErrExpired, ErrAnonymous, ErrRevoked (all
// meaning "not signed in"; only ErrRevoked asks the caller to clear the
// cookie), or a store error (answer 503, keep the cookie).
func (v *Vault) SignedIn(r *http.Request) (*Session, error) {
	ck, err := r.Cookie(v.codec.Name())
	if err != nil {
		return nil, fmt.Errorf("%w: absent", ErrBadCookie)
	}
	ctx, now := r.Context(), v.now()
	e, err := v.sessionFor(ctx, ck.Value, now, false)
	if err != nil {
		return nil, err
	}
	s := e.s
	if s.Anonymous() {
		return nil, ErrAnonymous
	}
	if v.epochs != nil {
		d, err := v.epochs.IssuedAfter(ctx, s.UserID, s.LoginAt, time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("session: epoch: %w", err)
		}
		if !d.Allow {
			v.endRevoked(ctx, r, s, d.Reason)
			return nil, ErrRevoked
		}
	}
	// Admitted: now its last_seen may move.
	if e, err = v.check(ctx, e, now, true); err != nil {
		return nil, err
	}
	return e.s, nil
}

// ListUserSessions returns the live sessions of a user, most recently seen
// first. Index entries whose record is gone are pruned.
func (v *Vault) ListUserSessions(ctx context.Context, userID string) ([]Info, error) {
	if userID == "" {
		return nil, nil
	}
	sctx, cancel := v.storeCtx(ctx)
	defer cancel()
	hids, err := v.st.SMembers(sctx, UserIndexKey(userID))
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	now := v.now()
	var out []Info
	var stale []string
	for _, hid := range hids {
		b, err := v.st.Get(sctx, recordKey(hid))
		if errors.Is(err, store.ErrNotFound) {
			stale = append(stale, hid)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("session: list: %w", err)
		}
		s, err := parseRecord(hid, b)
		if err != nil || s.UserID != userID || v.expiry(s, s.LastSeen.UnixMilli(), now) != "" {
			continue
		}
		out = append(out, s.info())
	}
	if len(stale) > 0 {
		if err := v.st.SRem(sctx, UserIndexKey(userID), stale...); err != nil {
			v.log.Warn("session index prune failed", zap.Error(err))
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return b.LastSeen.Compare(a.LastSeen) })
	return out, nil
}

// EndSession destroys the session with handle if it belongs to userID.
// Errors: ErrNotFound, ErrNotOwner, or a store error.
func (v *Vault) EndSession(ctx context.Context, userID, handle string) error {
	s, err := v.recordByHandle(ctx, handle)
	if err != nil {
		return err
	}
	if s.UserID == "" || s.UserID != userID {
		return ErrNotOwner
	}
	return v.destroy(ctx, handle, userID, "ended")
}

// EndSessionAsAdmin destroys the session with handle whoever owns it (the
// admin API's power), on every replica. Errors: ErrNotFound or a store error.
func (v *Vault) EndSessionAsAdmin(ctx context.Context, handle string) error {
	s, err := v.recordByHandle(ctx, handle)
	if err != nil {
		return err
	}
	return v.destroy(ctx, handle, s.UserID, "ended")
}

// recordByHandle reads a session record by its public handle, bypassing the
// cache. Errors: ErrNotFound (also for a malformed handle or record) or a
// store error.
func (v *Vault) recordByHandle(ctx context.Context, handle string) (*Session, error) {
	if !validHandle(handle) {
		return nil, ErrNotFound
	}
	sctx, cancel := v.storeCtx(ctx)
	b, err := v.st.Get(sctx, recordKey(handle))
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: end: %w", err)
	}
	s, err := parseRecord(handle, b)
	if err != nil {
		return nil, ErrNotFound
	}
	return s, nil
}

// EndOtherSessions destroys every session of userID except keep (a handle;
// "" ends them all, as an admin would) and returns how many it ended.
func (v *Vault) EndOtherSessions(ctx context.Context, userID, keep string) (int, error) {
	list, err := v.ListUserSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, in := range list {
		if in.Handle == keep {
			continue
		}
		if err := v.destroy(ctx, in.Handle, userID, "ended"); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// SessionsPage serves the /-/sessions page: GET lists the caller's
// sessions; POST /-/sessions/end (form field "session", a handle) ends one;
// POST /-/sessions/end-others ends all but the caller's. Mount it for
// "/-/sessions" and "/-/sessions/" under proxy.Options.Internal. POSTs are
// refused cross-origin (http.CrossOriginProtection), so the page needs no
// JavaScript and no token. Callers who are not signed in are sent to the
// login page. A store that cannot answer is a 503 with Retry-After: the
// gateway's styled error page for a browser, {"msg": …} for anyone else.
// Its navigation never shows the admin link; SessionsPageWith can.
func (v *Vault) SessionsPage() http.Handler {
	return v.SessionsPageWith(PageOptions{})
}

// PageOptions configure SessionsPageWith.
type PageOptions struct {
	// Nav builds the gateway navigation for the signed-in caller of r on
	// page current; the wiring decides there whether r's user gets the
	// admin link (the admin page's own decision, not a copy of it). nil
	// means ui.NavLinks(current, false).
	Nav func(r *http.Request, current ui.Nav) []ui.Link
}

// SessionsPageWith is SessionsPage with options.
func (v *Vault) SessionsPageWith(o PageOptions) http.Handler {
	if o.Nav == nil {
		o.Nav = func(_ *http.Request, current ui.Nav) []ui.Link { return ui.NavLinks(current, false) }
	}
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { v.servePage(w, r, o) }))
}

func (v *Vault) servePage(w http.ResponseWriter, r *http.Request, o PageOptions) {
	w.Header().Set("Cache-Control", "no-store")
	cur, err := v.SignedIn(r)
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrExpired) || errors.Is(err, ErrBadCookie):
		// Not signed in, or no longer: a revoked session is answered as
		// none, and its cookie goes.
		if errors.Is(err, ErrRevoked) {
			http.SetCookie(w, v.codec.Cookie(""))
		}
		http.Redirect(w, r, v.loginPath+"?next="+url.QueryEscape("/-/sessions"), http.StatusFound)
		return
	default:
		v.log.Warn("sessions page: store unavailable", zap.Error(err))
		v.pageUnavailable(w, r)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/-/sessions" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		v.renderPage(w, r, cur, o)
	case path == "/-/sessions/end" && r.Method == http.MethodPost:
		handle := r.PostFormValue("session")
		err := v.EndSession(r.Context(), cur.UserID, handle)
		switch {
		case err == nil:
			v.emit(r.Context(), r, audit.Event{Event: "session.ended", Actor: actor(cur), Subject: "session:" + short(handle), Outcome: audit.OutcomeSuccess, Reason: "user"})
			if handle == cur.hid {
				http.SetCookie(w, v.codec.Cookie(""))
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotOwner):
			// Already gone, or not theirs: the same answer, so the page
			// does not tell whether someone else's handle exists.
		default:
			v.log.Warn("sessions page: end failed", zap.Error(err))
			v.pageUnavailable(w, r)
			return
		}
		http.Redirect(w, r, "/-/sessions", http.StatusSeeOther)
	case path == "/-/sessions/end-others" && r.Method == http.MethodPost:
		n, err := v.EndOtherSessions(r.Context(), cur.UserID, cur.hid)
		if err != nil {
			v.log.Warn("sessions page: end others failed", zap.Error(err))
			v.pageUnavailable(w, r)
			return
		}
		v.emit(r.Context(), r, audit.Event{Event: "session.ended", Actor: actor(cur), Subject: "user:" + cur.UserID, Outcome: audit.OutcomeSuccess,
			Reason: "user_others", Details: map[string]any{"count": n}})
		http.Redirect(w, r, "/-/sessions", http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		v.errs.Answer(w, r, ui.ErrorPage{Status: http.StatusMethodNotAllowed, Heading: "Not a page action",
			What: "This address takes only the sessions page's own buttons and links.",
			Do:   "Go back to the sessions page and use its buttons."})
	}
}

func (v *Vault) renderPage(w http.ResponseWriter, r *http.Request, cur *Session, o PageOptions) {
	list, err := v.ListUserSessions(r.Context(), cur.UserID)
	if err != nil {
		v.log.Warn("sessions page: list failed", zap.Error(err))
		v.pageUnavailable(w, r)
		return
	}
	for i := range list {
		list[i].Current = list[i].Handle == cur.hid
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	user := cmpOr(cur.Username, "user "+cur.UserID)
	if err := v.page.Execute(w, struct {
		Frame    ui.Frame
		User     string
		Sessions []Info
	}{ui.Frame{Title: "Your sessions", User: user, Links: o.Nav(r, ui.NavSessions)}, user, list}); err != nil {
		v.log.Warn("sessions page: render failed", zap.Error(err))
	}
}

// pageUnavailable answers a page request the store could not serve: 503
// with Retry-After, the styled error page for a browser and Superset's
// {"msg": …} JSON for anyone else. The cause is in the log only.
func (v *Vault) pageUnavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", v.retryAfter)
	v.errs.Answer(w, r, ui.ErrorPage{Status: http.StatusServiceUnavailable, Heading: "Temporarily unavailable",
		What: "The gateway cannot read its session store right now; nothing was changed.",
		Do:   "Nothing is wrong with your account. Wait a few seconds and reload the page.", RetryAfter: v.retryAfter})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Device names the browser and system of a User-Agent in a few words
// ("Chrome on Linux"), for the pages that list sessions.
func Device(userAgent string) string { return browserName(userAgent) }

// browserName gives a short, human name for a User-Agent.
func browserName(ua string) string {
	type rule struct{ token, name string }
	browser := "Unknown browser"
	for _, r := range []rule{{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"}, {"python-requests", "Python requests"}, {"Go-http-client", "Go HTTP client"}} {
		if strings.Contains(ua, r.token) {
			browser = r.name
			break
		}
	}
	for _, r := range []rule{{"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"}} {
		if strings.Contains(ua, r.token) {
			return browser + " on " + r.name
		}
	}
	return browser
}
