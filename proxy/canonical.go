package proxy

import (
	"net/http"
	"strings"

	"github.com/superset-gateway/superset-gateway/policy"
)

// The refusal reasons of request hygiene, as ObserveRefusal counts them.
// They are policy's typed reasons (policy/reason.go); these names keep the
// proxy's uses in one place.
const (
	reasonUnderscoreHeader = policy.ReasonUnderscoreHeader
	reasonDuplicateHeader  = policy.ReasonDuplicateHeader
	reasonFramingConflict  = policy.ReasonFramingConflict
	reasonFramingUnknown   = policy.ReasonFramingUnknown
	reasonSmuggling        = policy.ReasonSmuggling
)

// singleHeader reports whether a request header must appear at most once,
// because the gateway and the servers behind it would read two of them
// differently (Go's Header.Get takes the first; gunicorn keeps the last
// Content-Type and Content-Length and joins the others with ","):
//
//   - Content-Type: the guest_token form field is looked for in the body
//     the gateway believes is a form; Werkzeug parses by the last one.
//   - Content-Length, Transfer-Encoding: the body's framing (net/http
//     already merges equal Content-Lengths and refuses two
//     Transfer-Encodings; the listener refuses what it merged).
//   - Host: net/http refuses two; kept for in-process callers.
//   - Authorization, X-GuestToken: the credential the gateway verifies
//     must be the one Superset acts on.
//   - X-CSRFToken (and Flask-WTF's other spelling, X-CSRF-Token), Origin,
//     Referer: CSRF decisions, the gateway's own
//     (http.CrossOriginProtection) and Flask-WTF's.
//
// Cookie is not here: HTTP/2 clients send one field per cookie.
func singleHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Transfer-Encoding", "Host",
		"Authorization", "X-Guesttoken", "X-Csrftoken", "X-Csrf-Token", "Origin", "Referer":
		return true
	}
	return false
}

// CanonicalHeaders makes h the header set the gateway decides on and
// forwards: names containing '_' are deleted, or refused when refuse is
// set, and a header that must be single but is repeated is refused. WSGI
// servers name headers HTTP_<NAME> with '-' turned into '_', so such a
// header can pose as another one: gunicorn 23 keeps SCRIPT_NAME from a
// peer in its forwarded_allow_ips (loopback by default, where the gateway
// usually is) and strips that prefix from the path the gateway decided
// on; a server mapping '_' and '-' alike takes X_Remote_User for a
// trusted X-Remote-User. nginx drops such names by default
// (underscores_in_headers off). It returns the refusal reason and, for a repeated header, its
// canonical name; "" when the request may go on. h's keys are canonical
// (as net/http's server makes them). It does not allocate.
func CanonicalHeaders(h http.Header, refuse bool) (policy.Reason, string) {
	for name, v := range h {
		if strings.IndexByte(name, '_') >= 0 {
			if refuse {
				return reasonUnderscoreHeader, ""
			}
			delete(h, name)
			continue
		}
		if len(v) > 1 && singleHeader(name) {
			return reasonDuplicateHeader, name
		}
	}
	return "", ""
}

// refusalMessage is the public text of a hygiene refusal: what the client
// did wrong, in terms it can fix, without echoing its input (name comes
// from singleHeader's fixed list).
func refusalMessage(reason policy.Reason, name string) string {
	switch reason {
	case reasonUnderscoreHeader:
		return "Header names containing an underscore are not accepted."
	case reasonDuplicateHeader:
		return "The request repeats the " + name + " header, which must appear once."
	case reasonFramingConflict, reasonSmuggling:
		return "The request's length is ambiguous: Content-Length with Transfer-Encoding, a repeated Content-Length, or Transfer-Encoding on HTTP/1.0."
	case reasonFramingUnknown:
		return "The request could not be delimited on this connection; send it on a new one."
	}
	return ""
}
