package knownsecret

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/superset-gateway/superset-gateway/superset/flaskcookie"
)

// SessionCookie returns a Verifier of a Flask session cookie's signature
// (itsdangerous, salt "cookie-session"): true when the secret signed it,
// whatever its age. ok is false when value is not in the signed-cookie
// format at all (a server-side session id, say), so nothing can be learnt
// from it.
func SessionCookie(value string) (v Verifier, ok bool) {
	if len(value) > flaskcookie.MaxValueLen || strings.Count(value, ".") < 2 {
		return nil, false
	}
	return func(secret []byte) bool {
		_, err := flaskcookie.Decode(value, string(secret), 0, time.Time{})
		// Any answer other than a bad signature means the HMAC verified
		// (a malformed payload under a good signature still proves the key).
		return err == nil || !errors.Is(err, flaskcookie.ErrBadSignature)
	}, true
}

// GuestToken returns a Verifier of an HMAC-signed JWT's signature (HS256,
// HS384 or HS512, as Superset's GUEST_TOKEN_JWT_ALGO allows). ok is false
// when token is not such a JWT.
func GuestToken(token string) (v Verifier, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 16<<10 {
		return nil, false
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &h) != nil {
		return nil, false
	}
	var m jwt.SigningMethod
	switch h.Alg {
	case "HS256":
		m = jwt.SigningMethodHS256
	case "HS384":
		m = jwt.SigningMethodHS384
	case "HS512":
		m = jwt.SigningMethodHS512
	default:
		return nil, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, false
	}
	signing := parts[0] + "." + parts[1]
	return func(secret []byte) bool {
		return len(secret) > 0 && m.Verify(signing, sig, secret) == nil
	}, true
}
