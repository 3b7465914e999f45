package policy

// Reason is why the gateway refused (or let through) a request: one typed
// value that is the same in the status mapping (gateway's refusal writer),
// the metric label, the audit event's reason and the tests. Every refusal
// reason of the gateway is declared in this file; a package that needs a
// new one adds it here. A Reason never holds a request's data (a token, a
// path, a username): its values are the constants below, plus
// ReasonMissingScopePrefix followed by a scope name from the scope table.
type Reason string

// Request hygiene: the request cannot be read unambiguously or is too big.
const (
	ReasonBodyTooLarge     Reason = "body_too_large"
	ReasonSmuggling        Reason = "smuggling"
	ReasonFramingConflict  Reason = "framing_conflict"
	ReasonFramingUnknown   Reason = "framing_unknown" // the listener lost a connection's framing
	ReasonBadPath          Reason = "bad_path"
	ReasonPathTooLong      Reason = "path_too_long"
	ReasonBadMethod        Reason = "bad_method"
	ReasonUnderscoreHeader Reason = "underscore_header"
	ReasonDuplicateHeader  Reason = "duplicate_header"
	// A user-administration request whose target id is not a plain
	// decimal ("03", "+3"): the gateway could not stamp the right user.
	ReasonBadUserID Reason = "bad_user_id"
)

// ReasonOK is the reason of an allowing decision that has nothing more to
// say (a guest token that verified and passed the policy).
const ReasonOK Reason = "ok"

// Authentication: the credential is missing its parts, malformed, forged,
// expired, or the request carries more than one kind.
const (
	ReasonMixedCredentials       Reason = "mixed_credentials"
	ReasonBadAuthorizationHeader Reason = "bad_authorization_header"
	ReasonMalformed              Reason = "malformed"
	ReasonBadSignature           Reason = "bad_signature"
	ReasonAlgNotAllowed          Reason = "alg_not_allowed"
	ReasonBadHeader              Reason = "bad_header"
	ReasonExpired                Reason = "expired"
	ReasonMissingExp             Reason = "missing_exp"
	ReasonNotYetValid            Reason = "not_yet_valid"
	ReasonMissingIAT             Reason = "missing_iat"
	ReasonIATInFuture            Reason = "iat_in_future"
	ReasonMissingSub             Reason = "missing_sub"
	ReasonInvalidSub             Reason = "invalid_sub"
	ReasonWrongType              Reason = "wrong_type"
	ReasonTooLarge               Reason = "too_large"
	ReasonWrongAudience          Reason = "wrong_audience"
	ReasonMissingResources       Reason = "missing_resources"
	ReasonMissingClaim           Reason = "missing_claim"
	ReasonOther                  Reason = "other"
	// Guest tokens.
	ReasonDefaultSecret    Reason = "default_secret"
	ReasonLifetime         Reason = "lifetime_exceeded"
	ReasonTooManyResources Reason = "too_many_resources"
	ReasonBadResource      Reason = "bad_resource"
	ReasonAmbiguous        Reason = "ambiguous"
	ReasonFormTooLarge     Reason = "form_too_large"
	ReasonMalformedForm    Reason = "malformed_form"
	ReasonBodyRead         Reason = "body_read"
	// Access tokens.
	ReasonBadChecksum     Reason = "bad_checksum"
	ReasonUnknownToken    Reason = "unknown"
	ReasonBadSecret       Reason = "bad_secret"
	ReasonTokenRevoked    Reason = "revoked"
	ReasonCIDR            Reason = "cidr"
	ReasonTokensDisabled  Reason = "disabled"
	ReasonUpstreamCredits Reason = "upstream_credentials"
)

// Revocation: the credential is genuine but was issued before an
// invalidation epoch, a guest token's revoked_before or its own revocation.
const (
	ReasonRevokedUser   Reason = "revoked_user"
	ReasonRevokedGlobal Reason = "revoked_global"
	ReasonBadSubject    Reason = "bad_subject"
	ReasonRevokedJTI    Reason = "revoked_jti"
	ReasonGuestRevoked  Reason = "revoked"
)

// Authorisation: the caller is known but may not do this.
const (
	ReasonNotAPI             Reason = "not_api"
	ReasonNoScope            Reason = "no_scope"
	ReasonMissingScopePrefix Reason = "missing_scope:"
)

// Availability and the upstream.
const (
	ReasonStoreUnavailable    Reason = "store_unavailable"
	ReasonNoHealthyUpstream   Reason = "no_healthy_upstream"
	ReasonUpstreamTimeout     Reason = "upstream_timeout"
	ReasonUpstreamUnreachable Reason = "upstream_unreachable"
	ReasonClientGone          Reason = "client_gone"
	ReasonPanic               Reason = "panic"
	// The upstream's answer broke off after it had started (logged, not
	// counted: the client saw a truncated response).
	ReasonResponseAborted Reason = "response_aborted"
)

// The upstream secret check (upstreamsecret): every node still up signs its
// cookies or guest tokens with another secret than the gateway's, and
// superset.refuse_mismatched_upstream_secret took them out.
const ReasonUpstreamSecretMismatch Reason = "upstream_secret_mismatch"

// MissingScopeReason is the reason for a request that needs scope.
func MissingScopeReason(scope string) Reason { return ReasonMissingScopePrefix + Reason(scope) }

// Extensions (extensions/enforce): an extension's files or backend
// routes, refused at the proxy.
const (
	// The extension fails the policy, an advisory, or its audit.
	ReasonExtensionRefused Reason = "extension_refused"
	// The gateway has not vetted this extension (never listed, or
	// Superset serves a version other than the audited bundle).
	ReasonExtensionUnverified Reason = "extension_unverified"
	// Advisory data missing or stale with extensions.on_unavailable: closed.
	ReasonExtensionAdvisoriesUnavailable Reason = "extension_advisories_unavailable"
	// A served file is not the audited bundle's (counted; the answer is
	// replaced by a 502).
	ReasonExtensionFileMismatch Reason = "extension_file_mismatch"
)

// Rate limits: a bucket of the request's class is empty (see ratelimit).
const (
	ReasonRateLimited Reason = "rate_limited"
	// The attempted username failed too many sign-ins lately, and this
	// browser never signed in as it.
	ReasonLoginThrottled Reason = "login_throttled"
)

// Flask-AppBuilder API keys (fabkey) under superset.fab_api_keys: refuse.
const (
	// A bearer starting with a FAB API key prefix (sst_…): the gateway
	// does not honour FAB API keys.
	ReasonFABAPIKey Reason = "fab_api_key"
	// FAB's key management routes (/api/v1/security/api_keys/…): no one
	// makes keys the gateway will refuse.
	ReasonFABAPIKeyManagement Reason = "fab_api_key_management"
)

// Flask-AppBuilder API keys under superset.fab_api_keys: enforce. A key
// revoked at Superset (or its owner deactivated) is ReasonTokenRevoked; a
// key made before its owner's epoch is ReasonRevokedUser/Global.
const (
	// The key was not made through this gateway (or its record is gone):
	// the gateway cannot tell which of its owner's keys it is, so it
	// cannot know its scopes.
	ReasonFABAPIKeyUnknown Reason = "fab_api_key_unknown"
	// The key has no stored scopes: FAB would give it all of its
	// owner's rights, with no bound the gateway could enforce.
	ReasonFABAPIKeyNoScopes Reason = "fab_api_key_no_scopes"
	// The key's owner may not read their own keys (can_get on ApiKey), so
	// the gateway cannot learn the key's scopes.
	ReasonFABAPIKeyUnresolved Reason = "fab_api_key_unresolved"
)
