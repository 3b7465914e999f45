package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// TraceContext is a W3C Trace Context traceparent
// (https://www.w3.org/TR/trace-context/): the caller's trace, the span it
// made the request from, and its flags. The zero value means "no trace".
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Valid reports whether tc names a trace: neither id is all zeros.
func (tc TraceContext) Valid() bool {
	return tc.TraceID != [16]byte{} && tc.SpanID != [8]byte{}
}

// Sampled reports the sampled flag (bit 0).
func (tc TraceContext) Sampled() bool { return tc.Flags&1 == 1 }

// String formats tc as a version-00 traceparent.
func (tc TraceContext) String() string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], tc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{tc.Flags})
	return string(b[:])
}

// ParseTraceparent reads a traceparent header value. It accepts what the
// W3C recommendation says a receiver must: version 00 of exactly 55
// characters, or a later version (not ff) whose first 55 characters have
// the version-00 shape, followed by nothing or by "-" and more. Hex must be
// lowercase and neither id may be all zeros. Anything else is malformed
// (ok false): the gateway then starts a fresh trace rather than forward a
// value Superset or a collector might choke on or be misled by.
func ParseTraceparent(s string) (tc TraceContext, ok bool) {
	if len(s) < 55 {
		return TraceContext{}, false
	}
	if !lowerHex(s[0:2]) || s[0:2] == "ff" || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return TraceContext{}, false
	}
	if s[0:2] == "00" {
		if len(s) != 55 {
			return TraceContext{}, false
		}
	} else if len(s) > 55 && s[55] != '-' {
		return TraceContext{}, false
	}
	if !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:55]) {
		return TraceContext{}, false
	}
	// Lowercase hex of the right lengths: Decode cannot fail.
	_, _ = hex.Decode(tc.TraceID[:], []byte(s[3:35]))
	_, _ = hex.Decode(tc.SpanID[:], []byte(s[36:52]))
	var f [1]byte
	_, _ = hex.Decode(f[:], []byte(s[53:55]))
	tc.Flags = f[0]
	if s[0:2] != "00" {
		// Flags of a later version are not ours to interpret beyond
		// sampled.
		tc.Flags &= 1
	}
	if !tc.Valid() {
		return TraceContext{}, false
	}
	return tc, true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// maxTracestate is the length the W3C recommendation lets a vendor
// propagate; longer lists may be truncated, we drop them.
const maxTracestate = 512

// ValidTracestate reports whether s is a tracestate list the gateway
// forwards: at most 512 characters and 32 members, each key=value with
// the recommendation's characters, empty members allowed. A tracestate
// is only ever forwarded with a valid traceparent.
func ValidTracestate(s string) bool {
	if len(s) == 0 || len(s) > maxTracestate {
		return false
	}
	members := 0
	for len(s) > 0 {
		m := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			m, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		members++
		if members > 32 || !validMember(m) {
			return false
		}
	}
	return members > 0
}

// validMember checks key=value: key of lowercase letters, digits and
// _-*/@ (at most 256, starting with a letter or digit), value of printable
// ASCII without "," and "=" (at most 256, not ending in a space).
func validMember(m string) bool {
	eq := strings.IndexByte(m, '=')
	if eq < 1 || eq > 256 {
		return false
	}
	key, val := m[:eq], m[eq+1:]
	if c := key[0]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '*' || c == '/' || c == '@') {
			return false
		}
	}
	if len(val) == 0 || len(val) > 256 || val[len(val)-1] == ' ' {
		return false
	}
	for i := 0; i < len(val); i++ {
		c := val[i]
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}

// newTraceContext returns a fresh, unsampled trace: what replaces a
// malformed incoming traceparent when the gateway does not trace itself.
func newTraceContext() TraceContext {
	var tc TraceContext
	for !tc.Valid() {
		_, _ = rand.Read(tc.TraceID[:])
		_, _ = rand.Read(tc.SpanID[:])
	}
	return tc
}
