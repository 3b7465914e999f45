package guesttoken

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
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

// extractor finds the guest token of a request the way Superset would
// (security manager get_guest_user_from_request: the header, or else
// request.form["guest_token"]), but refuses whatever Superset and the
// gateway could read differently.
type extractor struct {
	header   string // canonical header name
	maxForm  int64  // larger form bodies are refused
	memForm  int64  // larger form bodies are spooled to an unlinked file
	spoolDir string // "" means os.TempDir()
}

// formKind classifies a body Werkzeug would parse into request.form.
type formKind int

const (
	noForm formKind = iota
	urlencodedForm
	multipartForm
)

// kindOf reads the media type the way Werkzeug does (lower-cased, before
// the first ";"), so a malformed parameter cannot hide a form from us.
func kindOf(ct string) formKind {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/x-www-form-urlencoded":
		return urlencodedForm
	case "multipart/form-data":
		return multipartForm
	}
	return noForm
}

// extract returns the request's guest token ("" when it carries none) or a
// refusal. When it reads a form body it replaces r.Body with a reader of
// the same bytes, so the upstream request is byte-identical;
// r.ContentLength is untouched. The caller must call release once the
// request is done (it closes a spool file, if one was needed).
func (e extractor) extract(r *http.Request) (token string, d Decision, release func()) {
	release = func() {}
	var header string
	switch vals := r.Header[e.header]; {
	case len(vals) > 1:
		// Werkzeug sees the values joined by commas, we would see
		// the first: refuse rather than guess.
		return "", refuse(ReasonAmbiguous), release
	case len(vals) == 1:
		header = vals[0]
	}
	if len(header) > guestjwt.MaxTokenLen {
		return "", refuse(ReasonTooLarge), release
	}
	if e.underscoreVariant(r.Header) {
		return "", refuse(ReasonAmbiguous), release
	}
	cts := r.Header["Content-Type"]
	if len(cts) == 0 || r.Body == nil || r.Body == http.NoBody {
		return header, allow(), release
	}
	kind := kindOf(cts[0])
	if kind == noForm {
		return header, allow(), release
	}
	if len(cts) > 1 {
		return "", refuse(ReasonMalformedForm), release
	}
	body, release, d := e.readBody(r)
	if !d.Allow {
		return "", d, release
	}
	var vals []string
	if kind == urlencodedForm {
		vals = urlencodedValues(body, FormField)
	} else {
		var ok bool
		if vals, ok = multipartValues(body, cts[0], FormField); !ok {
			return "", refuse(ReasonMalformedForm), release
		}
	}
	var form string
	for _, v := range vals {
		switch {
		case len(v) > guestjwt.MaxTokenLen:
			return "", refuse(ReasonTooLarge), release
		case v == "":
		case form == "":
			form = v
		case v != form:
			return "", refuse(ReasonAmbiguous), release
		}
	}
	switch {
	case header == "":
		return form, allow(), release
	case form != "" && form != header:
		return "", refuse(ReasonAmbiguous), release
	}
	return header, allow(), release
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

// maxEncodedKey bounds the key bytes compared: "guest_token" percent-encoded
// in full is 33 bytes, so a longer key cannot be it.
const maxEncodedKey = 64

// maxEncodedValue bounds the value bytes kept for a matching key: a token
// of MaxTokenLen percent-encoded in full, plus one to detect excess.
const maxEncodedValue = 3*guestjwt.MaxTokenLen + 1

// urlencodedValues returns the values of field in an urlencoded body,
// parsed as Python's parse_qsl does for Werkzeug: pairs split on "&" only,
// "+" is a space, invalid %-escapes are kept literally, a pair without "="
// is a key with an empty value. It never fails, like Werkzeug, and holds
// only a key and one matching value in memory at a time. A value too long
// to be a token comes back longer than MaxTokenLen.
func urlencodedValues(rd io.Reader, field string) []string {
	br := bufio.NewReaderSize(rd, 16<<10)
	var out []string
	key := make([]byte, 0, maxEncodedKey)
	var val []byte
	for {
		key = key[:0]
		long := false
		c, err := br.ReadByte()
		for err == nil && c != '=' && c != '&' {
			if len(key) < maxEncodedKey {
				key = append(key, c)
			} else {
				long = true
			}
			c, err = br.ReadByte()
		}
		match := !long && len(key) > 0 && unquotePlus(key) == field
		val = val[:0]
		if err == nil && c == '=' {
			c, err = br.ReadByte()
			for err == nil && c != '&' {
				if match && len(val) < maxEncodedValue {
					val = append(val, c)
				}
				c, err = br.ReadByte()
			}
		}
		if match {
			out = append(out, unquotePlus(val))
		}
		if err != nil {
			return out
		}
	}
}

// unquotePlus is urllib.parse.unquote_plus without its failure modes.
func unquotePlus(b []byte) string {
	if bytes.IndexByte(b, '%') < 0 && bytes.IndexByte(b, '+') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '+':
			out = append(out, ' ')
		case c == '%' && i+2 < len(b) && unhex(b[i+1]) >= 0 && unhex(b[i+2]) >= 0:
			out = append(out, byte(unhex(b[i+1])<<4|unhex(b[i+2])))
			i += 2
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

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

// multipartValues returns the values of every part named field, file parts
// included (Werkzeug would file those under request.files; counting them
// only ever refuses more). ok is false when the body cannot be parsed: we
// then cannot rule out a field Superset's parser would find.
func multipartValues(body io.Reader, contentType, field string) (vals []string, ok bool) {
	_, params, err := mime.ParseMediaType(contentType)
	boundary := params["boundary"]
	if err != nil || boundary == "" {
		return nil, false
	}
	mr := multipart.NewReader(body, boundary)
	for {
		// Raw: Werkzeug does not decode Content-Transfer-Encoding.
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return vals, true
		}
		if err != nil {
			return nil, false
		}
		// Werkzeug takes "name" whatever the disposition type, so
		// Part.FormName (form-data only) is not enough.
		cd := p.Header.Get("Content-Disposition")
		_, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			if strings.Contains(strings.ToLower(cd), "token") {
				return nil, false
			}
			continue
		}
		if dp["name"] != field {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, guestjwt.MaxTokenLen+1))
		if err != nil {
			return nil, false
		}
		vals = append(vals, string(v))
	}
}
