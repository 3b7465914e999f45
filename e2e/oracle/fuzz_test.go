//go:build e2e

package oracle_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/e2e/oracle"
	"github.com/superset-gateway/superset-gateway/guesttoken"
	"github.com/superset-gateway/superset-gateway/jwtguard"
	"github.com/superset-gateway/superset-gateway/proxy"
	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// The differential targets: each feeds one raw request to the gateway's
// reading and, as the gateway would forward it, to the oracle (gunicorn
// 23 + Werkzeug + Flask from Superset's virtualenv), and fails when they
// disagree on something a decision rests on. `make fuzz-oracle` runs them
// under the fuzzer; `make e2e` runs their corpora (testdata/fuzz, seeded
// from oracle.Seeds) as tests.

// maxBody bounds the bodies the targets read (the gateway's limit is
// limits.max_body_bytes; the fuzzer's inputs are far smaller).
const maxBody = 1 << 20

// gatewayRequest reads raw as the gateway's HTTP/1.1 server does, then
// applies the proxy's header hygiene, modelled here after
// proxy/canonical.go (unexported there): a header whose name holds "_"
// is dropped (headers.underscore_headers: drop, the default), and a
// single-valued header sent twice refuses the request. ok is false when
// the gateway would refuse the request before any credential is read.
func gatewayRequest(raw []byte) (r *http.Request, body []byte, ok bool) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil || (r.ProtoAtLeast(1, 1) && r.Host == "") {
		return nil, nil, false
	}
	if len(r.TransferEncoding) > 0 && len(r.Header["Content-Length"]) > 0 {
		return nil, nil, false // proxy/framing.go: 400
	}
	for name, v := range r.Header {
		switch {
		case strings.IndexByte(name, '_') >= 0:
			delete(r.Header, name)
		case len(v) > 1 && singleHeader(name):
			return nil, nil, false
		}
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return nil, nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return r, body, true
}

// singleHeader mirrors proxy/canonical.go's list.
func singleHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Host", "Authorization", "X-Guesttoken",
		"Transfer-Encoding", "X-Csrftoken", "X-Csrf-Token", "Origin", "Referer":
		return true
	}
	return false
}

// forwarded is r as the gateway's transport writes it to Superset: the
// request target from u (the path decided on), the headers r now holds
// (Go's Header.Write, as net/http's transport), the body with its length.
func forwarded(r *http.Request, u *url.URL, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, u.RequestURI(), r.Host)
	h := r.Header.Clone()
	for _, k := range []string{"Host", "Content-Length", "Transfer-Encoding", "Connection"} {
		h.Del(k)
	}
	_ = h.Write(&b)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

func seed(f *testing.F) {
	for _, s := range oracle.Seeds() {
		f.Add(s)
	}
}

// guestPayloadOf returns the payload segment PyJWT would verify for a
// token Superset read (signing input up to the last ".", payload after
// the first), when it is one a minter could have signed (base64url
// without padding, RFC 7515) and decodes to claims of type "guest";
// any other value cannot be an accepted guest token.
func guestPayloadOf(v string) (string, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(v[:i], '.')
	if j < 0 {
		return "", false
	}
	p := v[j+1 : i]
	if p == "" || strings.IndexFunc(p, func(c rune) bool {
		return !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_')
	}) >= 0 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return "", false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || m["type"] != "guest" {
		return "", false
	}
	return p, true
}

// FuzzOracleGuestToken: every guest token Superset reads from a request
// the gateway forwards (X-GuestToken, or any guest_token form value) is
// one the gateway read, so it was verified and checked for revocation.
func FuzzOracleGuestToken(f *testing.F) {
	seed(f)
	orc := oracle.ForTest(f)
	g, err := guesttoken.New(guesttoken.Options{
		Verifier: guestjwt.Verifier{Key: []byte("oracle-seed-key-0123456789abcdef")}, Revoker: &guesttoken.Revoker{},
		MaxFormBytes: maxBody, SpoolDir: f.TempDir(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, _, ok := gatewayRequest(raw)
		if !ok {
			return
		}
		rd, d, release := g.Read(r)
		defer release()
		if !d.Allow {
			return // refused: nothing reaches Superset
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		o, err := orc.Read(forwarded(r, r.URL, body))
		if err != nil {
			t.Fatal(err)
		}
		if o.Error != "" {
			return
		}
		if o.XGuestToken != nil && *o.XGuestToken != "" && oracle.Bytes(*o.XGuestToken) != rd.Header {
			t.Fatalf("Superset reads X-GuestToken %q, the gateway %q", oracle.Bytes(*o.XGuestToken), rd.Header)
		}
		for _, v := range o.FormGuestToken {
			p, ok := guestPayloadOf(v)
			if !ok {
				continue
			}
			if !slices.ContainsFunc(rd.Body, func(c guesttoken.Candidate) bool { return c.Payload == p }) {
				t.Fatalf("Superset reads guest_token %.80q… (mimetype %q), the gateway found %d tokens in the body", v, o.Mimetype, len(rd.Body))
			}
		}
	})
}

// FuzzOracleBearer: the token flask-jwt-extended takes from Authorization
// is the one the gateway's JWT stage takes, or the gateway refuses.
func FuzzOracleBearer(f *testing.F) {
	seed(f)
	orc := oracle.ForTest(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, body, ok := gatewayRequest(raw)
		if !ok {
			return
		}
		tok, found, err := jwtguard.BearerToken(r.Header)
		if err != nil {
			return // 401 at the gateway
		}
		o, oerr := orc.Read(forwarded(r, r.URL, body))
		if oerr != nil {
			t.Fatal(oerr)
		}
		if o.Error != "" || o.Bearer == nil {
			return
		}
		if want := oracle.Bytes(*o.Bearer); !found || tok != want {
			t.Fatalf("flask-jwt-extended takes %q from %q, the gateway %q (found %v)", want, r.Header.Values("Authorization"), tok, found)
		}
	})
}

// FuzzOraclePath: the path Flask routes (PATH_INFO, with no SCRIPT_NAME)
// is exactly the path the gateway decided on (proxy.CleanPath of Go's
// parsed URL), as the gateway forwards it.
func FuzzOraclePath(f *testing.F) {
	seed(f)
	orc := oracle.ForTest(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, body, ok := gatewayRequest(raw)
		if !ok {
			return
		}
		clean, err := proxy.CleanPath(r.URL.Path, 0)
		if err != nil || strings.HasPrefix(clean, "/-/") {
			return // refused, or the gateway's own route
		}
		u := *r.URL
		if clean != u.Path || u.RawPath != "" {
			u.Path, u.RawPath = clean, ""
		}
		o, err := orc.Read(forwarded(r, &u, body))
		if err != nil {
			t.Fatal(err)
		}
		if o.Error != "" {
			return
		}
		if got := oracle.Bytes(o.PathInfo); got != clean || o.ScriptName != "" {
			t.Fatalf("the gateway decided on %q, Flask routes %q (SCRIPT_NAME %q)", clean, got, o.ScriptName)
		}
	})
}
