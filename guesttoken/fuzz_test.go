package guesttoken_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/principal"

	"github.com/superset-gateway/superset-gateway/guesttoken"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// FuzzGuestTokenPath drives untrusted input (the token header, the
// content type and the body) through extraction, verification and the
// revocation check, and holds the middleware to its contract: it never
// panics; what it forwards has the body byte for byte; a forwarded request
// marked as guest traffic carries a token that verifies and is not
// revoked; an unmarked forwarded request carried no token; a refusal is
// one of the documented statuses.
func FuzzGuestTokenPath(f *testing.F) {
	valid := mint(f, testSecret, t0.Add(-time.Minute), "12")
	revoked := mint(f, testSecret, t0.Add(-time.Minute), "7")
	mp, mpCT := guesttoken.MultipartBody(f, [2]string{`form-data; name="guest_token"`, valid})
	const ue = "application/x-www-form-urlencoded"
	f.Add(valid, "", []byte(nil))
	f.Add("", ue, []byte("a=1&guest_token="+valid))
	f.Add(valid, ue, []byte("guest_token="+revoked))
	f.Add(revoked, "", []byte(nil))
	f.Add("", mpCT, mp)
	f.Add(algNone(validClaims(t0)), "", []byte(nil))
	f.Add("", ue, []byte("guest%5Ftoken="+valid+"&guest_token=x"))
	for _, c := range guesttoken.Shapes(f) {
		f.Add(c.Header, c.ContentType, []byte(c.Body))
	}

	st := newBolt(f)
	clock := newClock()
	rev, err := guesttoken.NewRevoker(guesttoken.RevokerOptions{Store: st, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := rev.RevokeDashboard(ctxT(f), []string{"7"}, t0.Add(-time.Second)); err != nil {
		f.Fatal(err)
	}
	v := guestjwt.Verifier{Key: []byte(testSecret), Audience: testAudience}
	g, err := guesttoken.New(guesttoken.Options{Verifier: v, Revoker: rev, Now: clock.Now, MaxFormBytes: 64 << 10, FormMemoryBytes: 512, SpoolDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	pl := gatewaytest.Pipeline(f, gateway.Parts{Guests: g, GuestRevoked: rev, Now: clock.Now})

	f.Fuzz(func(t *testing.T, header, contentType string, body []byte) {
		var (
			called bool
			got    []byte
			p      principal.Principal
		)
		h := pl.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			got, _ = io.ReadAll(r.Body)
			p, _ = principal.FromContext(r.Context())
		}))
		r := httptest.NewRequest(http.MethodPost, "/api/v1/chart/data", bytes.NewReader(body))
		if header != "" {
			r.Header["X-Guesttoken"] = []string{header}
		}
		if contentType != "" {
			r.Header["Content-Type"] = []string{contentType}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !called {
			switch w.Code {
			case 400, 401, 413, 503:
			default:
				t.Fatalf("refused with %d", w.Code)
			}
			return
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("body altered: %q → %q", body, got)
		}
		if p.Kind != principal.Guest {
			if header != "" {
				t.Fatalf("header token forwarded unmarked")
			}
			return
		}
		ms, stamped, err := rev.RevokedBefore(ctxT(t), append([]string{guesttoken.GlobalKey}, p.Resources...)...)
		if err != nil || !guesttoken.CheckRevocation(p.IssuedAt, ms, stamped).Allow {
			t.Fatalf("revoked token forwarded")
		}
		if header != "" {
			if _, err := v.Verify(header, clock.Now()); err != nil {
				t.Fatalf("forwarded a header token that does not verify: %v", err)
			}
		}
	})
}
