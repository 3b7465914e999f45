// Package epoch keeps the per-user and global invalidation epochs of issue
// A2 (DESIGN.md §2.2): a credential is refused when its issue time is not
// after max(epoch:user:<id>, epoch:global), both Unix milliseconds in the
// shared store, moved only forwards (store MaxInt64).
//
// An *Epochs value is the one place that stamps and checks:
//
//   - Stamp / StampGlobal write the epoch, are acknowledged only after the
//     store accepted the write, then publish an invalidation on
//     InvalidateChannel, record the revocation and emit an audit event.
//   - IssuedAfter is the hot-path check, answered from a bounded in-process
//     cache (negative entries included) whose TTL is the hard bound on
//     cross-replica propagation; Run subscribes to invalidations so that a
//     stamp on another replica usually takes effect at once.
//
// Hook stamps automatically from Superset's own user-administration traffic
// (Capture on the request path, StampResponse on the response path), and
// Reconciler catches changes made behind the gateway's back (CLI, LDAP sync,
// SQL) by listing Superset's users as the service user.
package epoch
