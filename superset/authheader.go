package superset

// Superset runs under WSGI, which hands header bytes to Python as a
// Latin-1 decoded str, and flask-jwt-extended reads Authorization with
// str.split() and re.split(r",\s*"). Python's whitespace there is wider
// than Go's: it includes 0x1c–0x1f, 0x85 (NEL) and 0xa0 (NBSP), and as
// single bytes, not UTF-8 sequences. A gateway that splits the header
// differently can miss a credential Superset will honour (verified against
// 6.1.0: "Bearer\x85<jwt>" authenticates). These helpers split the way
// Superset does.

// IsPySpace reports whether b, read as a Latin-1 character, is whitespace
// to Python's str.split().
func IsPySpace(b byte) bool {
	return b == ' ' || (b >= '\t' && b <= '\r') || (b >= 0x1c && b <= 0x1f) || b == 0x85 || b == 0xa0
}

// PyFields splits s around runs of IsPySpace bytes, as Python's
// str.split() splits the Latin-1 decoding of s.
func PyFields(s string) []string {
	var out []string
	start := -1
	for i := 0; i < len(s); i++ {
		if IsPySpace(s[i]) {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}
