package proxy

import (
	"crypto/rand"
	"encoding/hex"
)

// maxRequestIDLen bounds an inbound X-Request-ID kept from a trusted proxy.
const maxRequestIDLen = 64

// ValidRequestID reports whether s is a sane request id: 1 to 64 characters
// of [A-Za-z0-9._-], so it is safe in logs, headers and HTML.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
