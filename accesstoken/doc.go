// Package accesstoken issues, checks and manages the gateway's scoped access
// tokens (DESIGN.md §2.4): long-lived API credentials a Superset user creates
// on /-/tokens for scripts, notebooks and metadata-ingestion tools, each
// limited to a few scopes (policy.Allow), an expiry and optional source
// networks.
//
// # Token format
//
//	sgw_<id>_<secret>_<checksum>
//
// id is 16 characters and secret 32 characters of the lower-case RFC 4648
// base32 alphabet [a-z2-7] (80 and 160 random bits); checksum is the CRC-32
// (IEEE) of everything before its underscore, as 8 lower-case hex digits.
// Secret scanners can match the whole token with
//
//	\bsgw_[a-z2-7]{16}_[a-z2-7]{32}_[0-9a-f]{8}\b
//
// and confirm it offline with the checksum. Parse refuses a malformed or
// mistyped token before any store lookup.
//
// # Storage
//
// A token is stored as JSON under RecordKey(id): owner, name, scopes,
// expiry, CIDRs, created, revoked, and the HMAC-SHA256 of the secret under a
// server pepper, compared in constant time. The secret itself is never
// stored or logged. Last use (time and address) lives under UsedKey(id),
// written at most once a minute per replica and at once from a new address.
// The Superset CSRF token and session cookie a token needs for CSRF-protected
// writes live under UpstreamKey(id), sealed with AES-256-GCM under a key id
// (Sealer). UserIndexKey and IndexKey list token ids.
//
// # Pieces
//
//   - token.go: the format (Generate, Parse).
//   - manager.go: Manager, creating, listing and revoking tokens, and the
//     record cache invalidated by pub/sub on revocation.
//   - guard.go: Guard, the gateway's access-token stage
//     (gateway.TokenStage): Authenticate checks a "Bearer sgw_…" token,
//     Authorize its source ranges and scopes, Inject replaces it with a
//     short-lived Superset access JWT for the owner (plus CSRF credentials
//     for writes). The gateway checks the owner's epoch and writes every
//     refusal.
//   - seal.go, upstream.go: the sealed CSRF credentials and minted JWTs.
//   - page.go: the /-/tokens page. The admin API's token routes are the
//     admin package's, over Manager.
//   - observe.go: Observer (metrics) and Auditor; refusal reasons are
//     policy.Reason values.
//
// Storage failures fail closed: 503 with Retry-After.
package accesstoken
