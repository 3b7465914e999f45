// Package fabkey recognises Flask-AppBuilder API keys on the request path.
//
// With Flask-AppBuilder >= 5.2 and FAB_API_KEY_ENABLED, Superset accepts
// `Authorization: Bearer <prefix><secret>` (prefixes FAB_API_KEY_PREFIXES,
// default sst_) on every FAB-@protect'ed API, and manages keys under
// /api/v1/security/api_keys/. Such a key is covered by no gateway epoch and
// FAB never enforces the scopes it stores, so the gateway decides on such
// keys on purpose (superset.fab_api_keys) instead of letting them fail as
// malformed JWTs. This package is the "refuse" choice: a key bearer is
// refused with policy.ReasonFABAPIKey and the management routes with
// policy.ReasonFABAPIKeyManagement.
package fabkey

import (
	"context"
	"net/http"
	"strings"

	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/policy"
	"github.com/superset-gateway/superset-gateway/principal"
	"github.com/superset-gateway/superset-gateway/superset"
)

// DefaultPrefix is Flask-AppBuilder's default FAB_API_KEY_PREFIXES entry.
const DefaultPrefix = "sst_"

// ManagementPath is where Flask-AppBuilder 5.3.0 registers its ApiKeyApi
// (resource_name "security/api_keys": GET and POST /, GET and DELETE
// /<uuid>).
const ManagementPath = "/api/v1/security/api_keys"

// Detector finds a FAB API key in a request's Authorization header.
type Detector struct {
	prefixes []string
}

// NewDetector returns a Detector for prefixes (config
// superset.fab_api_key_prefixes, validated there); empty means sst_.
func NewDetector(prefixes []string) *Detector {
	if len(prefixes) == 0 {
		prefixes = []string{DefaultPrefix}
	}
	return &Detector{prefixes: append([]string(nil), prefixes...)}
}

// Key returns the API key h carries as Superset would read it, and whether
// it carries one. It reads the header two ways and answers yes if either
// sees a bearer starting with a prefix:
//
//   - Flask-AppBuilder's extract_api_key_from_request: the header (several
//     fields joined with "," as gunicorn joins them), "bearer " matched
//     case-insensitively with exactly one space, the rest stripped of
//     Python whitespace, then str.startswith(prefix);
//   - flask-jwt-extended's split (jwtguard.BearerToken): FAB falls back to
//     it when its own reading finds no key, so "Bearer\tsst_…" reaches
//     Superset as a would-be JWT. Such a bearer is still a key to the
//     gateway, never a malformed JWT.
//
// The key returned is FAB's reading when it has one, else the JWT reading.
func (d *Detector) Key(h http.Header) (string, bool) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false
	}
	if tok, ok := fabReading(strings.Join(vals, ",")); ok && d.prefixed(tok) {
		return tok, true
	}
	if tok, ok, err := jwtguard.BearerToken(h); err == nil && ok && d.prefixed(tok) {
		return tok, true
	}
	return "", false
}

// fabReading is FAB 5.3.0's extract_api_key_from_request up to the prefix
// test: auth_header.lower().startswith("bearer "), then
// auth_header[7:].strip().
func fabReading(v string) (string, bool) {
	if len(v) < 7 || !asciiLowerEqual(v[:7], "bearer ") {
		return "", false
	}
	tok := v[7:]
	for len(tok) > 0 && superset.IsPySpace(tok[0]) {
		tok = tok[1:]
	}
	for len(tok) > 0 && superset.IsPySpace(tok[len(tok)-1]) {
		tok = tok[:len(tok)-1]
	}
	return tok, tok != ""
}

// asciiLowerEqual reports whether s lower-cased is lower. Python's
// str.lower() on a Latin-1 string maps no byte outside A-Z to a-z, so
// this is its exact test for an ASCII lower.
func asciiLowerEqual(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (d *Detector) prefixed(tok string) bool {
	for _, p := range d.prefixes {
		if strings.HasPrefix(tok, p) {
			return true
		}
	}
	return false
}

// IsManagementPath reports whether p (the decoded path Flask routes on) is
// one of FAB's API key routes: /api/v1/security/api_keys, with or without
// a trailing slash, or anything under it. Empty and dot segments are
// cleaned first, as Werkzeug would route "//api/v1/security/api_keys/".
func IsManagementPath(p string) bool {
	c := superset.CanonicalPath(p)
	return c == ManagementPath || strings.HasPrefix(c, ManagementPath+"/")
}

// Refuser is the "refuse" choice of superset.fab_api_keys as the request
// path uses it (gateway.FABKeyStage).
type Refuser struct {
	d *Detector
}

// NewRefuser refuses every key with one of prefixes.
func NewRefuser(prefixes []string) *Refuser { return &Refuser{d: NewDetector(prefixes)} }

// Authenticate returns a refusing decision with policy.ReasonFABAPIKey for
// a request carrying a FAB API key, and the zero Principal otherwise. The
// key is never looked at further, logged or kept.
func (f *Refuser) Authenticate(_ context.Context, r *http.Request, _ *principal.Exchange) (principal.Principal, policy.Decision, error) {
	if _, ok := f.d.Key(r.Header); !ok {
		return principal.Principal{}, policy.Decision{Allow: true}, nil
	}
	return principal.Principal{Kind: principal.FABAPIKey}, policy.Decision{Reason: policy.ReasonFABAPIKey}, nil
}

// Authorize refuses: a key never gets past Authenticate under refuse.
func (f *Refuser) Authorize(context.Context, *http.Request, *principal.Exchange) policy.Decision {
	return policy.Decision{Reason: policy.ReasonFABAPIKey}
}

// Inject does nothing: no key reaches Superset under refuse.
func (f *Refuser) Inject(*http.Request, *principal.Exchange) {}

// ModifyResponse does nothing: the management routes never answer.
func (f *Refuser) ModifyResponse(*http.Response) error { return nil }

// Check refuses FAB's key management routes (whatever the method and
// whoever asks): no one creates, lists or revokes keys the gateway will
// not honour.
func (f *Refuser) Check(r *http.Request) policy.Decision {
	if IsManagementPath(r.URL.Path) {
		return policy.Decision{Reason: policy.ReasonFABAPIKeyManagement}
	}
	return policy.Decision{Allow: true}
}

func canonicalPath(p string) string { return superset.CanonicalPath(p) }
