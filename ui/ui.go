// Package ui is the look of the gateway's own pages: one html/template
// layout with Superset 6.1's header and theme (colours, Inter, spacing),
// the static files it needs (CSS, the Inter font, the copy-button
// script), embedded and served under StaticPrefix, and the error page
// browsers get for a refusal. Pages parse their own templates onto
// Layout, define "content" and execute the layout; they work without
// JavaScript.
package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

//go:embed templates/*.html static
var files embed.FS

// StaticPrefix is where Static is mounted (under the gateway's /-/ routes).
const StaticPrefix = "/-/static/"

// Link is one entry of the gateway's navigation bar.
type Link struct {
	Href, Label string
	// Current marks the page being shown (aria-current="page").
	Current bool
}

// Frame is what the layout needs from every page: put it in the page's
// data as the field Frame.
type Frame struct {
	// Title ends up in <title>, followed by "· Superset".
	Title string
	// User is the signed-in user's name; "" hides the user and the
	// gateway navigation (error pages of anonymous requests).
	User string
	// Links is the gateway navigation; NavLinks builds the usual one.
	Links []Link
	// RequestID, when set, is shown in the footer.
	RequestID string
	// Scripts loads the copy-button script.
	Scripts bool
}

// Nav names a page of the gateway's navigation.
type Nav string

// The gateway's pages.
const (
	NavTokens   Nav = "/-/tokens"
	NavSessions Nav = "/-/sessions"
	NavAdmin    Nav = "/-/admin/"
)

// NavLinks is the gateway navigation for a user on page current: their
// access tokens and sessions, and for admins the admin page plus extra,
// the admin-only pages other features add (the nav slot).
func NavLinks(current Nav, isAdmin bool, extra ...Link) []Link {
	ls := []Link{
		{Href: string(NavTokens), Label: "Access tokens"},
		{Href: string(NavSessions), Label: "Sessions"},
	}
	if isAdmin {
		ls = append(ls, Link{Href: string(NavAdmin), Label: "Gateway admin"})
		ls = append(ls, extra...)
	}
	for i := range ls {
		ls[i].Current = ls[i].Href == string(current)
	}
	return ls
}

// Funcs are the functions the layout uses; Layout adds them.
func Funcs() template.FuncMap {
	return template.FuncMap{"staticPath": func() string { return StaticPrefix }}
}

// Layout returns a new template set named name holding the layout, with
// funcs added (they may be nil). Parse the page's files onto it; they
// must define "content" and execute {{template "layout" .}} with data
// that has a Frame field.
func Layout(name string, funcs template.FuncMap) (*template.Template, error) {
	t := template.New(name).Funcs(Funcs())
	if funcs != nil {
		t = t.Funcs(funcs)
	}
	t, err := t.ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("ui: layout: %w", err)
	}
	return t, nil
}

// Static serves the embedded CSS, fonts and script. Mount it at
// StaticPrefix. The files change only with the binary, so they may be
// cached for a day.
func Static() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// Cannot happen for the constant "static"; serve nothing then.
		return http.NotFoundHandler()
	}
	// Only the static directory is served: the templates are out of
	// reach whatever the path says.
	fsrv := http.StripPrefix(StaticPrefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !strings.HasPrefix(r.URL.Path, StaticPrefix) || strings.HasSuffix(r.URL.Path, "/") {
			// No directory listings.
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fsrv.ServeHTTP(w, r)
	})
}

// WantsHTML reports whether r is a browser page load that should get an
// HTML page rather than JSON: it accepts text/html and is not an API call
// (/api/…). API clients keep their JSON answers.
func WantsHTML(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.URL.Path, "/api/v1/") {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

// ErrorPage is a refusal explained to a person.
type ErrorPage struct {
	Frame
	Status     int
	StatusText string
	// Heading says what happened in a few words, What in a sentence, Do
	// what to do about it.
	Heading, What, Do string
	// RetryAfter, in seconds, is repeated on the page ("" for none).
	RetryAfter string
	RequestID  string
}

// Errors renders ErrorPages. Build it once with NewErrors.
type Errors struct{ t *template.Template }

// NewErrors parses the error page.
func NewErrors() (*Errors, error) {
	t, err := Layout("error", nil)
	if err != nil {
		return nil, err
	}
	if t, err = t.ParseFS(files, "templates/error.html"); err != nil {
		return nil, fmt.Errorf("ui: error page: %w", err)
	}
	return &Errors{t: t.Lookup("error.html")}, nil
}

// Render returns the page's HTML. Status text and a default heading are
// filled in from the status.
func (e *Errors) Render(p ErrorPage) ([]byte, error) {
	if p.StatusText == "" {
		p.StatusText = http.StatusText(p.Status)
	}
	if p.Heading == "" {
		p.Heading = p.StatusText
	}
	if p.Frame.Title == "" {
		p.Frame.Title = strconv.Itoa(p.Status) + " " + p.Heading
	}
	var b bytes.Buffer
	if err := e.t.Execute(&b, p); err != nil {
		return nil, fmt.Errorf("ui: render error page: %w", err)
	}
	return b.Bytes(), nil
}

// Write renders p and sends it with p.Status as text/html, no-store. The
// caller sets any other header (Retry-After) before. If rendering fails
// (it cannot with the embedded templates) a plain-text answer is sent.
func (e *Errors) Write(w http.ResponseWriter, p ErrorPage) {
	b, err := e.Render(p)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if err != nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(p.Status)
		_, _ = fmt.Fprintf(w, "%d %s\n", p.Status, http.StatusText(p.Status))
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// Answer sends p the way the client reads it: the styled page to a
// browser (WantsHTML), Superset's {"msg": …} JSON with p.What to anyone
// else, so a script calling a page's route gets the same shape as the
// proxy's own refusals. Headers such as Allow or Retry-After are the
// caller's, set before.
func (e *Errors) Answer(w http.ResponseWriter, r *http.Request, p ErrorPage) {
	if WantsHTML(r) {
		e.Write(w, p)
		return
	}
	msg := p.What
	if msg == "" {
		msg = http.StatusText(p.Status)
	}
	b := MsgJSON(msg)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}

// MsgJSON is Superset's error body, {"msg": "…"} and a newline, spaced
// as Python's json.dumps writes it, so that a client parsing Superset's
// answers byte for byte cannot tell the gateway's apart.
func MsgJSON(message string) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"msg": `)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(message) // a string always encodes; Encode adds "\n"
	b := buf.Bytes()
	return append(b[:len(b)-1], "}\n"...)
}
