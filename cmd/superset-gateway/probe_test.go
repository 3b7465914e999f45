package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The image's health check is `probe URL`: only a 2xx answer is healthy.
// A redirect (the plain listener that only redirects to https) and a 503
// from /-/readyz must both count as unhealthy.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/readyz":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/-/healthz", http.StatusFound)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{srv.URL + "/-/healthz"}, exitOK, ""},
		{[]string{srv.URL + "/-/readyz"}, exitFailure, "answered 503"},
		{[]string{srv.URL + "/moved"}, exitFailure, "answered 302"},
		{[]string{closed.URL + "/-/healthz"}, exitFailure, "probe:"},
		{[]string{"file:///etc/passwd"}, exitUsage, "not an http(s) URL"},
		{nil, exitUsage, "want one URL"},
	} {
		code, _, stderr := runCmd(t, context.Background(), nil, append([]string{"probe"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.msg) {
			t.Errorf("probe %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
}
