package proxy

import (
	"net/http"
	"strings"

	"github.com/superset-gateway/superset-gateway/policy"
)

// singleHeader reports the headers a request may carry at most once: each
// decides how the gateway or Superset reads the request (its body, its
// credential, its CSRF check), and with two copies the two may read
// different ones (gunicorn keeps the last Content-Type, Go the first).
// Cookie is not one: HTTP/2 sends one field per cookie.
func singleHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Host", "Authorization", "X-Guesttoken",
		"Transfer-Encoding", "X-Csrftoken", "X-Csrf-Token", "Origin", "Referer":
		return true
	}
	return false
}

// canonicalHeaders makes the request's headers the ones Superset will read
// and the gateway decided on. A header whose name contains "_" is removed
// (or, with refuse, refused): gunicorn turns "-" and "_" alike into the
// WSGI environ and keeps underscore names only from a trusted peer — the
// gateway itself — so Script_Name would move Superset's routing away from
// the path the gateway checked, and X_Remote_User would pass for a
// trusted-only X-Remote-User. A single-valued header given twice is
// refused. It returns the refusal reason, or "".
func canonicalHeaders(h http.Header, refuse bool) policy.Reason {
	for name, v := range h {
		switch {
		case strings.IndexByte(name, '_') >= 0:
			if refuse {
				return policy.ReasonUnderscoreHeader
			}
			delete(h, name)
		case len(v) > 1 && singleHeader(name):
			return policy.ReasonDuplicateHeader
		}
	}
	return ""
}
