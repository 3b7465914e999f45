package flaskcookie

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Session is a decoded Flask session. Values are plain Go values:
// string, bool, nil, json.Number, []any, map[string]any, and for Flask's
// tagged types Tuple (" t"), []byte (" b"), Markup (" m"), UUID (" u") and
// time.Time (" d", UTC). A one-key dict whose key looks like a tag (" di")
// decodes to an ordinary map[string]any.
type Session map[string]any

// Tuple is a Python tuple (tag " t"), e.g. a flash message
// ("warning", "Invalid login. Please try again.").
type Tuple []any

// Markup is markupsafe.Markup (tag " m"): HTML that Flask will not escape.
type Markup string

// UUID is a Python uuid.UUID (tag " u").
type UUID [16]byte

// String returns the canonical 8-4-4-4-12 form.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// UserID returns Flask-Login's "_user_id": a string as stored, or a JSON
// number's text. It reports false for a missing, null, empty or otherwise
// typed value, all of which Flask-Login treats as anonymous (an embedded
// page leaves "_user_id": null behind).
func (s Session) UserID() (string, bool) {
	switch v := s["_user_id"].(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// CSRFToken returns Flask-WTF's raw token ("csrf_token"), or "" if absent.
func (s Session) CSRFToken() string {
	v, _ := s["csrf_token"].(string)
	return v
}

// Flashes returns the queued flash messages as (category, message) pairs.
func (s Session) Flashes() [][2]string {
	list, _ := s["_flashes"].([]any)
	var out [][2]string
	for _, f := range list {
		t, ok := f.(Tuple)
		if !ok || len(t) != 2 {
			continue
		}
		c, _ := t[0].(string)
		m, _ := t[1].(string)
		out = append(out, [2]string{c, m})
	}
	return out
}

// maxDepth bounds recursion over attacker-shaped JSON (after the signature
// has been verified, but a leaked key should not also crash us).
const maxDepth = 64

func unmarshal(raw []byte) (Session, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	v, err := untag(v, 0)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: session is not an object", ErrMalformed)
	}
	return Session(m), nil
}

// untag mirrors flask.json.tag.TaggedJSONSerializer._untag_scan: children
// first, then the object itself if it has exactly one key that is a tag.
func untag(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
	}
	switch x := v.(type) {
	case []any:
		for i := range x {
			c, err := untag(x[i], depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case map[string]any:
		for k := range x {
			c, err := untag(x[k], depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		if len(x) != 1 {
			return x, nil
		}
		for k, inner := range x {
			return fromTag(k, inner, x)
		}
	}
	return v, nil
}

func fromTag(tag string, inner any, whole map[string]any) (any, error) {
	bad := func(what string) (any, error) {
		return nil, fmt.Errorf("%w: tag %q: %s", ErrMalformed, tag, what)
	}
	switch tag {
	case " t":
		l, ok := inner.([]any)
		if !ok {
			return bad("not a list")
		}
		return Tuple(l), nil
	case " b":
		s, ok := inner.(string)
		if !ok {
			return bad("not a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad("base64")
		}
		return b, nil
	case " m":
		s, ok := inner.(string)
		if !ok {
			return bad("not a string")
		}
		return Markup(s), nil
	case " u":
		s, ok := inner.(string)
		if !ok {
			return bad("not a string")
		}
		var u UUID
		h := strings.ReplaceAll(s, "-", "")
		if len(h) != 32 {
			return bad("uuid length")
		}
		if _, err := hex.Decode(u[:], []byte(h)); err != nil {
			return bad("uuid hex")
		}
		return u, nil
	case " d":
		s, ok := inner.(string)
		if !ok {
			return bad("not a string")
		}
		t, err := http.ParseTime(s)
		if err != nil {
			return bad("http date")
		}
		return t.UTC(), nil
	case " di":
		m, ok := inner.(map[string]any)
		if !ok || len(m) != 1 {
			return bad("not a one-key object")
		}
		for k, v := range m {
			if !strings.HasSuffix(k, "__") {
				return bad("key without __ suffix")
			}
			return map[string]any{strings.TrimSuffix(k, "__"): v}, nil
		}
	}
	return whole, nil
}

func isTag(k string) bool {
	switch k {
	case " t", " b", " m", " u", " d", " di":
		return true
	}
	return false
}

// tag is the inverse of untag, producing values encoding/json writes the way
// Flask would.
func tag(v any) (any, error) {
	switch x := v.(type) {
	case Tuple:
		l, err := tagList(x)
		if err != nil {
			return nil, err
		}
		return map[string]any{" t": l}, nil
	case []byte:
		return map[string]any{" b": base64.StdEncoding.EncodeToString(x)}, nil
	case Markup:
		return map[string]any{" m": string(x)}, nil
	case UUID:
		return map[string]any{" u": hex.EncodeToString(x[:])}, nil
	case time.Time:
		return map[string]any{" d": x.UTC().Format(http.TimeFormat)}, nil
	case []any:
		return tagList(x)
	case Session:
		return tag(map[string]any(x))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			t, err := tag(c)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		if len(x) == 1 {
			for k := range x {
				if isTag(k) {
					return map[string]any{" di": map[string]any{k + "__": out[k]}}, nil
				}
			}
		}
		return out, nil
	}
	return v, nil
}

func tagList(l []any) ([]any, error) {
	out := make([]any, len(l))
	for i, c := range l {
		t, err := tag(c)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func marshal(s Session) ([]byte, error) {
	if s == nil {
		s = Session{}
	}
	t, err := tag(map[string]any(s))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Flask's JSON does not HTML-escape; keys are sorted by encoding/json as
	// Flask's sort_keys=True does.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t); err != nil {
		return nil, fmt.Errorf("flaskcookie: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Keys returns the session's keys in sorted order (handy for logs that
// must not carry values).
func (s Session) Keys() []string {
	ks := make([]string, 0, len(s))
	for k := range s {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
