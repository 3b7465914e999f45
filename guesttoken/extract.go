package guesttoken

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// FormField is the form field Superset reads a guest token from when the
// header is absent (form posts such as CSV and image downloads).
const FormField = "guest_token"

// DefaultHeader is Superset's GUEST_TOKEN_HEADER_NAME.
const DefaultHeader = "X-GuestToken"

// Defaults of Options.MaxFormBytes (the proxy's default body limit, so that
// no upload the proxy accepts is refused here) and Options.FormMemoryBytes.
const (
	DefaultMaxFormBytes    = 64 << 20
	DefaultFormMemoryBytes = 1 << 20
)

// extractor finds the guest tokens of a request that Superset could read
// (security manager get_guest_user_from_request: the header, or else
// request.form["guest_token"], on any method) and refuses what it cannot
// rule out.
type extractor struct {
	header   string // canonical header name
	maxForm  int64  // larger form bodies are refused
	memForm  int64  // larger form bodies are spooled to an unlinked file
	spoolDir string // "" means os.TempDir()
}

// Reading is what the gateway reads of a request's guest tokens.
type Reading struct {
	// Header is the token header's value ("" when absent).
	Header string
	// Body holds every guest token a form body could hand Superset
	// (scanBody); nil when the body cannot be a form.
	Body []Candidate
}

// formTypes are the media types Werkzeug parses into request.form.
var formTypes = [...]string{"multipart/form-data", "application/x-www-form-urlencoded"}

// mayBeForm reports whether a Content-Type value could make Werkzeug parse
// the body as a form. Werkzeug's mimetype is the text before the first
// ";", stripped of Python whitespace (wider than Go's: \x85, \xa0, …)
// and lower-cased, compared with formTypes: so the raw value, ASCII
// lower-cased, contains one of them whenever Werkzeug parses a form
// (Latin-1 letters never lower-case into ASCII). Parameters are never
// read: what a boundary or charset says cannot hide a token from the scan.
func mayBeForm(ct string) bool {
	if len(ct) < len(formTypes[0]) {
		return false
	}
	lower := strings.ToLower(ct)
	for _, t := range formTypes {
		if strings.Contains(lower, t) {
			return true
		}
	}
	return false
}

// read returns the request's guest tokens or a refusal: the token header,
// and, when the body could be a form by Werkzeug's reading, every guest
// token in it (scanBody), whatever field or encoding carries it. It never
// parses the form the way Superset would: the fields Werkzeug finds are
// a subset of what the scan finds, whatever boundary, parameter or line
// ending decides Werkzeug's parse. A body it reads is put back on r
// byte for byte (r.ContentLength untouched). The caller must call release
// once the request is done (it closes a spool file, if one was needed).
func (e extractor) read(r *http.Request) (rd Reading, d Decision, release func()) {
	release = func() {}
	switch vals := r.Header[e.header]; {
	case len(vals) > 1:
		// Werkzeug sees the values joined by commas, we would see
		// the first: refuse rather than guess.
		return rd, refuse(ReasonAmbiguous), release
	case len(vals) == 1:
		rd.Header = vals[0]
	}
	if len(rd.Header) > guestjwt.MaxTokenLen {
		return Reading{}, refuse(ReasonTooLarge), release
	}
	if e.underscoreVariant(r.Header) {
		return Reading{}, refuse(ReasonAmbiguous), release
	}
	if r.Body == nil || r.Body == http.NoBody {
		return rd, allow(), release
	}
	cts := r.Header["Content-Type"]
	if !slices.ContainsFunc(cts, mayBeForm) {
		return rd, allow(), release
	}
	if len(cts) > 1 {
		// gunicorn keeps the last, Go's Header.Get the first: which
		// one Superset acts on is not the gateway's to guess.
		return Reading{}, refuse(ReasonAmbiguous), release
	}
	body, release, d := e.readBody(r)
	if !d.Allow {
		return Reading{}, d, release
	}
	cands, outcome, err := scanBody(body)
	switch {
	case err != nil:
		return Reading{}, readFailure(err), release
	case outcome == scanTooLarge:
		return Reading{}, refuse(ReasonTooLarge), release
	case outcome == scanUnreadable:
		return Reading{}, refuse(ReasonMalformedForm), release
	case outcome == scanTooMany:
		return Reading{}, refuse(ReasonAmbiguous), release
	}
	rd.Body = cands
	return rd, allow(), release
}

// underscoreVariant reports a header spelled like the token header with
// "_" for "-" (X_GuestToken). Some WSGI servers map both spellings to the
// same HTTP_X_GUESTTOKEN variable, so Superset could read a token the
// gateway never checked.
func (e extractor) underscoreVariant(h http.Header) bool {
	for k := range h {
		if len(k) == len(e.header) && k != e.header && strings.IndexByte(k, '_') >= 0 &&
			strings.EqualFold(strings.ReplaceAll(k, "_", "-"), e.header) {
			return true
		}
	}
	return false
}

// readBody reads at most maxForm bytes of r's body, in memory up to
// memForm and beyond that into a file unlinked at once (it vanishes when
// closed, even if the process dies), and puts an identical body back on r.
// It returns a reader over the body for parsing.
func (e extractor) readBody(r *http.Request) (io.Reader, func(), Decision) {
	nop := func() {}
	if r.ContentLength > e.maxForm {
		return nil, nop, refuse(ReasonFormTooLarge)
	}
	orig := r.Body
	defer orig.Close()
	buf := bytes.NewBuffer(make([]byte, 0, max(min(r.ContentLength, e.memForm), 512)))
	if _, err := io.Copy(buf, io.LimitReader(orig, e.memForm+1)); err != nil {
		return nil, nop, readFailure(err)
	}
	if int64(buf.Len()) <= e.memForm {
		body := buf.Bytes()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		return bytes.NewReader(body), nop, allow()
	}
	f, err := os.CreateTemp(e.spoolDir, "sgw-form-*")
	if err != nil {
		return nil, nop, refuse(ReasonBodyRead)
	}
	_ = os.Remove(f.Name())
	release := func() { _ = f.Close() }
	n, err := io.Copy(f, io.MultiReader(buf, io.LimitReader(orig, e.maxForm+1-int64(buf.Len()))))
	if err == nil && n > e.maxForm {
		release()
		return nil, nop, refuse(ReasonFormTooLarge)
	}
	if err != nil {
		release()
		return nil, nop, readFailure(err)
	}
	// The upstream body is the file from its start; parsing reads it
	// through its own section.
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		release()
		return nil, nop, refuse(ReasonBodyRead)
	}
	r.Body = io.NopCloser(f)
	r.GetBody = nil
	return io.NewSectionReader(f, 0, n), release, allow()
}

func readFailure(err error) Decision {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return refuse(ReasonFormTooLarge)
	}
	return refuse(ReasonBodyRead)
}

// unhex is the value of a hex digit, or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
