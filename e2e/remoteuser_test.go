//go:build e2e

package e2e

// remoteUserHeader is what the single-sign-on proxy in front of the
// gateway would set; Superset's config copies it into REMOTE_USER.
// REMOTE_USER sign-ins are tested by TestLoginMatrix's remote_user rows
// (fixation, booking, revoke, logout replay, replicas, and the header sent
// from outside trusted_proxies).
const remoteUserHeader = "X-Remote-User"
