// Package guesttoken checks Superset embedded-dashboard guest tokens at the
// gateway and makes them revocable.
//
// Superset checks a guest token only for its signature, exp and aud: once
// handed to an embedding app it cannot be taken back until it expires. This
// package adds revoked_before stamps, one per dashboard alias (numeric id,
// slug, embed uuid) and one global, in milliseconds, and refuses a token
// whose iat is not after the largest stamp that applies to it.
//
// The pieces, one concern per file:
//
//   - decision.go: pure decisions (revocation, lifetime and resource policy)
//     returning Decision{Allow, Reason}; Reason is the metric label, the audit
//     reason and what tests assert.
//   - extract.go: finding the token in the X-GuestToken header and the
//     guest_token field of urlencoded and multipart bodies, parsed as
//     Werkzeug parses them, leaving the body byte-identical for Superset;
//     anything the two parsers could read differently is refused.
//   - revoker.go, cache.go: the stamps in the shared store, a bounded TTL
//     cache of them (absent keys cached too) invalidated by pub/sub.
//   - guard.go: the middleware that verifies and checks every request that
//     carries a guest token, and marks it in the request context.
//   - issued.go: the response hook that counts and audits tokens Superset
//     issues through POST /api/v1/security/guest_token/.
//   - observe.go: the Observer (metrics) and Auditor interfaces the wiring
//     implements.
//
// Storage failures fail closed: the request gets 503 with Retry-After. A
// cached stamp is served only within the cache TTL, which bounds how long a
// revocation takes to reach another replica if a pub/sub message is lost.
package guesttoken
