package admin

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/session"
	"github.com/superset-gateway/superset-gateway/superset/client"
	"github.com/superset-gateway/superset-gateway/ui"
)

//go:embed templates/*.html
var pageFS embed.FS

// PagePath is the admin page. Mount the handler Page returns for PagePath
// and for "/-/admin" (redirected here); the API keeps APIPrefix, the
// longer pattern, in the same http.ServeMux.
const PagePath = "/-/admin/"

// AccessToken is one scoped access token as the manager describes it;
// only "active" ones get a Revoke button.
type AccessToken = accesstoken.Info

// AccessTokens is what the admin page and API need from the access-token
// feature; *accesstoken.Manager satisfies it.
type AccessTokens interface {
	// ListAll returns every user's tokens, newest first (empty, not an
	// error, when there are none).
	ListAll(ctx context.Context) ([]AccessToken, error)
	// Revoke revokes token id on behalf of actor by ("user:42"); revoking
	// a revoked token is no error. Errors wrap a not-found error when there is
	// no such token, store.ErrUnavailable when the store cannot answer.
	Revoke(ctx context.Context, id, by string) error
}

// PageOptions configure Handler.Page. AccessTokens and ValidTokenID are
// required.
type PageOptions struct {
	AccessTokens AccessTokens
	// ValidTokenID reports whether a form's id has the shape of a token id
	// (accesstoken.ValidID), so a malformed one is refused with 400 before
	// the store is asked.
	ValidTokenID func(id string) bool
	// LoginPath is where visitors who are not signed in are sent, with
	// ?next=/-/admin/; "" means "/login/".
	LoginPath string
	// Revocations is how many recent revocations are listed; 0 means 20.
	Revocations int
	// Directory searches Superset's users and embedded dashboards with the
	// admin's own credentials; nil hides the search (ids and usernames
	// can still be typed into the revoke form) and the dashboard list.
	Directory Directory
	// Extra are admin-only pages other features add to the navigation.
	Extra []ui.Link
	// Flashes keeps the message after an action in a cookie
	// (NewFlashStore); nil puts it in the redirect's query string.
	Flashes sessions.Store
	// Extensions, when set, lists the extension policy's verdicts and
	// advisory state in their own section (nil: no section).
	Extensions func() Extensions
	// Overview, if set, serves OverviewPath: the last hour drawn
	// server-side. nil answers 404 there.
	Overview OverviewSource
}

// Extensions is the extension policy as the admin page shows it.
type Extensions struct {
	AdvisoriesOK     bool
	AdvisoriesNewest time.Time
	AdvisoryError    string
	FailClosed       bool
	Verdicts         []ExtensionVerdict
}

// ExtensionVerdict is one extension id's verdict.
type ExtensionVerdict struct {
	ID, Version, Source string
	Allowed             bool
	Reasons             []string
	Seen                time.Time
}

// Page returns the admin HTML page for browsers. It shares h's admin check
// (RoleChecker and admin.roles), Epochs, audit log and request info, but
// not admin API tokens: the page is for a signed-in Superset user whose
// roles include one of admin.roles. Visitors who are not signed in are
// sent to the login page, a signed-in non-admin gets 403, and an identity
// that cannot be established (store or Superset down) 503 with
// Retry-After.
//
// Routes, all relative to the mount point and answered no-store:
//
//	GET  /-/admin/               every user's access tokens, a form to revoke a
//	                             user, and the most recent revocations
//	POST /-/admin/tokens/revoke  field id: revoke that access token
//	POST /-/admin/users/revoke   fields user_id, reason: stamp the user's epoch
//	                             (the API's POST users/{id}/revoke)
//
// A successful POST answers 303 to the page with ?done=; bad input is 400
// and an unknown token 404, both shown on the page. POSTs are refused
// cross-origin (http.CrossOriginProtection) before anyone is identified,
// so the forms need neither JavaScript nor a form token. Every action and
// every refusal is audited under the API's event names
// (admin.access_tokens.revoke, admin.user.revoke; admin.page.view for
// GET) with the actor "user:<id>".
func (h *Handler) Page(o PageOptions) (http.Handler, error) {
	if o.AccessTokens == nil || o.ValidTokenID == nil {
		return nil, fmt.Errorf("%w: PageOptions.AccessTokens and ValidTokenID are required", ErrConfig)
	}
	if h.rc == nil {
		// Without it nobody could ever be admitted; say so at start.
		return nil, fmt.Errorf("%w: the admin page needs Options.RoleChecker", ErrConfig)
	}
	funcs := template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"join":   strings.Join,
		"device": session.Device,
		"uid":    func(subject string) string { return strings.TrimPrefix(subject, "user:") },
	}
	tmpl := map[string]*template.Template{}
	for _, name := range []string{"admin.html", "user.html", "confirm.html", "message.html"} {
		t, err := ui.Layout(name, funcs)
		if err == nil {
			t, err = t.ParseFS(pageFS, "templates/"+name, "templates/parts.html")
		}
		if err != nil {
			return nil, fmt.Errorf("admin: page template %s: %w", name, err)
		}
		tmpl[name] = t
	}
	p := &page{h: h, toks: o.AccessTokens, validID: o.ValidTokenID, login: o.LoginPath, nrev: o.Revocations,
		tmpl: tmpl, dir: o.Directory, extra: o.Extra, flashes: o.Flashes, exts: o.Extensions, ov: o.Overview}
	var err error
	if p.ovTmpl, err = parseOverview(); err != nil {
		return nil, err
	}
	if p.login == "" {
		p.login = "/login/"
	}
	if p.nrev <= 0 {
		p.nrev = 20
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(p.crossOrigin))
	return cop.Handler(p), nil
}

// pageRoot is PagePath without its slash; it only redirects.
const pageRoot = "/-/admin"

const (
	pathRevokeToken = PagePath + "tokens/revoke"
	pathRevokeUser  = PagePath + "users/revoke"
)

type page struct {
	h       *Handler
	toks    AccessTokens
	validID func(string) bool
	login   string
	nrev    int
	tmpl    map[string]*template.Template
	dir     Directory
	extra   []ui.Link
	flashes sessions.Store
	exts    func() Extensions
	ov      OverviewSource
	ovTmpl  *template.Template
}

// pageData is the template's input.
type pageData struct {
	Frame       ui.Frame
	Admin       string
	Tokens      []AccessToken
	Revocations []epoch.Revocation
	NRev        int
	Done        string
	Error       string
	// Form keeps what was typed into the revoke-a-user form after a 400.
	Form struct{ UserID, Reason string }
	// Query is the user search, Found its answer, Searched whether one
	// was made, SearchError why it failed.
	Query       string
	Searched    bool
	Found       []client.User
	SearchError string
	// Dashboards are the embedded dashboards (guest-token revocation),
	// DashboardsError why they could not be listed.
	Dashboards      []client.EmbeddedDashboardInfo
	DashboardsError string
	HasDirectory    bool
	GuestsEnabled   bool
	// Names maps user ids to usernames for the revocations table.
	Names map[string]string
	// Extensions is nil when the extension policy is off.
	Extensions *Extensions
}

// messageData is the input of the "message" template (403, 404, 5xx).
type messageData struct {
	Frame       ui.Frame
	Title, Text string
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch r.URL.Path {
	case pageRoot:
		if !get {
			p.notAllowed(w, "GET, HEAD")
			return
		}
		http.Redirect(w, r, PagePath, http.StatusMovedPermanently)
	case PagePath:
		if !get {
			p.notAllowed(w, "GET, HEAD")
			return
		}
		p.view(w, r)
	case OverviewPath:
		if !get {
			p.notAllowed(w, "GET, HEAD")
			return
		}
		p.overview(w, r)
	case pathRevokeToken:
		if r.Method != http.MethodPost {
			p.notAllowed(w, http.MethodPost)
			return
		}
		p.revokeToken(w, r)
	case pathRevokeUser:
		if r.Method != http.MethodPost {
			p.notAllowed(w, http.MethodPost)
			return
		}
		p.revokeUser(w, r)
	case pathConfirm:
		if !get {
			p.notAllowed(w, "GET, HEAD")
			return
		}
		p.confirm(w, r)
	case pathEndSession, pathEndAll, pathRevokeGuests:
		if r.Method != http.MethodPost {
			p.notAllowed(w, http.MethodPost)
			return
		}
		p.post(w, r)
	default:
		if id, ok := strings.CutPrefix(r.URL.Path, pathUser); ok && get {
			p.userView(w, r, id)
			return
		}
		p.message(w, http.StatusNotFound, messageData{Title: "Not found", Text: "There is no such admin page."})
	}
}

// event starts the audit event of a page request.
func (p *page) event(r *http.Request, name string) audit.Event {
	ev := audit.Event{Event: name, Actor: "anonymous", Details: map[string]any{"method": r.Method, "route": r.URL.Path}}
	if p.h.info != nil {
		ev.RequestID, ev.IP = p.h.info(r)
	}
	return ev
}

// eventFor names the audit event of a request by its path.
func eventFor(path string) string {
	switch path {
	case pathRevokeToken:
		return "admin.access_tokens.revoke"
	case pathRevokeUser:
		return "admin.user.revoke"
	case pathEndSession, pathEndAll:
		return "admin.session.end"
	case pathRevokeGuests:
		return "admin.guest_tokens.revoke"
	}
	return "admin.page.view"
}

// crossOrigin answers a POST another site's page made the admin's browser
// send. The caller is not identified: that would call Superset on the
// attacker's behalf.
func (p *page) crossOrigin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ev := p.event(r, eventFor(r.URL.Path))
	ev.Outcome, ev.Reason = audit.OutcomeDenied, "cross_origin"
	p.h.refusal(r.Context(), ev)
	p.message(w, http.StatusForbidden, messageData{Title: "Refused",
		Text: "This form was sent from another site, so nothing was changed. Use the admin page itself."})
}

// admit returns the signed-in admin, or answers for them and audits the
// refusal as ev: not signed in → the login page, not an admin → 403,
// identity unknown → 503.
func (p *page) admit(w http.ResponseWriter, r *http.Request, ev *audit.Event) (Principal, bool) {
	pr, actor, herr := p.h.userAdmin(r)
	ev.Actor = actor
	if herr == nil {
		return pr, true
	}
	ev.Outcome, ev.Reason = audit.OutcomeDenied, herr.Msg
	p.h.refusal(r.Context(), *ev)
	switch herr.Code {
	case http.StatusUnauthorized:
		http.Redirect(w, r, p.login+"?next="+url.QueryEscape(PagePath), http.StatusFound)
	case http.StatusForbidden:
		p.message(w, http.StatusForbidden, messageData{Title: "Admins only",
			Text: "You are signed in, but none of your Superset roles is an admin role of the gateway (admin.roles)."})
	default:
		p.fail(w, herr)
	}
	return Principal{}, false
}

func (p *page) view(w http.ResponseWriter, r *http.Request) {
	ev := p.event(r, "admin.page.view")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	d := pageData{Done: p.flash(r.URL.Query())}
	if m := p.takeFlash(w, r); m != "" {
		d.Done = m
	}
	p.search(r, &d)
	err := p.render(w, r, pr, http.StatusOK, d)
	p.settle(r.Context(), &ev, err)
	if err != nil {
		p.fail(w, err)
	}
}

// flash is the confirmation after a POST's redirect. It is built from
// fixed sentences and a checked id, so a crafted link cannot put words of
// its own on the page.
func (p *page) flash(q url.Values) string {
	id := q.Get("id")
	switch q.Get("done") {
	case "token":
		if p.validID(id) {
			return "Access token " + id + " revoked."
		}
	case "user":
		if epoch.ValidUserID(id) {
			return "User " + id + " revoked: their gateway sessions, Superset JWTs and access tokens issued before now are refused."
		}
	case "session":
		return "Session ended: that browser is signed out on every replica."
	case "sessions":
		if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 {
			return strconv.Itoa(n) + " sessions ended."
		}
	case "guests":
		if id == "all" {
			return "Every guest token issued before now is refused: every embedded dashboard must fetch a new one."
		}
		if validUUID(id) {
			return "Guest tokens of embedded dashboard " + id + " issued before now are refused."
		}
	}
	return ""
}

func (p *page) revokeToken(w http.ResponseWriter, r *http.Request) {
	ev := p.event(r, "admin.access_tokens.revoke")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	id, err := p.formValue(w, r, &ev, "id")
	if err == nil {
		err = p.doRevokeToken(r.Context(), &ev, id)
	}
	p.finish(w, r, pr, &ev, err, url.Values{"done": {"token"}, "id": {id}}, pageData{})
}

func (p *page) doRevokeToken(ctx context.Context, ev *audit.Event, id string) error {
	if !p.validID(id) {
		ev.Reason = "bad token id"
		return &HTTPError{Code: http.StatusBadRequest, Msg: "That is not an access-token id; use the Revoke buttons in the table."}
	}
	ev.Subject = "access_token:" + id
	err := p.toks.Revoke(ctx, id, ev.Actor)
	if isNotFound(err) {
		ev.Reason = "not_found"
		return &HTTPError{Code: http.StatusNotFound, Msg: "No access token has the id " + id + ".", Err: err}
	}
	if err != nil {
		return fmt.Errorf("admin page: revoke access token: %w", err)
	}
	return nil
}

func (p *page) revokeUser(w http.ResponseWriter, r *http.Request) {
	ev := p.event(r, "admin.user.revoke")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	var d pageData
	var u UserRef
	ref, err := p.formValue(w, r, &ev, "user_id")
	if err == nil {
		d.Form.UserID, d.Form.Reason = ref, r.PostForm.Get("reason")
		u, err = p.doRevokeUser(r.Context(), &ev, ref, d.Form.Reason)
	}
	p.finish(w, r, pr, &ev, err, url.Values{"done": {"user"}, "id": {u.ID}}, d)
}

// doRevokeUser stamps the epoch of the user ref names (an id or a
// username, ResolveUserRef) and returns who that was.
func (p *page) doRevokeUser(ctx context.Context, ev *audit.Event, ref, reason string) (UserRef, error) {
	u, why, err := ResolveUserRef(ctx, p.h.users, ref)
	if err != nil {
		ev.Reason = why
		return UserRef{}, err
	}
	id := u.ID
	ev.Subject = "user:" + id
	note := audit.CleanNote(reason)
	if note == "" {
		// The CLI insists on one too: a revocation nobody can explain
		// later is hard to review.
		ev.Reason = "reason required"
		return UserRef{}, &HTTPError{Code: http.StatusBadRequest, Msg: "Give a reason; it is kept with the revocation and in the audit log."}
	}
	ev.Note = note
	if u.Username != "" {
		ev.Details["username"] = u.Username
	}
	_, err = p.h.ep.Stamp(ctx, id, epoch.Reason{Trigger: epoch.TriggerAdmin, Actor: ev.Actor,
		RequestID: ev.RequestID, IP: ev.IP, Note: note})
	if err != nil {
		return UserRef{}, fmt.Errorf("admin page: revoke user: %w", err)
	}
	return u, nil
}

// formValue reads one field of a POSTed form, the body bounded by the
// handler's MaxBody.
func (p *page) formValue(w http.ResponseWriter, r *http.Request, ev *audit.Event, name string) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, p.h.maxBody)
	if err := r.ParseForm(); err != nil {
		ev.Reason = "bad form"
		return "", &HTTPError{Code: http.StatusBadRequest, Msg: "The form could not be read.", Err: err}
	}
	return strings.TrimSpace(r.PostForm.Get(name)), nil
}

// finish audits a POST's outcome and answers it: success goes back to the
// page (303, so reloading it does not post again), bad input and unknown
// tokens are shown on the page, anything else is 503 or 500.
func (p *page) finish(w http.ResponseWriter, r *http.Request, pr Principal, ev *audit.Event, err error, done url.Values, d pageData) {
	p.settle(r.Context(), ev, err)
	if err == nil {
		if p.setFlash(w, r, p.flash(done)) {
			http.Redirect(w, r, p.back(r), http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, p.back(r)+"?"+done.Encode(), http.StatusSeeOther)
		return
	}
	he := p.h.httpError(err)
	if he.Code != http.StatusBadRequest && he.Code != http.StatusNotFound {
		p.fail(w, he)
		return
	}
	d.Error = he.Msg
	if err := p.render(w, r, pr, he.Code, d); err != nil {
		p.fail(w, err)
	}
}

// settle records the outcome in ev and emits it. A failure without a
// reason of its own takes the fixed word of its status (store_unavailable,
// internal_error).
func (p *page) settle(ctx context.Context, ev *audit.Event, err error) {
	if err == nil {
		ev.Outcome = audit.OutcomeSuccess
	} else {
		ev.Outcome = audit.OutcomeFailure
		if ev.Reason == "" {
			ev.Reason = p.h.httpError(err).Msg
		}
	}
	p.h.emit(ctx, *ev)
}

// render writes the full page. It reads everything before writing, so a
// store failure returns an error with nothing sent yet.
func (p *page) render(w http.ResponseWriter, r *http.Request, pr Principal, status int, d pageData) error {
	toks, err := p.toks.ListAll(r.Context())
	if err != nil {
		return fmt.Errorf("admin page: list access tokens: %w", err)
	}
	// Shown as the gateway enforces them: a revoked user's tokens are
	// revoked, with no Revoke button.
	if toks, err = EnforcedStatus(r.Context(), p.h.ep, toks); err != nil {
		return fmt.Errorf("admin page: %w", err)
	}
	revs, err := p.h.ep.Revocations(r.Context(), p.nrev)
	if err != nil {
		return fmt.Errorf("admin page: revocations: %w", err)
	}
	d.Tokens, d.Revocations, d.NRev = toks, revs, p.nrev
	if p.exts != nil {
		x := p.exts()
		d.Extensions = &x
	}
	d.Admin = pr.Username
	if d.Admin == "" {
		d.Admin = "user " + pr.UserID
	}
	d.Frame = p.frame(pr, "Gateway admin", ui.NavAdmin)
	d.Names = namesOf(toks)
	d.HasDirectory, d.GuestsEnabled = p.dir != nil, p.h.guests != nil
	if p.dir != nil && p.h.guests != nil {
		ds, err := p.dir.EmbeddedDashboards(r.Context(), r)
		if err != nil {
			p.h.log.Warn("admin page: embedded dashboards", zap.Error(err))
			d.DashboardsError = "Superset could not list the embedded dashboards just now; the global revocation below still works."
		}
		d.Dashboards = ds
	}
	var b bytes.Buffer
	if err := p.tmpl["admin.html"].Execute(&b, d); err != nil {
		return fmt.Errorf("admin page: render: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
	return nil
}

// fail answers an error other than bad input: 503 with Retry-After when
// the store or the identity could not be read, else 500. The cause goes
// to the log only.
func (p *page) fail(w http.ResponseWriter, err error) {
	he := p.h.httpError(err)
	if he.Err != nil {
		p.h.log.Warn("admin page: request failed", zap.Int("status", he.Code), zap.String("msg", he.Msg), zap.Error(he.Err))
	}
	if he.Code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", p.h.retryAfter)
		p.message(w, he.Code, messageData{Title: "Temporarily unavailable",
			Text: "The gateway cannot read its store or reach Superset right now; nothing was changed. Please retry in a few seconds."})
		return
	}
	p.message(w, http.StatusInternalServerError, messageData{Title: "Something went wrong",
		Text: "The gateway could not complete this request. The details are in its log."})
}

func (p *page) notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	p.message(w, http.StatusMethodNotAllowed, messageData{Title: "Method not allowed", Text: "Use the admin page's own links and buttons."})
}

func (p *page) message(w http.ResponseWriter, status int, m messageData) {
	var b bytes.Buffer
	if m.Frame.Title == "" {
		m.Frame.Title = m.Title
	}
	if err := p.tmpl["message.html"].Execute(&b, m); err != nil {
		p.h.log.Warn("admin page: render failed", zap.Error(err))
		http.Error(w, m.Title, status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}
