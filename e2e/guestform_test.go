//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// guestFormShape is one way of putting a guest token in the guest_token
// form field that Werkzeug reads (Superset's get_guest_user_from_request
// falls back to request.form["guest_token"] on any method) and that a
// body parser other than Werkzeug's may not.
type guestFormShape struct {
	name         string
	contentTypes []string // one Content-Type header each, in order
	body         func(tok string) string
}

// guestFormShapes are the shapes of issue 12, finding 1. Each was read
// by Werkzeug 3.1 as guest_token=<tok> (checked with e2e/oracle).
func guestFormShapes() []guestFormShape {
	const ue = "application/x-www-form-urlencoded"
	urlenc := func(tok string) string { return "guest_token=" + tok }
	part := func(delim, nl, disposition string) func(string) string {
		return func(tok string) string {
			return "--" + delim + nl + "Content-Disposition: " + disposition + nl + nl + tok + nl + "--" + delim + "--" + nl
		}
	}
	return []guestFormShape{
		// Python strips \x85 and \xa0 (Latin-1 NEL and NBSP) as whitespace.
		{"urlencoded, trailing NEL", []string{ue + "\x85"}, urlenc},
		{"urlencoded, leading NBSP", []string{"\xa0" + ue}, urlenc},
		// gunicorn keeps the last Content-Type, Go's Header.Get the first.
		{"two content types", []string{"text/plain", ue}, urlenc},
		// Werkzeug's multipart decoder accepts bare LF and bare CR.
		{"multipart, bare LF", []string{"multipart/form-data; boundary=B"}, part("B", "\n", `form-data; name="guest_token"`)},
		{"multipart, bare CR", []string{"multipart/form-data; boundary=B"}, part("B", "\r", `form-data; name="guest_token"`)},
		// RFC 2231 parameters, resolved differently by Werkzeug and Go.
		{"multipart, name continuation", []string{"multipart/form-data; boundary=B"}, part("B", "\r\n", `form-data; name=guest; name*1=_token`)},
		{"multipart, extended name first", []string{"multipart/form-data; boundary=B"}, part("B", "\r\n", `form-data; name*=utf-8''x; name=guest_token`)},
		{"multipart, two boundaries", []string{"multipart/form-data; boundary*=utf-8''Y; boundary=X"}, part("X", "\r\n", `form-data; name=guest_token`)},
		// Control: the plain shapes, which the gateway read before too.
		{"urlencoded, plain", []string{ue}, urlenc},
		{"multipart, plain", []string{"multipart/form-data; boundary=B"}, part("B", "\r\n", `form-data; name="guest_token"`)},
	}
}

// rawOne writes req to base's host as raw bytes (so nothing re-frames or
// re-spells it) and reads the one answer (rawExchange).
func rawOne(t *testing.T, base, req string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	a := rawExchange(t, u.Host, req, 1)[0]
	if a.status == 0 {
		t.Fatalf("no answer to %.60q", req)
	}
	return a.status, a.body
}

// guestFormProbe is a request whose success needs a guest token: with
// GET, the dashboard itself; with POST, chart data, which Superset
// guards (FAB @protect, can_read on Chart: the guest role has it, the
// anonymous one does not) before it looks at the body. A guest gets 400
// "Request is not JSON" there (the body has no form_data), anyone else 401.
type guestFormProbe struct {
	method, path string
	honoured     func(code int, body string) bool
}

func guestFormProbes(dashID int) []guestFormProbe {
	return []guestFormProbe{
		{http.MethodGet, "/api/v1/dashboard/" + strconv.Itoa(dashID), func(code int, body string) bool {
			id := strconv.Itoa(dashID)
			return code == http.StatusOK && (strings.Contains(body, `"id": `+id) || strings.Contains(body, `"id":`+id))
		}},
		{http.MethodPost, "/api/v1/chart/data", func(code int, body string) bool {
			return code == http.StatusBadRequest && strings.Contains(body, "Request is not JSON")
		}},
	}
}

func guestFormRequest(base string, p guestFormProbe, s guestFormShape, tok string) string {
	u, _ := url.Parse(base)
	body := s.body(tok)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", p.method, p.path, u.Host)
	for _, ct := range s.contentTypes {
		b.WriteString("Content-Type: " + ct + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	return b.String()
}

// TestGuestFormRevoked (issue 12, finding 1): a revoked guest token in the
// guest_token form field, in any shape Werkzeug reads, never gets through
// the gateway; each shape does authenticate straight at Superset (so the
// test can fail), and a token minted after the revocation still works
// through the gateway in the plain shapes.
func TestGuestFormRevoked(t *testing.T) {
	e := shared(t)
	adminTok, adminYAML := adminToken(t)
	g := startGatewayWith(t, e, buildGateway(t), t.TempDir(), "", "", adminYAML)
	direct := mustSupersetAPI(t, e.c.Target.BaseURL, e.c.Target.Admin)
	d := createEmbeddedDashboard(t, direct, "form")
	api := mustSupersetAPI(t, g.URL, e.c.Target.Admin)
	shapes, probes := guestFormShapes(), guestFormProbes(d.ID)

	// Straight at Superset, every shape carries the token.
	fresh := api.mustGuestToken(t, d.UUID)
	for _, s := range shapes {
		for _, p := range probes {
			code, body := rawOne(t, e.c.Target.BaseURL, guestFormRequest(e.c.Target.BaseURL, p, s, fresh))
			if !p.honoured(code, body) {
				t.Errorf("straight to Superset, %s %s, %s: %d %.200q: Superset did not take the token, so this shape proves nothing", p.method, p.path, s.name, code, body)
			}
		}
	}
	// And without a token Superset does not answer as to a guest.
	for _, p := range probes {
		code, body := rawOne(t, e.c.Target.BaseURL, guestFormRequest(e.c.Target.BaseURL, p, shapes[len(shapes)-2], "x"))
		if p.honoured(code, body) {
			t.Fatalf("%s %s without a token: %d %.200q looks like a guest's answer", p.method, p.path, code, body)
		}
	}

	checkRevoked := func(what, tok string) {
		t.Helper()
		for _, s := range shapes {
			for _, p := range probes {
				code, body := rawOne(t, g.URL, guestFormRequest(g.URL, p, s, tok))
				if p.honoured(code, body) {
					t.Errorf("%s: %s %s, %s: Superset honoured a revoked guest token through the gateway (%d)", what, p.method, p.path, s.name, code)
				}
			}
		}
	}
	perDash := api.mustGuestToken(t, d.UUID)
	mustRevoke(t, g.URL, adminTok, strconv.Itoa(d.ID))
	checkRevoked("revoked per dashboard", perDash)

	global := api.mustGuestToken(t, d.UUID)
	mustRevoke(t, g.URL, adminTok, "")
	checkRevoked("revoked globally", global)

	// A token minted after both revocations passes in the shapes a
	// browser or an embedding app sends, on both probes.
	after := api.mustGuestToken(t, d.UUID)
	for _, s := range shapes[len(shapes)-2:] {
		for _, p := range probes {
			code, body := rawOne(t, g.URL, guestFormRequest(g.URL, p, s, after))
			if !p.honoured(code, body) {
				t.Errorf("valid token, %s %s, %s: %d %.200q, want Superset's guest answer", p.method, p.path, s.name, code, body)
			}
		}
	}
}
