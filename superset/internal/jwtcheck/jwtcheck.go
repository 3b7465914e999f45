// Package jwtcheck holds the checks the API-JWT and guest-token verifiers
// share: a strict look at the JOSE header before any library sees the token,
// and helpers for numeric-date claims.
package jwtcheck

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Sentinel errors. apijwt and guestjwt use them as their own (their
// ErrExpired is this ErrExpired), so a failure means the same whichever
// verifier said it; Reason maps them to metric labels.
var (
	// ErrMalformed: not three base64url segments with a JSON object header.
	ErrMalformed = errors.New("jwtcheck: malformed")
	// ErrBadSignature: the signature does not verify under the key.
	ErrBadSignature = errors.New("jwtcheck: bad signature")
	// ErrExpired, ErrNotYetValid, ErrIATInFuture: the time claims.
	ErrExpired     = errors.New("jwtcheck: token expired")
	ErrNotYetValid = errors.New("jwtcheck: token not yet valid")
	ErrIATInFuture = errors.New("jwtcheck: iat in the future")
	// ErrMissingExp, ErrMissingIAT: a required time claim is absent.
	ErrMissingExp = errors.New("jwtcheck: exp missing")
	ErrMissingIAT = errors.New("jwtcheck: iat missing")
	// ErrWrongType: the "type" claim is not the one wanted.
	ErrWrongType = errors.New("jwtcheck: wrong token type")
	// ErrTooLarge: the token is longer than its verifier reads.
	ErrTooLarge = errors.New("jwtcheck: token too large")
	// ErrAlgNotAllowed: "alg" is absent or not exactly one of the allowed
	// names (so "none", "None", "hs256", "RS256" all fail here).
	ErrAlgNotAllowed = errors.New("jwtcheck: alg not allowed")
	// ErrBadHeader: the header carries a member Superset never writes
	// (kid, jku, jwk, x5u, x5c, crit, …). PyJWT writes only alg and typ.
	ErrBadHeader = errors.New("jwtcheck: header member not allowed")
)

// MaxHeaderLen bounds the decoded header we are willing to parse.
const MaxHeaderLen = 1 << 10

// Header checks the token's JOSE header and returns its alg. It does not
// verify anything else.
func Header(token string, allowed []string) (string, error) {
	seg, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return "", fmt.Errorf("%w: want 3 segments", ErrMalformed)
	}
	if base64.RawURLEncoding.DecodedLen(len(seg)) > MaxHeaderLen {
		return "", fmt.Errorf("%w: header too long", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return "", fmt.Errorf("%w: header encoding", ErrMalformed)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil || h == nil {
		return "", fmt.Errorf("%w: header json", ErrMalformed)
	}
	alg, _ := h["alg"].(string)
	if !slices.Contains(allowed, alg) {
		return "", fmt.Errorf("%w: %q", ErrAlgNotAllowed, alg)
	}
	for k, v := range h {
		switch k {
		case "alg":
		case "typ":
			if s, ok := v.(string); !ok || !strings.EqualFold(s, "JWT") {
				return "", fmt.Errorf("%w: typ %v", ErrBadHeader, v)
			}
		default:
			return "", fmt.Errorf("%w: %q", ErrBadHeader, k)
		}
	}
	return alg, nil
}

// ErrNotNumber reports a date claim that is present but not a finite number.
var ErrNotNumber = errors.New("jwtcheck: date claim is not a number")

// NumericDate reads claim name from m as seconds since the epoch (integer or
// fraction, as PyJWT accepts). ok is false when the claim is absent or null.
func NumericDate(m map[string]any, name string) (t time.Time, ok bool, err error) {
	v, present := m[name]
	if !present || v == nil {
		return time.Time{}, false, nil
	}
	var f float64
	switch x := v.(type) {
	case json.Number:
		f, err = x.Float64()
		if err != nil {
			return time.Time{}, false, fmt.Errorf("%w: %s", ErrNotNumber, name)
		}
	case float64:
		f = x
	default:
		return time.Time{}, false, fmt.Errorf("%w: %s", ErrNotNumber, name)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
		return time.Time{}, false, fmt.Errorf("%w: %s out of range", ErrNotNumber, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// Label pairs a sentinel error with its metric label.
type Label struct {
	Err    error
	Reason string
}

// Reason returns the metric label of a verifier's error: the label of the
// first of extra, then of this package's sentinels, that err wraps; "" for
// nil and "other" for an error no verifier produced.
func Reason(err error, extra ...Label) string {
	if err == nil {
		return ""
	}
	for _, l := range append(extra,
		Label{ErrMalformed, "malformed"}, Label{ErrBadSignature, "bad_signature"},
		Label{ErrAlgNotAllowed, "alg_not_allowed"}, Label{ErrBadHeader, "bad_header"},
		Label{ErrExpired, "expired"}, Label{ErrMissingExp, "missing_exp"},
		Label{ErrNotYetValid, "not_yet_valid"}, Label{ErrMissingIAT, "missing_iat"},
		Label{ErrIATInFuture, "iat_in_future"}, Label{ErrWrongType, "wrong_type"},
		Label{ErrTooLarge, "too_large"}) {
		if errors.Is(err, l.Err) {
			return l.Reason
		}
	}
	return "other"
}
