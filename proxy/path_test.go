package proxy

import (
	"errors"
	"strings"
	"testing"
)

var pathCases = []struct {
	in   string
	want string
	err  error
}{
	{"", "/", nil},
	{"/", "/", nil},
	{"/api/v1/chart/", "/api/v1/chart/", nil},
	{"/a/../b", "/b", nil},
	{"//api", "/api", nil},
	{"//api//v1///chart/", "/api/v1/chart/", nil},
	{"/a/./b/", "/a/b/", nil},
	{"/a/b/..", "/a/", nil},
	{"/a/b/.", "/a/b/", nil},
	{"/..", "", ErrBadPath},
	{"/../etc/passwd", "", ErrBadPath},
	{"/a/../../b", "", ErrBadPath},
	{"/%2e%2e/", "/%2e%2e/", nil}, // already-decoded input: literal text
	{"/a/...", "/a/...", nil},
	{"/.well-known/x", "/.well-known/x", nil},
	{"/a\x00b", "", ErrBadPath},
	{"/a\r\nb", "", ErrBadPath},
	{"/a\x7fb", "", ErrBadPath},
	{"/\xc0\xae\xc0\xae/", "", ErrBadPath},
	{"/café", "/café", nil},
	{"a/b", "", ErrBadPath},
	{"/" + strings.Repeat("a", 5000), "", ErrPathTooLong},
}

func TestCleanPath(t *testing.T) {
	for _, c := range pathCases {
		got, err := CleanPath(c.in, 4096)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, c := range pathCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CleanPath(in, 4096)
		if err != nil {
			if out != "" {
				t.Fatalf("error with output %q", out)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") {
			t.Fatalf("CleanPath(%q) = %q: not absolute or has //", in, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("CleanPath(%q) = %q keeps a dot segment", in, out)
			}
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("CleanPath(%q) = %q keeps a control char", in, out)
			}
		}
		if again, err := CleanPath(out, 4096); err != nil || again != out {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, out, again, err)
		}
		if strings.HasSuffix(in, "/") && !strings.HasSuffix(out, "/") {
			t.Fatalf("trailing slash lost: %q → %q", in, out)
		}
	})
}

// TestPathAttacks sends raw request targets through a real listener and
// asserts what the upstream received, or that it received nothing.
func TestPathAttacks(t *testing.T) {
	s := newStack(t, nil, nil)
	cases := []struct {
		target string
		status int
		uri    string // what upstream saw; "" = nothing
	}{
		{"/a/../b", 200, "/b"},
		{"//api/v1/chart/", 200, "/api/v1/chart/"},
		{"/%2e%2e/etc/passwd", 400, ""},
		{"/api/%2e%2e/%2e%2e/x", 400, ""},
		{"/../x", 400, ""},
		{"/api%2fv1/chart", 200, "/api/v1/chart"},
		{"/static/%2e%2e%2fapi/v1/me", 200, "/api/v1/me"},
		{"/a/%252e%252e/b", 200, "/a/%252e%252e/b"},
		{"/a%00b", 400, ""},
		{"/a%0d%0aSet-Cookie:x", 400, ""},
		{"/%c0%ae%c0%ae/x", 400, ""},
		{"/" + strings.Repeat("x", 5000), 414, ""},
		{"/caf%c3%a9/", 200, "/caf%C3%A9/"},
		{"/x/?q=%2e%2e&next=//evil", 200, "/x/?q=%2e%2e&next=//evil"},
		{"/a%zz", 400, ""}, // net/http refuses invalid escapes itself
	}
	for _, c := range cases {
		before := s.backend.count()
		resp, body := raw(t, s.addr(), "GET "+c.target+" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != c.status {
			t.Errorf("%.60s: status %d, want %d", c.target, resp.StatusCode, c.status)
			continue
		}
		if c.uri == "" {
			if s.backend.count() != before {
				t.Errorf("%.60s: reached upstream as %q", c.target, s.backend.last(t).RequestURI)
			}
			if c.target != "/a%zz" && !strings.Contains(body, resp.Header.Get("X-Request-Id")) {
				t.Errorf("%.60s: error page without request id", c.target)
			}
			continue
		}
		if got := s.backend.last(t).RequestURI; got != c.uri {
			t.Errorf("%s: upstream saw %q, want %q", c.target, got, c.uri)
		}
	}
	_, _, refusals := s.obs.snapshot()
	if !strings.Contains(strings.Join(refusals, ","), "bad_path") || !strings.Contains(strings.Join(refusals, ","), "path_too_long") {
		t.Errorf("refusals %v", refusals)
	}
}

// Headers are decided on the normalised path: a detour through /embedded/
// does not shed X-Frame-Options from an ordinary page.
func TestHeadersFollowNormalisedPath(t *testing.T) {
	s := newStack(t, nil, nil)
	resp, _ := raw(t, s.addr(), "GET /embedded/..%2fsuperset/welcome/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if got := resp.Header.Get("X-Frame-Options"); got != "SAMEORIGIN" {
		t.Errorf("X-Frame-Options = %q on a normalised non-embedded path", got)
	}
	if s.backend.last(t).RequestURI != "/superset/welcome/" {
		t.Errorf("upstream saw %q", s.backend.last(t).RequestURI)
	}
	resp, _ = raw(t, s.addr(), "GET /embedded/abc HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
	if resp.Header.Get("X-Frame-Options") != "" || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "frame-ancestors ") {
		t.Errorf("embedded headers: %v", resp.Header)
	}
}
