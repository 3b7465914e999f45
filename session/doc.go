// Package session is the session vault (DESIGN.md §2.1, issue A1): the
// browser holds only the gateway's cookie, a signed and encrypted random
// 256-bit id; Superset's own cookies live server-side in a record keyed by a
// hash of that id, encrypted under a key derived from the id itself.
//
// A Vault is the gateway's session stage (gateway.SessionStage), called by
// the gateway's request path at fixed points:
//
//   - Authenticate (stage 3, browser requests): decode the gateway cookie,
//     load the record (through a bounded in-process cache invalidated by
//     store pub/sub), enforce the idle and absolute timeouts; the session
//     is the request's principal, issued at its login time.
//   - Revoked (stage 4): destroy a session the epoch check refused.
//   - Inject (stage 6): the jar's cookies replace whatever the client sent
//     (the gateway drops every client cookie).
//   - ModifyResponse (response path, last hook): absorb every Superset Set-Cookie into
//     the jar, strip it from the reply, create records lazily, rotate the id
//     when the identity changes (login), destroy the record on logout. A
//     sign-in is recognised by its outcome, not its route: a Flask cookie
//     names its user; a server-side sid (which survives a login) is asked
//     about with WhoAmI whenever the answer may have changed its holder,
//     and never on the signed-in hot path. The routes themselves (sign-in,
//     logout, the auth method's name) are superset.LoginMethod and
//     superset.IsLogout. A login's time is when its request was sent. An
//     id rotated away grants nothing from that moment, but for
//     RotatedGrace the answers to requests still carrying it leave the
//     browser's cookie alone: they were in flight during the login, and
//     clearing or replacing the cookie would undo it.
//   - SignedIn: the live, signed-in, unrevoked session of a request, the
//     one answer every gateway page (/-/sessions, /-/tokens, /-/admin/)
//     uses; a revoked session is destroyed on sight.
//   - SessionsPage: the /-/sessions page where a signed-in user lists and
//     ends their sessions.
//
// Start must be called once per process so that deletions published by
// other replicas evict this replica's cache; without it the cache TTL alone
// bounds staleness.
package session
