package session

import (
	"context"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// Store is the part of the shared store the vault needs. store/redis and
// store/bolt implement it. Implementations wrap store.ErrNotFound and
// store.ErrUnavailable; the vault tells them apart with errors.Is, so that a
// store outage answers 503 instead of logging everyone out.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, keys ...string) error
	SAdd(ctx context.Context, key string, members ...string) error
	SRem(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error)
	Publish(ctx context.Context, channel string, payload []byte) error
	Subscribe(ctx context.Context, channels ...string) (<-chan store.Message, error)
}

var _ Store = store.Store(nil)

// Store keys and the invalidation channel. The hashed id (hex SHA-256 of the
// raw 32-byte id) is the only form of the id that ever reaches the store,
// a log line or another replica.
const (
	// InvalidateChannel carries the hashed id of every session deleted or
	// rotated away, so that other replicas evict it from their cache.
	InvalidateChannel = "session:invalidate"

	recordPrefix = "session:"
	deadSuffix   = ":dead"
	userPrefix   = "user:"
	userSuffix   = ":sessions"
)

func recordKey(hid string) string { return recordPrefix + hid }

// deadKey marks a destroyed session. A write racing with the destruction
// (a last_seen update on another replica) checks it after writing and
// deletes what it wrote, so a destroyed record cannot be resurrected.
func deadKey(hid string) string { return recordPrefix + hid + deadSuffix }

// UserIndexKey is the set of hashed ids of a user's sessions.
func UserIndexKey(userID string) string { return userPrefix + userID + userSuffix }
