// Package apijwt verifies and mints the API JWTs Superset 6.1 issues from
// POST /api/v1/security/login and /refresh (flask-jwt-extended 4.7.1 over
// PyJWT 2.10.1 with Superset's defaults: HS256, key = JWT_SECRET_KEY or
// SECRET_KEY, identity in a string "sub", no leeway).
//
// Verification is stricter than Superset where Superset's own tokens never
// exercise the leniency: only HS256, only "alg" and "typ" in the header, and
// "exp", "iat", "sub" and "type" required.
package apijwt

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/superset-gateway/superset-gateway/superset/internal/jwtcheck"
)

// MaxTokenLen: longer tokens are refused before any parsing. Superset's are
// about 400 bytes.
const MaxTokenLen = 8 << 10

// Type is the flask-jwt-extended "type" claim.
type Type string

// Token types.
const (
	Access  Type = "access"
	Refresh Type = "refresh"
)

// Sentinel errors. Every error from Verify wraps exactly one; Reason maps
// it to a stable metric label. The shared ones are jwtcheck's (the guest
// verifier's are the same values).
var (
	ErrMalformed     = jwtcheck.ErrMalformed
	ErrBadSignature  = jwtcheck.ErrBadSignature
	ErrAlgNotAllowed = jwtcheck.ErrAlgNotAllowed
	ErrBadHeader     = jwtcheck.ErrBadHeader
	ErrExpired       = jwtcheck.ErrExpired
	ErrMissingExp    = jwtcheck.ErrMissingExp
	ErrNotYetValid   = jwtcheck.ErrNotYetValid
	ErrMissingIAT    = jwtcheck.ErrMissingIAT
	ErrIATInFuture   = jwtcheck.ErrIATInFuture
	ErrWrongType     = jwtcheck.ErrWrongType
	ErrTooLarge      = jwtcheck.ErrTooLarge
	ErrMissingSub    = errors.New("apijwt: sub missing")
	ErrInvalidSub    = errors.New("apijwt: sub is not a non-empty string")
)

// Reason returns the metric label for an error from Verify: one of
// malformed, bad_signature, alg_not_allowed, bad_header, expired,
// missing_exp, not_yet_valid, missing_iat, iat_in_future, missing_sub,
// invalid_sub, wrong_type, too_large; "" for nil and "other" for anything
// else.
func Reason(err error) string {
	return jwtcheck.Reason(err, jwtcheck.Label{Err: ErrMissingSub, Reason: "missing_sub"},
		jwtcheck.Label{Err: ErrInvalidSub, Reason: "invalid_sub"})
}

// Claims are the verified claims of a Superset API token.
type Claims struct {
	Subject   string    // user id as a decimal string (str(user.id))
	Type      Type      // Access or Refresh
	JTI       string    // uuid4; "" if absent (flask-jwt-extended allows that)
	Fresh     bool      // true from login, false from refresh
	CSRF      string    // flask-jwt-extended's double-submit value; unused by Superset
	IssuedAt  time.Time // whole seconds
	ExpiresAt time.Time
	NotBefore time.Time // zero if absent
}

// Verifier checks tokens against Superset's JWT secret. The zero value
// refuses everything (an empty key never verifies).
type Verifier struct {
	// Key is Superset's JWT_SECRET_KEY (SECRET_KEY unless set separately).
	Key []byte
	// Leeway is tolerated clock skew for exp, nbf and iat. Superset uses 0.
	Leeway time.Duration
}

// Verify checks token at time now and returns its claims. want restricts
// the "type" claim; "" accepts Access or Refresh. On error the Claims are
// nil; the error wraps one sentinel and never contains the token.
func (v Verifier) Verify(token string, want Type, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(token))
	}
	if _, err := jwtcheck.Header(token, []string{"HS256"}); err != nil {
		switch {
		case errors.Is(err, jwtcheck.ErrAlgNotAllowed):
			return nil, fmt.Errorf("%w: %w", ErrAlgNotAllowed, err)
		case errors.Is(err, jwtcheck.ErrBadHeader):
			return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(v.Key) == 0 {
		return nil, fmt.Errorf("%w: no key configured", ErrBadSignature)
	}
	payload, err := verifySignature(token, v.Key)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var mc map[string]any
	if err := dec.Decode(&mc); err != nil || mc == nil || dec.More() {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	return claimsFrom(mc, want, now, v.Leeway)
}

// VerifySignature is the signature layer alone: token must be a compact JWS
// of three strictly base64url-encoded segments (no padding, no stray or
// non-canonical characters; RFC 7515 §2, §5.2) whose header says
// "alg": "HS256" and whose MAC over the transmitted
// "<header>.<payload>" verifies under key. It does not look at the payload
// or at other header members, so it also serves JWS test vectors whose
// payloads are not JWT claims. Errors wrap ErrMalformed, ErrAlgNotAllowed
// or ErrBadSignature; an empty key never verifies.
func VerifySignature(token string, key []byte) error {
	_, err := verifySignature(token, key)
	return err
}

// verifySignature is VerifySignature that also returns the decoded payload.
func verifySignature(token string, key []byte) ([]byte, error) {
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want 3 segments", ErrMalformed)
	}
	p := jwt.NewParser(jwt.WithStrictDecoding())
	var segs [3][]byte
	for i, part := range parts {
		b, err := p.DecodeSegment(part)
		if err != nil {
			return nil, fmt.Errorf("%w: segment %d: %w", ErrMalformed, i, err)
		}
		segs[i] = b
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	if err := json.Unmarshal(segs[0], &hdr); err != nil {
		return nil, fmt.Errorf("%w: header json", ErrMalformed)
	}
	if hdr.Alg == nil || *hdr.Alg != "HS256" {
		return nil, ErrAlgNotAllowed
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: no key configured", ErrBadSignature)
	}
	if err := jwt.SigningMethodHS256.Verify(parts[0]+"."+parts[1], segs[2], key); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return segs[1], nil
}

func claimsFrom(m map[string]any, want Type, now time.Time, leeway time.Duration) (*Claims, error) {
	var c Claims
	sub, ok := m["sub"]
	if !ok || sub == nil {
		return nil, ErrMissingSub
	}
	if c.Subject, ok = sub.(string); !ok || c.Subject == "" {
		return nil, fmt.Errorf("%w: %T", ErrInvalidSub, sub)
	}
	iat, ok, err := jwtcheck.NumericDate(m, "iat")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !ok {
		return nil, ErrMissingIAT
	}
	exp, ok, err := jwtcheck.NumericDate(m, "exp")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !ok {
		return nil, ErrMissingExp
	}
	nbf, hasNBF, err := jwtcheck.NumericDate(m, "nbf")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// PyJWT: expired when now >= exp (exp is exclusive).
	if !now.Before(exp.Add(leeway)) {
		return nil, ErrExpired
	}
	if hasNBF && now.Add(leeway).Before(nbf) {
		return nil, ErrNotYetValid
	}
	if now.Add(leeway).Before(iat) {
		return nil, ErrIATInFuture
	}
	typ, _ := m["type"].(string)
	c.Type = Type(typ)
	if c.Type != Access && c.Type != Refresh {
		return nil, fmt.Errorf("%w: %q", ErrWrongType, typ)
	}
	if want != "" && c.Type != want {
		return nil, fmt.Errorf("%w: got %s, want %s", ErrWrongType, c.Type, want)
	}
	c.JTI, _ = m["jti"].(string)
	c.CSRF, _ = m["csrf"].(string)
	switch f := m["fresh"].(type) {
	case bool:
		c.Fresh = f
	case json.Number:
		// flask-jwt-extended stores a timedelta freshness as "fresh until".
		if t, ok, _ := jwtcheck.NumericDate(m, "fresh"); ok {
			c.Fresh = now.Before(t)
		}
	}
	c.IssuedAt, c.ExpiresAt = iat, exp
	if hasNBF {
		c.NotBefore = nbf
	}
	return &c, nil
}

// MintOptions describe a token to mint. Zero values get Superset's defaults.
type MintOptions struct {
	Subject string // required: the user id as a string
	Type    Type   // default Access
	Fresh   bool
	// TTL defaults to 15 minutes for access and 30 days for refresh tokens.
	TTL time.Duration
	// JTI and CSRF default to random uuid4 strings.
	JTI, CSRF string
	Now       time.Time // required: issue time (truncated to seconds)
}

// ErrMint reports bad MintOptions.
var ErrMint = errors.New("apijwt: cannot mint")

// Mint signs a token shaped exactly like flask-jwt-extended 4.7.1's:
// fresh, iat, jti, type, sub, nbf, csrf, exp.
func Mint(key []byte, o MintOptions) (string, error) {
	if len(key) == 0 || o.Subject == "" || o.Now.IsZero() {
		return "", fmt.Errorf("%w: key, subject and now are required", ErrMint)
	}
	if o.Type == "" {
		o.Type = Access
	}
	if o.TTL <= 0 {
		o.TTL = 15 * time.Minute
		if o.Type == Refresh {
			o.TTL = 30 * 24 * time.Hour
		}
	}
	if o.JTI == "" {
		o.JTI = NewUUID()
	}
	if o.CSRF == "" {
		o.CSRF = NewUUID()
	}
	iat := o.Now.Unix()
	claims := jwt.MapClaims{
		"fresh": o.Fresh, "iat": iat, "jti": o.JTI, "type": string(o.Type),
		"sub": o.Subject, "nbf": iat, "csrf": o.CSRF, "exp": iat + int64(o.TTL/time.Second),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("apijwt: sign: %w", err)
	}
	return s, nil
}

// NewUUID returns a random (version 4) UUID string.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
