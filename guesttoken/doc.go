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
//   - extract.go, scan.go: what the gateway reads of a request's guest
//     tokens: the X-GuestToken header and, in any body Werkzeug could read
//     as a form (on any method), every guest token the body holds in any
//     field, raw or urlencoded; the body stays byte-identical for
//     Superset. It does not parse the form as Superset would, so no
//     boundary, parameter or line ending can hide a token
//     (docs/security.md).
//   - revoker.go, cache.go: the stamps in the shared store, a bounded TTL
//     cache of them (absent keys cached too) invalidated by pub/sub.
//   - guard.go: the authentication stage: verifies the header token and
//     every body token, checks body tokens it cannot verify (a copy PyJWT
//     may still accept) on their claims and revocation stamps, and names
//     the guest principal.
//   - issued.go: the response hook that counts and audits tokens Superset
//     issues through POST /api/v1/security/guest_token/.
//   - observe.go: the Observer (metrics) and Auditor interfaces the wiring
//     implements.
//
// Storage failures fail closed: the request gets 503 with Retry-After. A
// cached stamp is served only within the cache TTL, which bounds how long a
// revocation takes to reach another replica if a pub/sub message is lost.
package guesttoken
