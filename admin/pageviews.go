package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/ui"
)

// The admin page's routes beyond the list (see Page).
const (
	pathUser         = PagePath + "users/"       // + id: one user's view
	pathConfirm      = PagePath + "confirm"      // GET: the confirmation step
	pathEndSession   = PagePath + "sessions/end" // POST handle, user_id
	pathEndAll       = PagePath + "sessions/end-all"
	pathRevokeGuests = PagePath + "guest-tokens/revoke" // POST dashboard (uuid or "all")
)

// maxUserRevocations bounds the revocations read to find one user's.
const maxUserRevocations = 500

func (p *page) frame(pr Principal, title string, current ui.Nav) ui.Frame {
	user := pr.Username
	if user == "" {
		user = "user " + pr.UserID
	}
	return ui.Frame{Title: title, User: user, Links: ui.NavLinks(current, true, p.extra...)}
}

// namesOf maps the owners of toks to their usernames.
func namesOf(toks []AccessToken) map[string]string {
	m := map[string]string{}
	for _, t := range toks {
		if t.OwnerName != "" {
			m[t.OwnerID] = t.OwnerName
		}
	}
	return m
}

// back is where a successful POST returns: the user view it came from
// (field back, a user id) or the list.
func (p *page) back(r *http.Request) string {
	if id := r.PostForm.Get("back"); epoch.ValidUserID(id) {
		return pathUser + id
	}
	return PagePath
}

// validUUID reports whether s has the shape of an embed uuid.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// search fills d with the users whose username contains ?q=.
func (p *page) search(r *http.Request, d *pageData) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || p.dir == nil {
		return
	}
	d.Query, d.Searched = q, true
	if !ValidUserRef(q) {
		d.SearchError = "Type part of a username (at most 64 characters)."
		return
	}
	users, err := p.dir.SearchUsers(r.Context(), r, q)
	if err != nil {
		p.h.log.Warn("admin page: user search", zap.Error(err))
		d.SearchError = "Superset could not be asked for its users just now; try again."
		return
	}
	d.Found = users
}

// userData is the input of user.html.
type userData struct {
	Frame       ui.Frame
	UserID      string
	Username    string
	Email       string
	Active      bool
	Known       bool
	Sessions    []session.Info
	Tokens      []AccessToken
	Revocations []epoch.Revocation
	HasSessions bool
	Done, Error string
}

// userView shows one user: their sessions, access tokens and revocations.
func (p *page) userView(w http.ResponseWriter, r *http.Request, id string) {
	ev := p.event(r, "admin.page.view")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	if !epoch.ValidUserID(id) {
		p.settle(r.Context(), &ev, nil)
		p.message(w, http.StatusNotFound, messageData{Title: "Not found", Text: "There is no such user page; pick the user from the search on the admin page."})
		return
	}
	ev.Subject = "user:" + id
	d, err := p.userData(r, id)
	p.settle(r.Context(), &ev, err)
	if err != nil {
		p.fail(w, err)
		return
	}
	d.Frame = p.frame(pr, userLabel(d.Username, id), ui.NavAdmin)
	d.Done = p.flash(r.URL.Query())
	if m := p.takeFlash(w, r); m != "" {
		d.Done = m
	}
	p.renderTemplate(w, "user.html", http.StatusOK, d)
}

func userLabel(name, id string) string {
	if name != "" {
		return name
	}
	return "user " + id
}

func (p *page) userData(r *http.Request, id string) (userData, error) {
	ctx := r.Context()
	d := userData{UserID: id, HasSessions: p.h.sess != nil}
	if p.dir != nil {
		n, _ := strconv.Atoi(id)
		u, err := p.dir.User(ctx, r, n)
		switch {
		case err == nil:
			d.Username, d.Email, d.Active, d.Known = u.Username, u.Email, u.Active, true
		case errors.Is(err, client.ErrUnknownUser):
			// Deleted in Superset: what the gateway holds still shows.
		default:
			p.h.log.Warn("admin page: user lookup", zap.String("user_id", id), zap.Error(err))
		}
	}
	if p.h.sess != nil {
		ss, err := p.h.sess.ListUserSessions(ctx, id)
		if err != nil {
			return d, fmt.Errorf("admin page: sessions: %w", err)
		}
		d.Sessions = ss
	}
	toks, err := p.toks.ListAll(ctx)
	if err != nil {
		return d, fmt.Errorf("admin page: list access tokens: %w", err)
	}
	toks = slices.DeleteFunc(toks, func(t AccessToken) bool { return t.OwnerID != id })
	if d.Tokens, err = EnforcedStatus(ctx, p.h.ep, toks); err != nil {
		return d, fmt.Errorf("admin page: %w", err)
	}
	for _, t := range d.Tokens {
		if d.Username == "" && t.OwnerName != "" {
			d.Username = t.OwnerName
		}
	}
	for _, s := range d.Sessions {
		if d.Username == "" && s.Username != "" {
			d.Username = s.Username
		}
	}
	revs, err := p.h.ep.Revocations(ctx, maxUserRevocations)
	if err != nil {
		return d, fmt.Errorf("admin page: revocations: %w", err)
	}
	for _, rv := range revs {
		if rv.Subject == "user:"+id || rv.Subject == "global" {
			d.Revocations = append(d.Revocations, rv)
		}
	}
	return d, nil
}

// confirmData is the input of confirm.html: what is about to happen, and
// the form that does it.
type confirmData struct {
	Frame      ui.Frame
	Heading    string
	Text       string
	Action     string
	Fields     map[string]string
	Button     string
	Back       string
	NeedReason bool
}

// confirm is the step before every destructive action: a GET that only
// describes it, with the POST form that does it and a way back. It names
// things by what the admin recognises (usernames, titles, devices), never
// by ids alone.
func (p *page) confirm(w http.ResponseWriter, r *http.Request) {
	ev := p.event(r, "admin.page.view")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	q := r.URL.Query()
	user := q.Get("user_id")
	back := PagePath
	if epoch.ValidUserID(user) {
		back = pathUser + user
	} else {
		user = ""
	}
	d := confirmData{Back: back, Fields: map[string]string{}}
	if user != "" {
		d.Fields["back"] = user
	}
	name := q.Get("name")
	if !ValidUserRef(name) {
		name = ""
	}
	who := userLabel(name, user)
	bad := false
	switch q.Get("action") {
	case "token":
		id := q.Get("id")
		bad = !p.validID(id)
		d.Heading, d.Action, d.Button = "Revoke this access token?", pathRevokeToken, "Revoke token"
		d.Text = "Scripts using it are refused from now on, on every replica. This cannot be undone; its owner can create a new one."
		if tn := q.Get("token_name"); tn != "" && len(tn) <= 64 {
			d.Heading = "Revoke the access token “" + tn + "”" + ownerSuffix(user, who) + "?"
		}
		d.Fields["id"] = id
	case "session":
		h := q.Get("handle")
		bad = h == "" || len(h) > 128 || user == ""
		d.Heading, d.Action, d.Button = "End this session of "+who+"?", pathEndSession, "End session"
		d.Text = "That browser is signed out at once, on every replica. " + who + " can sign in again."
		if dev := q.Get("device"); dev != "" && len(dev) <= 200 {
			d.Text = "The session on " + dev + " is signed out at once, on every replica. " + who + " can sign in again."
		}
		d.Fields["handle"], d.Fields["user_id"] = h, user
	case "sessions":
		bad = user == ""
		d.Heading, d.Action, d.Button = "End every session of "+who+"?", pathEndAll, "End all sessions"
		d.Text = "Every browser " + who + " is signed in with through the gateway is signed out. Their API tokens and JWTs stay valid; revoke the user for that."
		d.Fields["user_id"] = user
	case "user":
		// From the user's page (user_id) or typed by name (ref), which
		// the POST resolves through Superset.
		target := user
		if target == "" {
			if ref := strings.TrimSpace(q.Get("ref")); ValidUserRef(ref) {
				target, who = ref, ref
			}
		}
		bad = target == ""
		d.Heading, d.Action, d.Button, d.NeedReason = "Revoke "+who+"?", pathRevokeUser, "Revoke user", true
		d.Text = "Ends every gateway session of " + who + " and refuses their Superset JWTs and access tokens issued before now, on every replica. They can sign in again unless they are also disabled in Superset."
		d.Fields["user_id"] = target
	case "guests":
		ref := q.Get("dashboard")
		title := q.Get("title")
		if len(title) > 200 {
			title = ""
		}
		bad = ref != "all" && !validUUID(ref)
		d.Action, d.Button = pathRevokeGuests, "Revoke guest tokens"
		if ref == "all" {
			d.Heading = "Revoke every guest token?"
			d.Text = "Every embedded dashboard, on every host page, stops until the host fetches a new guest token."
		} else {
			d.Heading = "Revoke the guest tokens of “" + cmpOr(title, ref) + "”?"
			d.Text = "Embeds of this dashboard stop until the host page fetches a new guest token; other dashboards are not affected."
		}
		d.Fields["dashboard"] = ref
	default:
		bad = true
	}
	p.settle(r.Context(), &ev, nil)
	if bad {
		p.message(w, http.StatusBadRequest, messageData{Title: "Nothing to confirm", Text: "Use the buttons of the admin page."})
		return
	}
	d.Frame = p.frame(pr, "Confirm", ui.NavAdmin)
	p.renderTemplate(w, "confirm.html", http.StatusOK, d)
}

func ownerSuffix(user, who string) string {
	if user == "" {
		return ""
	}
	return " of " + who
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// post does the confirmed session and guest-token actions.
func (p *page) post(w http.ResponseWriter, r *http.Request) {
	ev := p.event(r, eventFor(r.URL.Path))
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	var done url.Values
	_, err := p.formValue(w, r, &ev, "user_id")
	if err == nil {
		switch r.URL.Path {
		case pathEndSession:
			done, err = p.doEndSession(r.Context(), &ev, r.PostForm.Get("handle"))
		case pathEndAll:
			done, err = p.doEndAll(r.Context(), &ev, strings.TrimSpace(r.PostForm.Get("user_id")))
		case pathRevokeGuests:
			done, err = p.doRevokeGuests(r.Context(), &ev, strings.TrimSpace(r.PostForm.Get("dashboard")))
		}
	}
	p.finish(w, r, pr, &ev, err, done, pageData{})
}

func (p *page) doEndSession(ctx context.Context, ev *audit.Event, handle string) (url.Values, error) {
	if p.h.sess == nil {
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "Sessions are not available on this gateway."}
	}
	if handle == "" || len(handle) > 128 {
		ev.Reason = "bad session id"
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "That is not a session; use the End buttons of the user's page."}
	}
	ev.Subject = "session:" + handle
	err := p.h.sess.EndSessionAsAdmin(ctx, handle)
	if isNotFound(err) {
		// Gone already (signed out, expired): the result the admin wanted.
		return url.Values{"done": {"session"}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("admin page: end session: %w", err)
	}
	return url.Values{"done": {"session"}}, nil
}

func (p *page) doEndAll(ctx context.Context, ev *audit.Event, id string) (url.Values, error) {
	if p.h.sess == nil {
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "Sessions are not available on this gateway."}
	}
	if !epoch.ValidUserID(id) {
		ev.Reason = ReasonBadUserRef
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "That is not a user; pick one with the search."}
	}
	ev.Subject = "user:" + id
	ss, err := p.h.sess.ListUserSessions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("admin page: sessions: %w", err)
	}
	n := 0
	for _, s := range ss {
		err := p.h.sess.EndSessionAsAdmin(ctx, s.Handle)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("admin page: end session: %w", err)
		}
		n++
	}
	ev.Details["count"] = n
	return url.Values{"done": {"sessions"}, "n": {strconv.Itoa(n)}}, nil
}

func (p *page) doRevokeGuests(ctx context.Context, ev *audit.Event, ref string) (url.Values, error) {
	if p.h.guests == nil {
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "Guest-token revocation is not enabled on this gateway."}
	}
	var err error
	switch {
	case ref == "all":
		ev.Event, ev.Subject = "admin.guest_tokens.revoke_all", "guest-tokens:all"
		_, err = p.h.guests.RevokeAll(ctx, p.h.now())
	case validUUID(ref):
		ev.Subject = "dashboard:" + ref
		_, err = p.h.guests.RevokeDashboardRef(ctx, ref, p.h.now())
	default:
		ev.Reason = "bad dashboard"
		return nil, &HTTPError{Code: http.StatusBadRequest, Msg: "Pick an embedded dashboard from the list."}
	}
	if err != nil {
		return nil, guestTokenError(err)
	}
	return url.Values{"done": {"guests"}, "id": {ref}}, nil
}

// renderTemplate writes one of the page's templates, rendered in full
// before anything is sent.
func (p *page) renderTemplate(w http.ResponseWriter, name string, status int, data any) {
	var b strings.Builder
	if err := p.tmpl[name].Execute(&b, data); err != nil {
		p.fail(w, fmt.Errorf("admin page: render: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}
