// Package flaskcookie decodes and encodes Flask's default client-side session
// cookie ("session"), as written by Flask 2.3's SecureCookieSessionInterface
// through itsdangerous 2.2's URLSafeTimedSerializer:
//
//	[.]<base64url payload>.<base64url timestamp>.<base64url HMAC-SHA1>
//
// The payload is Flask's tagged JSON, zlib-compressed (and prefixed with '.')
// when that is shorter. The signing key is HMAC-SHA1(SECRET_KEY,
// "cookie-session"). The package knows nothing about HTTP; it turns a cookie
// value into a Session and back.
package flaskcookie

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Salt is the itsdangerous salt Flask uses for session cookies.
const Salt = "cookie-session"

// Limits that bound the work an attacker-controlled cookie can cause.
const (
	// MaxValueLen caps the cookie value accepted by Decode. Browsers keep
	// cookies under 4 KiB; a larger value is not something Flask produced.
	MaxValueLen = 16 << 10
	// MaxDecompressed caps the inflated payload (zip-bomb guard).
	MaxDecompressed = 256 << 10
	// MaxClockSkew is how far in the future a timestamp may lie before
	// Decode calls it expired. itsdangerous allows none, but the gateway and
	// Superset run on different clocks and timestamps are whole seconds.
	MaxClockSkew = 5 * time.Second
)

// Sentinel errors. Every error returned by Decode wraps exactly one of them.
var (
	// ErrMalformed: the value is not in the itsdangerous format, or its
	// payload is not valid (tagged) JSON, or it exceeds a size limit.
	ErrMalformed = errors.New("flaskcookie: malformed")
	// ErrBadSignature: the HMAC does not verify under the given secret.
	ErrBadSignature = errors.New("flaskcookie: bad signature")
	// ErrExpired: the signature verifies but its timestamp is older than
	// maxAge (or further in the future than MaxClockSkew).
	ErrExpired = errors.New("flaskcookie: expired")
)

// Decode verifies value with secretKey and returns the session it carries.
//
// Verification happens in itsdangerous's order: the signature over
// "<payload>.<timestamp>" first (split from the right, compared in constant
// time), then the timestamp's age against maxAge (maxAge <= 0 disables the age
// check; Flask uses PERMANENT_SESSION_LIFETIME, 31 days), and only then is the
// payload decompressed and parsed, so unauthenticated bytes are never
// inflated. Flask itself treats any failure as an empty session; callers
// should do the same and must not echo the error text to clients.
func Decode(value, secretKey string, maxAge time.Duration, now time.Time) (Session, error) {
	s, _, err := decode(value, secretKey, maxAge, now)
	return s, err
}

// DecodeTimestamp is Decode that also returns the signing time.
func DecodeTimestamp(value, secretKey string, maxAge time.Duration, now time.Time) (Session, time.Time, error) {
	return decode(value, secretKey, maxAge, now)
}

func decode(value, secretKey string, maxAge time.Duration, now time.Time) (Session, time.Time, error) {
	if len(value) > MaxValueLen {
		return nil, time.Time{}, fmt.Errorf("%w: value of %d bytes", ErrMalformed, len(value))
	}
	i := strings.LastIndexByte(value, '.')
	if i < 0 {
		return nil, time.Time{}, fmt.Errorf("%w: no signature separator", ErrMalformed)
	}
	signed, sigText := value[:i], value[i+1:]
	sig, err := base64.RawURLEncoding.DecodeString(sigText)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: signature encoding", ErrBadSignature)
	}
	if !hmac.Equal(sig, sign(secretKey, signed)) {
		return nil, time.Time{}, ErrBadSignature
	}
	j := strings.LastIndexByte(signed, '.')
	if j < 0 {
		return nil, time.Time{}, fmt.Errorf("%w: no timestamp", ErrMalformed)
	}
	payload, tsText := signed[:j], signed[j+1:]
	ts, err := decodeTimestamp(tsText)
	if err != nil {
		return nil, time.Time{}, err
	}
	signedAt := time.Unix(ts, 0)
	if maxAge > 0 {
		age := now.Sub(signedAt)
		if age > maxAge {
			return nil, signedAt, fmt.Errorf("%w: age %s > %s", ErrExpired, age.Truncate(time.Second), maxAge)
		}
		if age < -MaxClockSkew {
			return nil, signedAt, fmt.Errorf("%w: timestamp %s in the future", ErrExpired, -age)
		}
	}
	raw, err := decodePayload(payload)
	if err != nil {
		return nil, signedAt, err
	}
	s, err := unmarshal(raw)
	if err != nil {
		return nil, signedAt, err
	}
	return s, signedAt, nil
}

func decodeTimestamp(text string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(b) == 0 || len(b) > 8 {
		return 0, fmt.Errorf("%w: timestamp", ErrMalformed)
	}
	var buf [8]byte
	copy(buf[8-len(b):], b)
	ts := binary.BigEndian.Uint64(buf[:])
	if ts > 1<<62 {
		return 0, fmt.Errorf("%w: timestamp out of range", ErrMalformed)
	}
	return int64(ts), nil
}

func decodePayload(payload string) ([]byte, error) {
	compressed := strings.HasPrefix(payload, ".")
	if compressed {
		payload = payload[1:]
	}
	data, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding: %w", ErrMalformed, err)
	}
	if !compressed {
		return data, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %w", ErrMalformed, err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %w", ErrMalformed, err)
	}
	if len(out) > MaxDecompressed {
		return nil, fmt.Errorf("%w: payload inflates beyond %d bytes", ErrMalformed, MaxDecompressed)
	}
	return out, nil
}

// Encode serialises s the way Flask does and signs it with secretKey at time
// now. Compression is used when it saves at least two bytes, like
// itsdangerous. Values must be those Decode produces (see Session) or plain
// JSON-marshalable Go values.
func Encode(s Session, secretKey string, now time.Time) (string, error) {
	raw, err := marshal(s)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(raw)
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	if _, err := zw.Write(raw); err != nil {
		return "", fmt.Errorf("flaskcookie: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("flaskcookie: compress: %w", err)
	}
	if zb.Len() < len(raw)-1 {
		payload = "." + base64.RawURLEncoding.EncodeToString(zb.Bytes())
	}
	signed := payload + "." + base64.RawURLEncoding.EncodeToString(timestamp(now))
	return signed + "." + base64.RawURLEncoding.EncodeToString(sign(secretKey, signed)), nil
}

// timestamp is itsdangerous's int_to_bytes: big-endian, no leading zeros.
func timestamp(now time.Time) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(now.Unix()))
	return bytes.TrimLeft(buf[:], "\x00")
}

func sign(secretKey, signed string) []byte {
	kdf := hmac.New(sha1.New, []byte(secretKey))
	kdf.Write([]byte(Salt))
	mac := hmac.New(sha1.New, kdf.Sum(nil))
	mac.Write([]byte(signed))
	return mac.Sum(nil)
}
