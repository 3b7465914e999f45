package accesstoken

import (
	"context"

	"github.com/superset-gateway/superset-gateway/audit"
)

// OutcomeAllowed is the outcome label of an allowed token request; a
// refused one is labelled with its policy.Reason.
const OutcomeAllowed = "allowed"

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
