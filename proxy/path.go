package proxy

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Errors of CleanPath; the gateway answers them with 400 and 414.
var (
	ErrBadPath     = errors.New("proxy: bad path")
	ErrPathTooLong = errors.New("proxy: path too long")
)

// CleanPath normalises a request path that has already been percent-decoded
// once (http.Request.URL.Path), the way Superset's WSGI PATH_INFO is: "%2f"
// therefore arrives here as "/", while "%252e" arrives as the literal text
// "%2e" and stays so. It resolves "." and ".." segments (RFC 3986 §5.2.4),
// merges repeated slashes and keeps a trailing slash.
//
// It returns ErrBadPath for a path that does not start with "/", would climb
// above the root, or holds control characters (NUL included) or invalid
// UTF-8, and ErrPathTooLong when p is longer than max bytes (max <= 0 means
// no limit). Every later decision, and the upstream, see the returned path.
func CleanPath(p string, max int) (string, error) {
	if max > 0 && len(p) > max {
		return "", ErrPathTooLong
	}
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", ErrBadPath
	}
	clean := true
	ascii := true
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", ErrBadPath
		case c >= utf8.RuneSelf:
			ascii = false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			// "//", "/." and "/.." need the slow path; "/.well-known" is
			// merely conservative.
			clean = false
		}
	}
	if !ascii && !utf8.ValidString(p) {
		return "", ErrBadPath
	}
	if clean {
		return p, nil
	}

	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	rest := p[1:]
	for {
		seg, tail, more := strings.Cut(rest, "/")
		switch seg {
		case "", ".":
			trailing = true
		case "..":
			if len(segs) == 0 {
				return "", ErrBadPath
			}
			segs = segs[:len(segs)-1]
			trailing = true
		default:
			segs = append(segs, seg)
			trailing = false
		}
		if !more {
			break
		}
		rest = tail
	}
	if len(segs) == 0 {
		return "/", nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(s)
	}
	if trailing {
		b.WriteByte('/')
	}
	return b.String(), nil
}
