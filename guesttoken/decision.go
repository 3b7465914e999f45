package guesttoken

import (
	"time"
	"unicode/utf8"

	"github.com/superset-gateway/superset-gateway/policy"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// Decision is the outcome of one check: policy.Decision, the one decision
// type of the gateway, whose Reason is the metric label, the audit reason
// and what tests assert. An allowing Decision has Reason ReasonOK.
type Decision = policy.Decision

// Reasons produced by this package, from the one vocabulary
// (policy/reason.go). Verification failures use guestjwt.Reason's labels
// ("bad_signature", "alg_not_allowed", "expired", "missing_iat",
// "malformed", "wrong_type", "missing_resources", …).
const (
	ReasonOK               = policy.ReasonOK
	ReasonRevoked          = policy.ReasonGuestRevoked
	ReasonDefaultSecret    = policy.ReasonDefaultSecret
	ReasonLifetime         = policy.ReasonLifetime
	ReasonTooManyResources = policy.ReasonTooManyResources
	ReasonBadResource      = policy.ReasonBadResource
	ReasonAmbiguous        = policy.ReasonAmbiguous
	ReasonTooLarge         = policy.ReasonTooLarge
	ReasonFormTooLarge     = policy.ReasonFormTooLarge
	ReasonMalformedForm    = policy.ReasonMalformedForm
	ReasonBodyRead         = policy.ReasonBodyRead
	ReasonStoreUnavailable = policy.ReasonStoreUnavailable
)

// allow and refuse build Decisions.
func allow() Decision                      { return Decision{Allow: true, Reason: ReasonOK} }
func refuse(reason policy.Reason) Decision { return Decision{Reason: reason} }

// CheckRevocation decides whether a token issued at iat survives the
// revocation stamp revokedBeforeMs (milliseconds since the epoch; stamped
// false means no stamp applies). iat is truncated to the millisecond, so a
// token issued within the stamp's own millisecond is refused: a tie goes to
// revocation, never to the token.
func CheckRevocation(iat time.Time, revokedBeforeMs int64, stamped bool) Decision {
	if stamped && iat.UnixMilli() <= revokedBeforeMs {
		return refuse(ReasonRevoked)
	}
	return allow()
}

// Policy is the operator's policy on verified tokens. The zero value
// imposes no lifetime cap and allows DefaultMaxResources resources.
type Policy struct {
	// MaxLifetime caps exp - iat; 0 means no cap. Superset's default
	// lifetime is 300 s (GUEST_TOKEN_JWT_EXP_SECONDS).
	MaxLifetime time.Duration
	// MaxResources bounds the resources of one token, and so the store
	// lookups one request can cause; 0 means DefaultMaxResources.
	MaxResources int
}

// DefaultMaxResources is Policy.MaxResources' default.
const DefaultMaxResources = 32

// MaxAliasLen bounds a dashboard id, slug or uuid (Superset's slug column
// is VARCHAR(255)).
const MaxAliasLen = 255

// CheckClaims applies p to a verified token's claims.
func CheckClaims(c *guestjwt.Claims, p Policy) Decision {
	max := p.MaxResources
	if max <= 0 {
		max = DefaultMaxResources
	}
	if len(c.Resources) > max {
		return refuse(ReasonTooManyResources)
	}
	for _, r := range c.Resources {
		if !validType(r.Type) || !ValidAlias(r.ID) {
			return refuse(ReasonBadResource)
		}
	}
	if p.MaxLifetime > 0 && c.ExpiresAt.Sub(c.IssuedAt) > p.MaxLifetime {
		return refuse(ReasonLifetime)
	}
	return allow()
}

// ValidAlias reports whether s can be a dashboard id, slug or embed uuid:
// 1 to MaxAliasLen bytes of UTF-8 without control characters. It keeps
// store keys printable and bounded.
func ValidAlias(s string) bool {
	if s == "" || len(s) > MaxAliasLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// validType admits resource types of lowercase letters and underscores
// ("dashboard" is the only one Superset 6.1 issues), so that a type can
// never contain the ":" that separates it from the id in a store key.
func validType(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}
