package flaskcookie

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// CSRFSalt is Flask-WTF's salt for signed CSRF tokens.
const CSRFSalt = "wtf-csrf-token"

// SignCSRF returns the token Flask-WTF 1.2 hands to pages and to
// GET /api/v1/security/csrf_token/ for the raw token kept in
// session["csrf_token"]: itsdangerous URLSafeTimedSerializer with salt
// "wtf-csrf-token" and its default signer (django-concat key derivation,
// HMAC-SHA1), key WTF_CSRF_SECRET_KEY (defaults to SECRET_KEY).
func SignCSRF(raw, secretKey string, now time.Time) string {
	b, _ := json.Marshal(raw) // a string always marshals
	signed := base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(timestamp(now))
	return signed + "." + base64.RawURLEncoding.EncodeToString(csrfMAC(secretKey, signed))
}

// VerifyCSRF checks a signed CSRF token and returns the raw token it
// carries; the caller compares that with session["csrf_token"] in constant
// time. maxAge is WTF_CSRF_TIME_LIMIT (Superset: one week); <= 0 disables
// the age check. Errors wrap ErrMalformed, ErrBadSignature or ErrExpired.
func VerifyCSRF(signedToken, secretKey string, maxAge time.Duration, now time.Time) (string, error) {
	if len(signedToken) > 1024 {
		return "", fmt.Errorf("%w: csrf token too long", ErrMalformed)
	}
	i := strings.LastIndexByte(signedToken, '.')
	if i < 0 {
		return "", fmt.Errorf("%w: no signature", ErrMalformed)
	}
	sig, err := base64.RawURLEncoding.DecodeString(signedToken[i+1:])
	if err != nil || !hmac.Equal(sig, csrfMAC(secretKey, signedToken[:i])) {
		return "", ErrBadSignature
	}
	payload, tsText, ok := strings.Cut(signedToken[:i], ".")
	if !ok {
		return "", fmt.Errorf("%w: no timestamp", ErrMalformed)
	}
	ts, err := decodeTimestamp(tsText)
	if err != nil {
		return "", err
	}
	if age := now.Sub(time.Unix(ts, 0)); maxAge > 0 && (age > maxAge || age < -MaxClockSkew) {
		return "", fmt.Errorf("%w: csrf token age %s", ErrExpired, age)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: csrf payload", ErrMalformed)
	}
	var tok string
	if err := json.Unmarshal(raw, &tok); err != nil {
		return "", fmt.Errorf("%w: csrf payload json", ErrMalformed)
	}
	return tok, nil
}

func csrfMAC(secretKey, signed string) []byte {
	// itsdangerous "django-concat": key = sha1(salt + "signer" + secret).
	k := sha1.Sum([]byte(CSRFSalt + "signer" + secretKey))
	m := hmac.New(sha1.New, k[:])
	m.Write([]byte(signed))
	return m.Sum(nil)
}
