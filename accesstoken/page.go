package accesstoken

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/ui"
)

//go:embed templates/tokens.html
var pageFS embed.FS

// PagePath is where the page lives; mount Page for PagePath and
// PagePath+"/" under proxy.Options.Internal.
const PagePath = "/-/tokens"

// IdentifyFunc names the signed-in Superset user of a page request. ok
// false means nobody is signed in (the page redirects to the login page);
// an error means it could not be decided (store down: 503). The wiring
// implements it with the session vault's Vault.SignedIn (the epoch check
// included, a revoked session destroyed), exactly as the proxy would judge
// the session.
type IdentifyFunc func(r *http.Request) (owner Owner, ok bool, err error)

// PageOptions configure Page.
type PageOptions struct {
	// Identify is required.
	Identify IdentifyFunc
	// LoginPath is where visitors who are not signed in are sent, with
	// ?next=/-/tokens; "" means "/login/".
	LoginPath string
	// Logger may be nil.
	Logger *zap.Logger
	// Nav builds the gateway navigation for the signed-in caller of r on
	// page current; the wiring decides there whether r's user gets the
	// admin link (the admin page's own decision). nil means
	// ui.NavLinks(current, false).
	Nav func(r *http.Request, current ui.Nav) []ui.Link
}

type page struct {
	m     *Manager
	id    IdentifyFunc
	login string
	tmpl  *template.Template
	log   *zap.Logger
	errs  *ui.Errors
	nav   func(r *http.Request, current ui.Nav) []ui.Link
}

// Page serves /-/tokens for signed-in users: GET lists their tokens and
// the creation form; POST /-/tokens/create creates one and shows it once
// (form fields name, scope (repeated), ttl (seconds, one of the policy's
// choices), cidrs (whitespace- or comma-separated)); POST /-/tokens/revoke
// (field id) revokes one of theirs. POSTs are refused cross-origin
// (http.CrossOriginProtection), so the page needs neither JavaScript nor
// a form token; the copy button's small inline script is optional.
// Responses are no-store.
func (m *Manager) Page(o PageOptions) (http.Handler, error) {
	if o.Identify == nil {
		return nil, fmt.Errorf("%w: PageOptions.Identify is required", ErrConfig)
	}
	t, err := ui.Layout("tokens.html", template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"duration": humanDuration,
		"secs":     func(d time.Duration) int64 { return int64(d / time.Second) },
		"join":     strings.Join,
		"descr":    policy.ScopeDescription,
	})
	if err == nil {
		t, err = t.ParseFS(pageFS, "templates/tokens.html")
	}
	if err != nil {
		return nil, fmt.Errorf("accesstoken: page template: %w", err)
	}
	errs, err := ui.NewErrors()
	if err != nil {
		return nil, fmt.Errorf("accesstoken: error page: %w", err)
	}
	p := &page{m: m, id: o.Identify, login: o.LoginPath, tmpl: t, log: o.Logger, errs: errs, nav: o.Nav}
	if p.nav == nil {
		p.nav = func(_ *http.Request, current ui.Nav) []ui.Link { return ui.NavLinks(current, false) }
	}
	if p.login == "" {
		p.login = "/login/"
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	return http.NewCrossOriginProtection().Handler(p), nil
}

// pageData is the template's input.
type pageData struct {
	Frame ui.Frame
	// Origin is where the example curl sends its request.
	Origin   string
	User     string
	Tokens   []Info
	Scopes   []string
	Choices  []time.Duration
	MaxTTL   time.Duration
	NewToken string
	NewName  string
	Error    string
	Form     struct {
		Name   string
		Scopes map[string]bool
		TTL    int64
		CIDRs  string
	}
}

func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	owner, ok, err := p.id(r)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	if !ok {
		http.Redirect(w, r, p.login+"?next="+url.QueryEscape(PagePath), http.StatusFound)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == PagePath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		p.render(w, r, owner, http.StatusOK, pageData{})
	case path == PagePath+"/create" && r.Method == http.MethodPost:
		p.create(w, r, owner)
	case path == PagePath+"/revoke" && r.Method == http.MethodPost:
		err := p.m.RevokeOwned(r.Context(), owner.ID, r.PostFormValue("id"))
		if err != nil && !errors.Is(err, ErrNotFound) {
			// Not found and not theirs look alike on purpose.
			p.unavailable(w, r, err)
			return
		}
		http.Redirect(w, r, PagePath, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		p.errs.Answer(w, r, ui.ErrorPage{Status: http.StatusMethodNotAllowed, Heading: "Not a page action",
			What: "This address takes only the tokens page's own buttons and links.",
			Do:   "Go back to the tokens page and use its buttons."})
	}
}

func (p *page) create(w http.ResponseWriter, r *http.Request, owner Owner) {
	if err := r.ParseForm(); err != nil {
		p.errs.Answer(w, r, ui.ErrorPage{Status: http.StatusBadRequest, Heading: "The form could not be read",
			What: "The browser sent a form the gateway cannot read; no token was made.",
			Do:   "Go back to the tokens page and fill the form again."})
		return
	}
	var d pageData
	d.Form.Name = r.PostForm.Get("name")
	d.Form.Scopes = map[string]bool{}
	scopes := r.PostForm["scope"]
	for _, s := range scopes {
		d.Form.Scopes[s] = true
	}
	d.Form.CIDRs = r.PostForm.Get("cidrs")
	secs, _ := strconv.ParseInt(r.PostForm.Get("ttl"), 10, 64)
	d.Form.TTL = secs
	ttl := time.Duration(secs) * time.Second
	allowed := false
	for _, c := range p.m.pol.TTLChoices {
		allowed = allowed || c == ttl
	}
	if !allowed {
		ttl = -1 // refused by Create with the policy's message
	}
	cidrs := strings.FieldsFunc(d.Form.CIDRs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	tok, rec, err := p.m.Create(r.Context(), owner, d.Form.Name, scopes, ttl, cidrs)
	switch {
	case err == nil:
		p.render(w, r, owner, http.StatusOK, pageData{NewToken: tok, NewName: rec.Name})
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrTooMany):
		d.Error = publicMessage(err)
		p.render(w, r, owner, http.StatusBadRequest, d)
	default:
		p.unavailable(w, r, err)
	}
}

// publicMessage strips the package prefix and sentinel text from a
// validation error; what is left was written for the user.
func publicMessage(err error) string {
	s := err.Error()
	for _, e := range []error{ErrInvalid, ErrTooMany} {
		s = strings.TrimPrefix(s, e.Error()+": ")
	}
	return s
}

func (p *page) render(w http.ResponseWriter, r *http.Request, owner Owner, status int, d pageData) {
	list, err := p.m.List(r.Context(), owner.ID)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	d.User = owner.Username
	if d.User == "" {
		d.User = "user " + owner.ID
	}
	d.Tokens, d.Scopes, d.Choices, d.MaxTTL = list, policy.Scopes(), p.m.pol.TTLChoices, p.m.pol.MaxTTL
	d.Frame = ui.Frame{Title: "Access tokens", User: d.User, Links: p.nav(r, ui.NavTokens), Scripts: d.NewToken != ""}
	d.Origin = origin(r)
	if d.Form.Scopes == nil {
		d.Form.Scopes = map[string]bool{}
	}
	if d.Form.TTL == 0 && len(d.Choices) > 0 {
		d.Form.TTL = int64(d.Choices[0] / time.Second)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := p.tmpl.Execute(w, d); err != nil {
		p.log.Warn("tokens page: render failed", zap.Error(err))
	}
}

// origin is the scheme and host the browser used, for the example curl
// (html/template escapes it; it is only ever shown to the user who sent
// it).
func origin(r *http.Request) string {
	scheme := "https"
	if r.TLS == nil && r.Header.Get("X-Forwarded-Proto") != "https" {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

func (p *page) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Warn("tokens page: store unavailable", zap.Error(err))
	retry := policy.RetryAfter(0)
	w.Header().Set("Retry-After", retry)
	p.errs.Answer(w, r, ui.ErrorPage{Status: http.StatusServiceUnavailable, Heading: "Temporarily unavailable",
		What: "The gateway cannot read its store right now; nothing was changed.",
		Do:   "Wait a few seconds and reload the page.", RetryAfter: retry})
}
