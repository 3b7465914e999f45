package accesstoken

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

// Format constants; see the package doc.
const (
	// Prefix starts every access token.
	Prefix = "sgw_"
	// IDLen and SecretLen are the lengths of the base32 id and secret.
	IDLen     = 16
	SecretLen = 32
	// TokenLen is the length of every well-formed token.
	TokenLen = len(Prefix) + IDLen + 1 + SecretLen + 1 + 8
	// Pattern is the regular expression secret scanners can use.
	Pattern = `\bsgw_[a-z2-7]{16}_[a-z2-7]{32}_[0-9a-f]{8}\b`
)

// Parse errors. Both are refusals before any store lookup.
var (
	// ErrMalformed: not of the token's shape (length, prefix, alphabet).
	ErrMalformed = errors.New("accesstoken: malformed token")
	// ErrChecksum: the shape is right but the checksum does not match (a
	// mistyped or truncated-and-padded token).
	ErrChecksum = errors.New("accesstoken: bad token checksum")
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Generate returns a new token with its id and secret, reading randomness
// from rnd (nil means crypto/rand).
func Generate(rnd io.Reader) (token, id, secret string, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var buf [30]byte // 10 bytes → 16 chars, 20 bytes → 32 chars
	if _, err := io.ReadFull(rnd, buf[:]); err != nil {
		return "", "", "", fmt.Errorf("accesstoken: random: %w", err)
	}
	id = b32.EncodeToString(buf[:10])
	secret = b32.EncodeToString(buf[10:])
	return withChecksum(Prefix + id + "_" + secret), id, secret, nil
}

func withChecksum(body string) string {
	return body + "_" + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
}

// Parse checks the shape and checksum of token and returns its id and
// secret. Errors wrap ErrMalformed or ErrChecksum and never contain the
// token. It does no I/O and does not allocate for a well-formed token.
func Parse(token string) (id, secret string, err error) {
	if len(token) != TokenLen || token[:len(Prefix)] != Prefix {
		return "", "", ErrMalformed
	}
	i := len(Prefix)
	id = token[i : i+IDLen]
	i += IDLen
	if token[i] != '_' {
		return "", "", ErrMalformed
	}
	secret = token[i+1 : i+1+SecretLen]
	i += 1 + SecretLen
	if token[i] != '_' {
		return "", "", ErrMalformed
	}
	if !isB32(id) || !isB32(secret) {
		return "", "", ErrMalformed
	}
	sum := token[i+1:]
	for j := 0; j < len(sum); j++ {
		if c := sum[j]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", "", ErrMalformed
		}
	}
	want, _ := strconv.ParseUint(sum, 16, 32)
	if uint32(want) != crc32.ChecksumIEEE([]byte(token[:i])) {
		return "", "", ErrChecksum
	}
	return id, secret, nil
}

// ValidID reports whether id has the shape of a token id (for ids from
// URLs and forms).
func ValidID(id string) bool { return len(id) == IDLen && isB32(id) }

func isB32(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}
