// Package conformance states, as executable checks, the facts about Superset
// 6.1's HTTP protocol that the gateway relies on. The same suite runs against
// the real Superset (e2e) and against the Go fake (superset/fakesuperset), so
// the fake cannot drift from the real thing.
package conformance

// Credentials are a Superset user's login.
type Credentials struct {
	Username string
	Password string
}

// Target describes one Superset under test and the fixtures bootstrapped into
// it. Every field is required unless marked optional.
type Target struct {
	// BaseURL is the Superset origin, e.g. http://127.0.0.1:8088 (no trailing slash).
	BaseURL string
	// SecretKey is Superset's SECRET_KEY (signs the Flask session cookie).
	SecretKey string
	// JWTSecret signs API access/refresh JWTs; Superset uses SecretKey unless
	// JWT_SECRET_KEY is set.
	JWTSecret string
	// GuestSecret is GUEST_TOKEN_JWT_SECRET; GuestAudience GUEST_TOKEN_JWT_AUDIENCE.
	GuestSecret   string
	GuestAudience string

	Admin Credentials // role Admin
	Alpha Credentials // "alice", role Alpha
	Gamma Credentials // "bob", role Gamma

	// The dashboard with embedding enabled.
	DashboardID   int
	DashboardSlug string
	EmbedUUID     string

	// ServerSideSessions is true when the target runs SESSION_SERVER_SIDE=True
	// (the Flask cookie then holds an opaque session id, not signed JSON).
	ServerSideSessions bool

	// APIKeyPrefixes, for RunAPIKeys only: the target runs Flask-AppBuilder
	// >= 5.2 with FAB_API_KEY_ENABLED and these FAB_API_KEY_PREFIXES.
	APIKeyPrefixes []string
}
