package accesstoken

import (
	"context"

	"github.com/superset-gateway/superset-gateway/audit"
)

// Outcomes and refusal reasons of a token request. They are metric labels
// and audit reasons; policy.Allow's reasons (missing_scope:…, not_api,
// no_scope) and the epoch package's (revoked_user, revoked_global,
// bad_subject) are used as they are.
const (
	OutcomeAllowed = "allowed"

	ReasonMalformed        = "malformed"
	ReasonBadChecksum      = "bad_checksum"
	ReasonBadHeader        = "bad_authorization_header"
	ReasonUnknown          = "unknown"
	ReasonBadSecret        = "bad_secret"
	ReasonRevoked          = "revoked"
	ReasonExpired          = "expired"
	ReasonCIDR             = "cidr"
	ReasonStoreUnavailable = "store_unavailable"
	ReasonUpstream         = "upstream_credentials"
)

// ScopeNone is the scope label of a request refused before its scope was
// known.
const ScopeNone = "none"

// Observer receives the package's metrics; metrics.AccessTokens implements
// it. It must be safe for concurrent use and must not block. scope is a
// policy scope or ScopeNone; outcome is OutcomeAllowed or a refusal reason
// (bounded: the constants above, policy's and epoch's reasons).
type Observer interface {
	ObserveAccessTokenRequest(scope, outcome string)
	// ObserveAccessTokenManaged counts created and revoked tokens
	// (op "created" or "revoked").
	ObserveAccessTokenManaged(op string)
}

type nopObserver struct{}

func (nopObserver) ObserveAccessTokenRequest(string, string) {}
func (nopObserver) ObserveAccessTokenManaged(string)         {}

// Auditor records audit events; *audit.Logger satisfies it. Events:
// access_token.created, access_token.revoked (Actor: who revoked),
// access_token.new_ip (first use from an address), access_token.refused
// (Reason). Details hold ids, names, scopes and counts, never a secret.
type Auditor interface {
	Emit(ctx context.Context, ev audit.Event) error
}

type nopAuditor struct{}

func (nopAuditor) Emit(context.Context, audit.Event) error { return nil }
