package session

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// JarCookie is one Superset cookie held for the browser.
type JarCookie struct {
	Value string `json:"v"`
	// Expires is the Unix time in milliseconds after which the cookie is
	// dropped; 0 means a browser-session cookie, kept as long as the
	// gateway session.
	Expires int64 `json:"e,omitempty"`
}

// Jar is Superset's cookie jar for one session: name → cookie. A Jar held by
// a loaded Session is shared and must be treated as read-only; Clone before
// changing it.
type Jar map[string]JarCookie

// Limits on what Superset may store in a jar, so that a misbehaving upstream
// cannot grow records without bound.
const (
	maxJarCookies     = 32
	maxJarCookieBytes = 8 << 10
)

// Clone returns a copy that may be changed.
func (j Jar) Clone() Jar { return maps.Clone(j) }

// Value returns the live value of the named cookie.
func (j Jar) Value(name string, now time.Time) (string, bool) {
	c, ok := j[name]
	if !ok || c.expired(now) {
		return "", false
	}
	return c.Value, true
}

func (c JarCookie) expired(now time.Time) bool {
	return c.Expires != 0 && now.UnixMilli() >= c.Expires
}

// CookieHeader renders the live cookies as a Cookie request header, in name
// order so that the header is stable.
func (j Jar) CookieHeader(now time.Time) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(j)) {
		c := j[name]
		if c.expired(now) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(c.Value)
	}
	return b.String()
}

// apply absorbs Set-Cookies into j (which it may modify) and reports whether
// a name or value changed; an expiry-only change (flask-session refreshing
// the same sid) is recorded but not reported, so it does not cost a write.
// Deletion is honoured: Max-Age <= 0, or an Expires in the past.
func (j Jar) apply(cookies []*http.Cookie, now time.Time) (changed bool) {
	for _, c := range cookies {
		if c.Name == "" {
			continue
		}
		var exp int64
		switch {
		case c.MaxAge < 0:
			exp = -1
		case c.MaxAge > 0:
			exp = now.Add(time.Duration(c.MaxAge) * time.Second).UnixMilli()
		case !c.Expires.IsZero():
			exp = c.Expires.UnixMilli()
			if exp <= now.UnixMilli() {
				exp = -1
			}
		}
		old, had := j[c.Name]
		if exp == -1 {
			if had {
				delete(j, c.Name)
				changed = true
			}
			continue
		}
		if len(c.Value) > maxJarCookieBytes || !had && len(j) >= maxJarCookies {
			continue
		}
		if !had || old.Value != c.Value {
			changed = true
		}
		j[c.Name] = JarCookie{Value: c.Value, Expires: exp}
	}
	return changed
}
