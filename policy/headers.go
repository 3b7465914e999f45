package policy

import (
	"fmt"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
)

// Reasons attached to each header decision; tests and audits key on them.
const (
	ReasonDefault        = "default"
	ReasonHSTS           = "hsts_https_public_url"
	ReasonEmbedded       = "embedded_frame_ancestors"
	ReasonEmbeddedNoXFO  = "embedded_no_frame_options"
	ReasonStripIdentity  = "strip_server_identity"
	ReasonOverridePrefix = "override:" // followed by the prefix
)

// EmbeddedPrefix is the path prefix of Superset's embedded dashboards, which
// are meant to be framed by other sites.
const EmbeddedPrefix = "/embedded/"

// HeaderOptions configures the security headers.
type HeaderOptions struct {
	// PublicURL is the URL users reach the gateway at; HSTS is sent only
	// when its scheme is https. Empty means http.
	PublicURL string
	// FrameAncestors are the CSP frame-ancestors sources allowed to frame
	// EmbeddedPrefix pages ("https://app.example.com"). Empty means
	// 'self' only.
	FrameAncestors []string
	// Overrides adjust headers under a path prefix; for each header the
	// longest matching prefix wins.
	Overrides []HeaderOverride
}

// HeaderOverride sets or removes headers for paths under Prefix.
type HeaderOverride struct {
	// Prefix is matched against the normalised request path; it must start
	// with "/".
	Prefix string
	// Set maps header names to values.
	Set map[string]string
	// Remove lists headers that must not be sent, whoever set them.
	Remove []string
}

// Header is one decision: send Name with Value, or, when Remove is true,
// make sure Name is absent from the response.
type Header struct {
	Name   string // canonical form
	Value  string
	Remove bool
	Reason string
	vals   []string
}

// Values returns Value as a one-element slice shared by every caller, so
// that applying a policy allocates nothing. The caller must not modify it.
func (h Header) Values() []string { return h.vals }

// HeaderPolicy is a compiled, immutable set of header decisions.
type HeaderPolicy struct {
	base     []Header
	prefixes []prefixHeaders // longest prefix first
}

type prefixHeaders struct {
	prefix  string
	headers []Header
}

type layer struct {
	prefix string
	apply  func(map[string]Header)
}

// NewHeaderPolicy validates opts and compiles the decisions for every
// configured prefix.
func NewHeaderPolicy(opts HeaderOptions) (*HeaderPolicy, error) {
	https := false
	if opts.PublicURL != "" {
		u, err := url.Parse(opts.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("policy: public url: %w", err)
		}
		switch u.Scheme {
		case "https":
			https = true
		case "http":
		default:
			return nil, fmt.Errorf("policy: public url %q: scheme must be http or https", opts.PublicURL)
		}
	}
	for _, a := range opts.FrameAncestors {
		if a == "" || strings.ContainsAny(a, " ;,\r\n\t") {
			return nil, fmt.Errorf("policy: frame ancestor %q is not a single CSP source", a)
		}
	}

	base := map[string]Header{}
	set := func(m map[string]Header, name, value, reason string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		m[name] = Header{Name: name, Value: value, Reason: reason}
	}
	remove := func(m map[string]Header, name, reason string) {
		name = textproto.CanonicalMIMEHeaderKey(name)
		m[name] = Header{Name: name, Remove: true, Reason: reason}
	}
	set(base, "X-Content-Type-Options", "nosniff", ReasonDefault)
	set(base, "Referrer-Policy", "strict-origin-when-cross-origin", ReasonDefault)
	set(base, "X-Frame-Options", "SAMEORIGIN", ReasonDefault)
	set(base, "Permissions-Policy", "camera=(), microphone=(), geolocation=()", ReasonDefault)
	set(base, "Cross-Origin-Opener-Policy", "same-origin", ReasonDefault)
	if https {
		set(base, "Strict-Transport-Security", "max-age=31536000; includeSubDomains", ReasonHSTS)
	}
	remove(base, "Server", ReasonStripIdentity)
	remove(base, "X-Powered-By", ReasonStripIdentity)

	ancestors := "'self'"
	if len(opts.FrameAncestors) > 0 {
		ancestors = strings.Join(opts.FrameAncestors, " ")
	}
	layers := []layer{{prefix: EmbeddedPrefix, apply: func(m map[string]Header) {
		// Framing by other sites is the point of /embedded/, so the
		// all-or-nothing X-Frame-Options gives way to a CSP allow-list.
		remove(m, "X-Frame-Options", ReasonEmbeddedNoXFO)
		set(m, "Content-Security-Policy", "frame-ancestors "+ancestors, ReasonEmbedded)
	}}}
	for _, o := range opts.Overrides {
		if !strings.HasPrefix(o.Prefix, "/") {
			return nil, fmt.Errorf("policy: header override prefix %q must start with /", o.Prefix)
		}
		for name, v := range o.Set {
			if name == "" || v == "" || strings.ContainsAny(name+v, "\r\n") {
				return nil, fmt.Errorf("policy: header override %q: bad header %q", o.Prefix, name)
			}
		}
		reason := ReasonOverridePrefix + o.Prefix
		layers = append(layers, layer{prefix: o.Prefix, apply: func(m map[string]Header) {
			for name, v := range o.Set {
				set(m, name, v, reason)
			}
			for _, name := range o.Remove {
				remove(m, name, reason)
			}
		}})
	}

	p := &HeaderPolicy{base: flatten(base)}
	seen := map[string]bool{}
	for _, l := range layers {
		if seen[l.prefix] {
			continue
		}
		seen[l.prefix] = true
		m := make(map[string]Header, len(base)+2)
		for k, v := range base {
			m[k] = v
		}
		// Apply every layer whose prefix covers this one, shortest first,
		// so the longest prefix has the last word on each header.
		var cover []layer
		for _, c := range layers {
			if strings.HasPrefix(l.prefix, c.prefix) {
				cover = append(cover, c)
			}
		}
		sort.SliceStable(cover, func(i, j int) bool { return len(cover[i].prefix) < len(cover[j].prefix) })
		for _, c := range cover {
			c.apply(m)
		}
		p.prefixes = append(p.prefixes, prefixHeaders{prefix: l.prefix, headers: flatten(m)})
	}
	sort.SliceStable(p.prefixes, func(i, j int) bool { return len(p.prefixes[i].prefix) > len(p.prefixes[j].prefix) })
	return p, nil
}

func flatten(m map[string]Header) []Header {
	out := make([]Header, 0, len(m))
	for _, h := range m {
		if !h.Remove {
			h.vals = []string{h.Value}
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// For returns the header decisions for a normalised request path. The slice
// is shared and must not be modified. A nil policy returns nil.
//
// The caller adds each non-Remove header only when the response does not
// already carry it (Superset may set its own), and deletes every Remove
// header.
func (p *HeaderPolicy) For(path string) []Header {
	if p == nil {
		return nil
	}
	for _, ph := range p.prefixes {
		if strings.HasPrefix(path, ph.prefix) {
			return ph.headers
		}
	}
	return p.base
}
