package fakesuperset

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// resp is a handler's answer; the wrapper saves the session (which may set
// a cookie) before writing it.
type resp struct {
	status int
	header http.Header
	body   []byte
}

type handler func(r *http.Request, st *reqState) resp

func jsonResp(status int, v any) resp {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // Flask's JSON leaves <, > and & alone
	_ = enc.Encode(v)
	return resp{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: bytes.TrimSuffix(buf.Bytes(), []byte("\n"))}
}

// httpError is Superset's HTTPException handler (abort(404) and friends):
// the static HTML page for browsers asking for text/html on 404 and 500,
// else Superset's JSON error envelope.
func httpError(r *http.Request, code int, description string) resp {
	if (code == http.StatusNotFound || code == http.StatusInternalServerError) && strings.Contains(r.Header.Get("Accept"), "text/html") {
		return htmlResp(code, "<!doctype html><title>"+http.StatusText(code)+"</title><h1>"+http.StatusText(code)+"</h1>")
	}
	return jsonResp(code, map[string]any{"errors": []any{map[string]any{
		"message":    strconv.Itoa(code) + " " + http.StatusText(code) + ": " + description,
		"error_type": "GENERIC_BACKEND_ERROR", "level": "error",
		"extra": map[string]any{"issue_codes": []any{map[string]any{
			"code": 1011, "message": "Issue 1011 - Superset encountered an unexpected error.",
		}}},
	}}})
}

const (
	notFoundDescription      = "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."
	internalErrorDescription = "The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application."
	forbiddenDescription     = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server."
)

func htmlResp(status int, body string) resp {
	return resp{status: status, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: []byte(body)}
}

func redirect(loc string) resp {
	return resp{status: http.StatusFound, header: http.Header{"Location": {loc}, "Content-Type": {"text/html; charset=utf-8"}},
		body: []byte(`<!doctype html><title>Redirecting...</title><p>Redirecting to <a href="` + loc + `">` + loc + `</a>`)}
}

// noCache is FAB's no_cache decorator on the auth views.
func noCache(r resp) resp {
	if r.header == nil {
		r.header = http.Header{}
	}
	r.header.Set("Cache-Control", "no-store, no-cache, must-revalidate, max-age=0")
	r.header.Set("Pragma", "no-cache")
	r.header.Set("Expires", "0")
	return r
}

type route struct {
	// csrf: Flask-WTF's CSRFProtect applies (Superset's own endpoints and
	// MVC forms; FAB's APIs are exempt).
	csrf bool
	// perm: FAB @protect(allow_browser_login=True) with this permission;
	// "" means the view does its own checks.
	perm string
}

func (f *Fake) page(h handler) http.Handler { return f.wrap(route{}, h) }

func (f *Fake) api(perm string, h handler) http.Handler { return f.wrap(route{perm: perm}, h) }

func (f *Fake) apiCSRF(perm string, h handler) http.Handler {
	return f.wrap(route{csrf: true, perm: perm}, h)
}

func (f *Fake) form(h handler) http.Handler { return f.wrap(route{csrf: true}, h) }

func (f *Fake) wrap(rt route, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		st := f.load(r)
		var res resp
		switch {
		case rt.csrf && r.Method != http.MethodGet && r.Method != http.MethodHead:
			if msg := f.csrfError(r, st); msg != "" {
				res = csrfFailure(r, msg)
				break
			}
			fallthrough
		default:
			if rt.perm != "" {
				if denied, ok := f.protect(r, st, rt.perm); !ok {
					res = denied
					break
				}
			}
			res = h(r, st)
		}
		for k, v := range res.header {
			w.Header()[k] = v
		}
		f.save(w, st)
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body)
	})
}

// csrfFailure is Superset's CSRFError handler: JSON requests get 400 with
// Superset's error envelope, others are sent to the login page.
func csrfFailure(r *http.Request, msg string) resp {
	if isJSON(r) {
		return httpError(r, http.StatusBadRequest, msg)
	}
	return redirect("/login/?next=" + url.QueryEscape(r.URL.RequestURI()))
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/json") || (strings.HasPrefix(ct, "application/") && strings.Contains(ct, "+json"))
}

// protect emulates FAB 5.0.2's @protect(allow_browser_login=True): the
// session (or guest) user first; only when the caller is not authenticated
// at all, verify_jwt_in_request and the JWT's user. An authenticated caller
// without the permission gets 403; an anonymous one the JWT errors (401
// "Missing Authorization Header" without a Bearer).
//
// With Options.APIKeys it is FAB 5.3.0's: an API key bearer is checked
// first, before the session, and answers for itself (401 for a bad key).
func (f *Fake) protect(r *http.Request, st *reqState, perm string) (resp, bool) {
	if f.opt.APIKeys {
		if key, ok := f.extractAPIKey(r); ok {
			u := f.validateAPIKey(key, st.now)
			if u == nil {
				return jsonResp(http.StatusUnauthorized, map[string]any{"message": "Not authorized"}), false
			}
			if !hasPermission(u.Roles, perm) {
				return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"}), false
			}
			// FAB sets g.user: the key's user is the caller, whatever
			// session came with it.
			st.user, st.guest, st.jwtUser = nil, nil, u
			return resp{}, true
		}
	}
	switch {
	case st.user != nil:
		if hasPermission(st.user.Roles, perm) {
			return resp{}, true
		}
		return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"}), false
	case st.guest != nil:
		if hasPermission([]string{f.opt.GuestRole}, perm) {
			return resp{}, true
		}
		return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"}), false
	}
	tok, failure, ok := bearerToken(r)
	if !ok {
		return failure, false
	}
	c, err := f.jwt.Verify(tok, apijwt.Access, st.now)
	if err != nil {
		return jwtFailure(err), false
	}
	u := f.loadUser(c.Subject)
	if u == nil {
		return jsonResp(http.StatusUnauthorized, map[string]any{"msg": "Error loading the user " + c.Subject}), false
	}
	if !hasPermission(u.Roles, perm) {
		return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"}), false
	}
	st.jwtUser = u
	return resp{}, true
}

// bearerToken is flask-jwt-extended 4.7.1's _decode_jwt_from_headers:
// comma-separated credentials, exactly one of type "Bearer" with exactly
// one token after it.
func bearerToken(r *http.Request) (string, resp, bool) {
	h := strings.Trim(strings.TrimSpace(r.Header.Get("Authorization")), ",")
	if h == "" {
		return "", jsonResp(http.StatusUnauthorized, map[string]any{"msg": "Missing Authorization Header"}), false
	}
	var found []string
	for _, field := range commaSplit(h) {
		if parts := strings.Fields(field); len(parts) > 0 && parts[0] == "Bearer" {
			found = append(found, field)
		}
	}
	if len(found) != 1 {
		return "", jsonResp(http.StatusUnauthorized, map[string]any{"msg": "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"}), false
	}
	parts := strings.Fields(found[0])
	if len(parts) != 2 {
		return "", jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"}), false
	}
	return parts[1], resp{}, true
}

// commaSplit is re.split(r",\s*", s).
func commaSplit(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = strings.TrimLeft(s[i+1:], " \t\n\r\f\v")
	}
}

// jwtFailure maps a verification error to flask-jwt-extended's answer.
func jwtFailure(err error) resp {
	switch {
	case errors.Is(err, apijwt.ErrExpired):
		return jsonResp(http.StatusUnauthorized, map[string]any{"msg": "Token has expired"})
	case errors.Is(err, apijwt.ErrWrongType):
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Only non-refresh tokens are allowed"})
	case errors.Is(err, apijwt.ErrBadSignature):
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Signature verification failed"})
	case errors.Is(err, apijwt.ErrAlgNotAllowed):
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "The specified alg value is not allowed"})
	case errors.Is(err, apijwt.ErrNotYetValid), errors.Is(err, apijwt.ErrIATInFuture):
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "The token is not yet valid (iat)"})
	case errors.Is(err, apijwt.ErrMissingSub), errors.Is(err, apijwt.ErrInvalidSub):
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Subject must be a string"})
	}
	return jsonResp(http.StatusUnprocessableEntity, map[string]any{"msg": "Not enough segments"})
}

// caller is the authenticated user of an API request: the session user, or
// the Bearer JWT's.
func (st *reqState) caller() *User {
	if st.user != nil {
		return st.user
	}
	return st.jwtUser
}
