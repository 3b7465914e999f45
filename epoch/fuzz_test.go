package epoch_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/principal"
)

// FuzzCapture feeds arbitrary bodies, content types and targets to the
// request-path hook: no panic, and whatever reaches Superset carries the
// body byte for byte.
func FuzzCapture(f *testing.F) {
	for _, s := range []struct{ method, target, ct, body string }{
		{"PUT", "/api/v1/security/users/3", "application/json", `{"active":false}`},
		{"PUT", "/api/v1/security/users/3", "application/json", `{"active":"off","password":null}`},
		{"PUT", "/api/v1/me/", "application/json", `{"password":"x"}`},
		{"POST", "/users/edit/3", "application/x-www-form-urlencoded", "active=y&first_name=B"},
		{"POST", "/users/edit/3", "application/x-www-form-urlencoded; charset=utf-8", "a=%zz;b"},
		{"POST", "/users/edit/3", "multipart/form-data; boundary=x", "--x--"},
		{"POST", "/resetpassword/form?pk=3", "application/x-www-form-urlencoded", "password=a&conf_password=a"},
	} {
		f.Add(s.method, s.target, s.ct, []byte(s.body))
	}
	h, err := epoch.NewHook(epoch.HookOptions{Epochs: &recStamper{}, MaxBody: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, ct string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !httpToken(method) {
			return
		}
		req := &http.Request{Method: method, URL: u, Header: http.Header{"Content-Type": {ct}},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		x := &principal.Exchange{Principal: principal.Principal{Kind: principal.Session, UserID: "1"}}
		if d := h.Capture(req, x); !d.Allow {
			return // refused before Superset: nothing to restore
		}
		got, _ := io.ReadAll(req.Body)
		if !bytes.Equal(got, body) {
			t.Fatalf("body changed: %q → %q", body, got)
		}
		r := req.WithContext(principal.WithExchange(req.Context(), x))
		resp := &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, Body: io.NopCloser(bytes.NewReader(body))}
		_ = h.StampResponse(resp)
	})
}

func httpToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
