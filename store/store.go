// Package store names the contract that the two storage backends
// (store/redis and store/bolt) implement, and the sentinel errors every
// consumer uses to tell "absent" from "store down".
//
// Domain packages (session, epoch, jwtguard, guesttoken, accesstoken,
// audit) declare the few store methods they need in their own narrow
// interfaces, which both backends satisfy; they import this package for
// its sentinel errors, the Message type and a compile-time guard that
// Store satisfies their interface. Store exists so that one
// conformance suite (store/storetest) can hold both backends to the same
// behaviour, and so that the gateway can wire one value into every
// consumer.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound means the key does not exist (or has expired). It is an
	// expected outcome, never a failure: "no session" is anonymous, not 503.
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable means the backend could not answer (connection refused,
	// timeout, closed). Callers fail closed on it: 503 with Retry-After,
	// cookies kept, nobody logged out.
	ErrUnavailable = errors.New("store: unavailable")
)

// Durability describes what survives a crash of the backend, as read from
// the backend itself at start (Redis CONFIG GET) or known by construction
// (bbolt fsyncs every committed transaction).
type Durability struct {
	Backend     string `json:"backend"`     // "redis" or "bolt"
	AppendOnly  bool   `json:"appendonly"`  // Redis AOF on; true for bolt
	AppendFsync string `json:"appendfsync"` // "always", "everysec", "no"; "always" for bolt
	Durable     bool   `json:"durable"`     // an acknowledged write survives kill -9
	Detail      string `json:"detail"`      // human-readable, for /-/readyz and the audit command
}

// Message is one pub/sub delivery.
type Message struct {
	Channel string
	Payload []byte
}

// Store is the byte/TTL/pub-sub contract. Keys and channels are opaque
// strings; values are opaque bytes. A ttl of 0 means "no expiry". Every
// method honours ctx's deadline and wraps backend failures in ErrUnavailable.
// A write that returned nil has been accepted by the backend (for bolt:
// committed and fsynced; for Redis: acknowledged, durable to the extent its
// persistence settings say).
type Store interface {
	// Get returns the value, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set writes the value, replacing any previous one and its TTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX writes only if the key is absent; it reports whether it wrote.
	// Used for leases and the generation marker.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes the keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// MaxInt64 atomically sets key to max(current, v) (absent counts as
	// math.MinInt64) with no expiry and returns the value now stored. Epochs
	// and revoked_before use it so that a stamp never moves backwards, even
	// when two replicas race.
	MaxInt64(ctx context.Context, key string, v int64) (int64, error)
	// GetInt64 reads an integer written by MaxInt64; ErrNotFound if absent.
	GetInt64(ctx context.Context, key string) (int64, error)

	// SAdd, SRem and SMembers keep small unordered sets (a user's session
	// ids). SMembers of an absent set is empty, not ErrNotFound.
	SAdd(ctx context.Context, key string, members ...string) error
	SRem(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error)

	// LPushTrim prepends value to the list and keeps at most max entries
	// (recent audit events). LRange returns up to n entries, newest first.
	LPushTrim(ctx context.Context, key string, value []byte, max int) error
	LRange(ctx context.Context, key string, n int) ([][]byte, error)

	// Publish sends payload to every current subscriber of channel, on every
	// replica sharing the backend. Delivery is best-effort: consumers bound
	// staleness with a cache TTL, never by trusting delivery.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe delivers messages on the channels until ctx is done, then
	// closes the returned channel. It returns once the subscription is live.
	Subscribe(ctx context.Context, channels ...string) (<-chan Message, error)

	// Ping checks the backend answers (for /-/readyz).
	Ping(ctx context.Context) error
	// Durability reports the backend's persistence settings.
	Durability(ctx context.Context) (Durability, error)
	// Close releases connections and files.
	Close() error
}
