// Package guestjwt verifies and mints Superset 6.1 embedded-dashboard guest
// tokens (POST /api/v1/security/guest_token/, sent back as X-GuestToken or
// the guest_token form field).
//
// Superset signs them with PyJWT: alg GUEST_TOKEN_JWT_ALGO (HS256),
// key GUEST_TOKEN_JWT_SECRET, claims user, resources, rls_rules, iat and exp
// as float seconds, aud, and type "guest". Superset itself requires neither
// iat nor exp; this package requires both, because revocation compares iat
// against revoked_before and an eternal token cannot be bounded.
package guestjwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/superset-gateway/superset-gateway/superset/internal/jwtcheck"
)

// MaxTokenLen: longer tokens are refused before parsing. RLS clauses make
// guest tokens larger than API tokens, but not this large.
const MaxTokenLen = 16 << 10

// Sentinel errors; Reason maps them to metric labels. The shared ones are
// jwtcheck's (the API-JWT verifier's are the same values).
var (
	ErrMalformed       = jwtcheck.ErrMalformed
	ErrBadSignature    = jwtcheck.ErrBadSignature
	ErrAlgNotAllowed   = jwtcheck.ErrAlgNotAllowed
	ErrBadHeader       = jwtcheck.ErrBadHeader
	ErrExpired         = jwtcheck.ErrExpired
	ErrMissingExp      = jwtcheck.ErrMissingExp
	ErrNotYetValid     = jwtcheck.ErrNotYetValid
	ErrMissingIAT      = jwtcheck.ErrMissingIAT
	ErrIATInFuture     = jwtcheck.ErrIATInFuture
	ErrWrongType       = jwtcheck.ErrWrongType
	ErrTooLarge        = jwtcheck.ErrTooLarge
	ErrWrongAudience   = errors.New("guestjwt: wrong audience")
	ErrMissingResource = errors.New("guestjwt: no resources")
	ErrMissingClaim    = errors.New("guestjwt: required claim missing")
)

// Reason returns the metric label of an error from Verify ("" for nil,
// "other" for an error this package did not produce).
func Reason(err error) string {
	return jwtcheck.Reason(err, jwtcheck.Label{Err: ErrWrongAudience, Reason: "wrong_audience"},
		jwtcheck.Label{Err: ErrMissingResource, Reason: "missing_resources"},
		jwtcheck.Label{Err: ErrMissingClaim, Reason: "missing_claim"})
}

// User is the "user" claim as the embedding backend sent it.
type User struct {
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
}

// Resource is one entry of "resources". ID is a dashboard id, slug or embed
// uuid as a string (a JSON number is accepted and rendered in decimal).
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// RLSRule is one entry of "rls_rules".
type RLSRule struct {
	Dataset *int64 `json:"dataset,omitempty"`
	Clause  string `json:"clause"`
}

// Claims are a verified guest token's claims.
type Claims struct {
	User      User
	Resources []Resource
	RLSRules  []RLSRule
	Audience  []string
	IssuedAt  time.Time // with Superset's sub-second precision
	ExpiresAt time.Time
}

// Verifier checks guest tokens. The zero value refuses everything.
type Verifier struct {
	// Key is GUEST_TOKEN_JWT_SECRET.
	Key []byte
	// Algorithms is the allow-list; nil means {"HS256"}. Only HMAC
	// algorithms (HS256, HS384, HS512) can verify with a shared secret.
	Algorithms []string
	// Audience, when non-empty, must appear in "aud" (Superset always sets
	// one: GUEST_TOKEN_JWT_AUDIENCE or WEBDRIVER_BASEURL).
	Audience string
	// Leeway is tolerated clock skew for exp, nbf and iat.
	Leeway time.Duration
}

// Verify checks token at time now.
func (v Verifier) Verify(token string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(token))
	}
	algs := v.Algorithms
	if algs == nil {
		algs = []string{"HS256"}
	}
	algs = slices.DeleteFunc(slices.Clone(algs), func(a string) bool {
		return a != "HS256" && a != "HS384" && a != "HS512"
	})
	if _, err := jwtcheck.Header(token, algs); err != nil {
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
	p := jwt.NewParser(jwt.WithValidMethods(algs), jwt.WithJSONNumber(), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	mc := jwt.MapClaims{}
	if _, err := p.ParseWithClaims(token, mc, func(*jwt.Token) (any, error) { return v.Key, nil }); err != nil {
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return v.claims(mc, now)
}

func (v Verifier) claims(m jwt.MapClaims, now time.Time) (*Claims, error) {
	var c Claims
	date := func(name string, missing error) (time.Time, error) {
		t, ok, err := jwtcheck.NumericDate(m, name)
		if err != nil {
			return t, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !ok {
			return t, missing
		}
		return t, nil
	}
	var err error
	if c.IssuedAt, err = date("iat", ErrMissingIAT); err != nil {
		return nil, err
	}
	if c.ExpiresAt, err = date("exp", ErrMissingExp); err != nil {
		return nil, err
	}
	if !now.Before(c.ExpiresAt.Add(v.Leeway)) {
		return nil, ErrExpired
	}
	if nbf, err := date("nbf", nil); err != nil {
		return nil, err
	} else if !nbf.IsZero() && now.Add(v.Leeway).Before(nbf) {
		return nil, ErrNotYetValid
	}
	if now.Add(v.Leeway).Before(c.IssuedAt) {
		return nil, ErrIATInFuture
	}
	aud, err := m.GetAudience()
	if err != nil {
		return nil, fmt.Errorf("%w: aud: %w", ErrMalformed, err)
	}
	c.Audience = aud
	if v.Audience != "" && !slices.Contains(aud, v.Audience) {
		return nil, ErrWrongAudience
	}
	if typ, _ := m["type"].(string); typ != "guest" {
		return nil, fmt.Errorf("%w: %q", ErrWrongType, typ)
	}
	for _, k := range []string{"user", "resources", "rls_rules"} {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%w: %s", ErrMissingClaim, k)
		}
	}
	if err := remarshal(m["user"], &c.User); err != nil {
		return nil, fmt.Errorf("%w: user: %w", ErrMalformed, err)
	}
	var res []struct {
		Type string `json:"type"`
		ID   any    `json:"id"`
	}
	if err := remarshal(m["resources"], &res); err != nil {
		return nil, fmt.Errorf("%w: resources: %w", ErrMalformed, err)
	}
	for _, r := range res {
		var id string
		switch x := r.ID.(type) {
		case string:
			id = x
		case json.Number:
			id = x.String()
		default:
			return nil, fmt.Errorf("%w: resource id of type %T", ErrMalformed, r.ID)
		}
		c.Resources = append(c.Resources, Resource{Type: r.Type, ID: id})
	}
	if len(c.Resources) == 0 {
		return nil, ErrMissingResource
	}
	for _, r := range c.Resources {
		if r.Type == "" || r.ID == "" {
			return nil, fmt.Errorf("%w: resource without type or id", ErrMalformed)
		}
	}
	if m["rls_rules"] != nil {
		if err := remarshal(m["rls_rules"], &c.RLSRules); err != nil {
			return nil, fmt.Errorf("%w: rls_rules: %w", ErrMalformed, err)
		}
	}
	return &c, nil
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(out)
}

// MintOptions describe a guest token to mint (the fake Superset and tests).
type MintOptions struct {
	User      User
	Resources []Resource
	RLSRules  []RLSRule
	Audience  string
	Algorithm string        // default HS256
	Now       time.Time     // required
	TTL       time.Duration // default 300 s (GUEST_TOKEN_JWT_EXP_SECONDS)
	// Rev, if set, is minted as the "rev" claim: Superset master's
	// (unreleased) global guest-token revocation version.
	Rev *int64
}

// ErrMint reports bad MintOptions.
var ErrMint = errors.New("guestjwt: cannot mint")

// Mint signs a token shaped like Superset's: iat and exp as float seconds.
func Mint(key []byte, o MintOptions) (string, error) {
	if len(key) == 0 || o.Now.IsZero() {
		return "", fmt.Errorf("%w: key and now are required", ErrMint)
	}
	if o.TTL <= 0 {
		o.TTL = 300 * time.Second
	}
	alg := o.Algorithm
	if alg == "" {
		alg = "HS256"
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil || (alg != "HS256" && alg != "HS384" && alg != "HS512") {
		return "", fmt.Errorf("%w: algorithm %q", ErrMint, alg)
	}
	rls := o.RLSRules
	if rls == nil {
		rls = []RLSRule{}
	}
	iat := float64(o.Now.UnixNano()) / 1e9
	claims := jwt.MapClaims{
		"user": o.User, "resources": o.Resources, "rls_rules": rls,
		"iat": iat, "exp": iat + o.TTL.Seconds(), "aud": o.Audience, "type": "guest",
	}
	if o.Rev != nil {
		claims["rev"] = *o.Rev
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("guestjwt: sign: %w", err)
	}
	return s, nil
}

// PayloadClaims reads the claims of a token's payload segment (base64url,
// as PyJWT decodes it) and checks them as Verify does, without any
// signature. It is for refusing a token the gateway found but cannot
// verify (a copy whose signature segment Superset would still accept),
// never for allowing one.
func (v Verifier) PayloadClaims(payload string, now time.Time) (*Claims, error) {
	if len(payload) > MaxTokenLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(payload))
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	m := jwt.MapClaims{}
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	return v.claims(m, now)
}
