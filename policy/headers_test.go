package policy

import (
	"strings"
	"testing"
)

func decisions(hs []Header) map[string]Header {
	m := map[string]Header{}
	for _, h := range hs {
		m[h.Name] = h
	}
	return m
}

func TestHeaderPolicy(t *testing.T) {
	opts := HeaderOptions{
		PublicURL:      "https://bi.example.com",
		FrameAncestors: []string{"https://app.example.com", "https://*.partner.example"},
		Overrides: []HeaderOverride{
			{Prefix: "/static/", Set: map[string]string{"cache-control": "public, max-age=3600"}},
			{Prefix: "/api/", Remove: []string{"Cross-Origin-Opener-Policy"}},
			{Prefix: "/api/v1/chart/", Set: map[string]string{"Cross-Origin-Opener-Policy": "unsafe-none"}},
			{Prefix: "/embedded/legacy/", Set: map[string]string{"X-Frame-Options": "DENY"}},
		},
	}
	p, err := NewHeaderPolicy(opts)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		value  string // "" with remove
		remove bool
		reason string
	}
	cases := []struct {
		path   string
		header string
		want   want
		absent bool
	}{
		{"/superset/welcome/", "X-Content-Type-Options", want{"nosniff", false, ReasonDefault}, false},
		{"/superset/welcome/", "Referrer-Policy", want{"strict-origin-when-cross-origin", false, ReasonDefault}, false},
		{"/superset/welcome/", "X-Frame-Options", want{"SAMEORIGIN", false, ReasonDefault}, false},
		{"/superset/welcome/", "Strict-Transport-Security", want{"max-age=31536000; includeSubDomains", false, ReasonHSTS}, false},
		{"/superset/welcome/", "Permissions-Policy", want{"camera=(), microphone=(), geolocation=()", false, ReasonDefault}, false},
		{"/superset/welcome/", "Cross-Origin-Opener-Policy", want{"same-origin", false, ReasonDefault}, false},
		{"/superset/welcome/", "Server", want{"", true, ReasonStripIdentity}, false},
		{"/superset/welcome/", "X-Powered-By", want{"", true, ReasonStripIdentity}, false},
		{"/superset/welcome/", "Content-Security-Policy", want{}, true},
		// Embedded pages are framed by the configured sites, not SAMEORIGIN.
		{"/embedded/3f2a", "X-Frame-Options", want{"", true, ReasonEmbeddedNoXFO}, false},
		{"/embedded/3f2a", "Content-Security-Policy", want{"frame-ancestors https://app.example.com https://*.partner.example", false, ReasonEmbedded}, false},
		{"/embedded/3f2a", "X-Content-Type-Options", want{"nosniff", false, ReasonDefault}, false},
		// "/embedded" without the slash is not the embedded view.
		{"/embeddedx", "X-Frame-Options", want{"SAMEORIGIN", false, ReasonDefault}, false},
		// Longest prefix wins, per header, on top of the shorter layers.
		{"/embedded/legacy/1", "X-Frame-Options", want{"DENY", false, "override:/embedded/legacy/"}, false},
		{"/embedded/legacy/1", "Content-Security-Policy", want{"frame-ancestors https://app.example.com https://*.partner.example", false, ReasonEmbedded}, false},
		{"/static/app.js", "Cache-Control", want{"public, max-age=3600", false, "override:/static/"}, false},
		{"/api/v1/dashboard/", "Cross-Origin-Opener-Policy", want{"", true, "override:/api/"}, false},
		{"/api/v1/chart/1", "Cross-Origin-Opener-Policy", want{"unsafe-none", false, "override:/api/v1/chart/"}, false},
		{"/api/v1/chart/1", "X-Frame-Options", want{"SAMEORIGIN", false, ReasonDefault}, false},
	}
	for _, c := range cases {
		got, ok := decisions(p.For(c.path))[c.header]
		if c.absent {
			if ok {
				t.Errorf("%s %s: got %+v, want absent", c.path, c.header, got)
			}
			continue
		}
		if !ok {
			t.Errorf("%s %s: absent", c.path, c.header)
			continue
		}
		if got.Value != c.want.value || got.Remove != c.want.remove || got.Reason != c.want.reason {
			t.Errorf("%s %s = {%q remove=%v %s}, want {%q remove=%v %s}", c.path, c.header,
				got.Value, got.Remove, got.Reason, c.want.value, c.want.remove, c.want.reason)
		}
		if !got.Remove && (len(got.Values()) != 1 || got.Values()[0] != got.Value) {
			t.Errorf("%s %s: Values() = %q", c.path, c.header, got.Values())
		}
	}
}

func TestHeaderPolicyHTTPAndDefaults(t *testing.T) {
	for _, pub := range []string{"", "http://127.0.0.1:8080"} {
		p, err := NewHeaderPolicy(HeaderOptions{PublicURL: pub})
		if err != nil {
			t.Fatal(err)
		}
		d := decisions(p.For("/"))
		if _, ok := d["Strict-Transport-Security"]; ok {
			t.Errorf("public url %q: HSTS sent over http", pub)
		}
		csp := decisions(p.For("/embedded/x"))["Content-Security-Policy"]
		if csp.Value != "frame-ancestors 'self'" {
			t.Errorf("default frame-ancestors = %q", csp.Value)
		}
	}
	var nilPolicy *HeaderPolicy
	if nilPolicy.For("/") != nil {
		t.Error("nil policy returned headers")
	}
}

func TestHeaderPolicyRejectsBadOptions(t *testing.T) {
	bad := []HeaderOptions{
		{PublicURL: "ftp://x"},
		{PublicURL: "http://[::1"},
		{FrameAncestors: []string{"https://a https://b"}},
		{FrameAncestors: []string{"https://a; script-src *"}},
		{FrameAncestors: []string{""}},
		{Overrides: []HeaderOverride{{Prefix: "api/"}}},
		{Overrides: []HeaderOverride{{Prefix: "/a", Set: map[string]string{"X-A": "v\r\nSet-Cookie: x"}}}},
		{Overrides: []HeaderOverride{{Prefix: "/a", Set: map[string]string{"X-A": ""}}}},
	}
	for _, o := range bad {
		if _, err := NewHeaderPolicy(o); err == nil {
			t.Errorf("accepted %+v", o)
		} else if !strings.HasPrefix(err.Error(), "policy: ") {
			t.Errorf("error %q lacks package prefix", err)
		}
	}
}
