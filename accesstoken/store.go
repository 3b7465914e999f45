package accesstoken

import (
	"context"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// Store is the part of the shared store this package needs; store.Store
// satisfies it. Errors wrap store.ErrNotFound and store.ErrUnavailable.
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

// Store keys and channel. Shared with every replica; do not rename.
const (
	keyPrefix = "accesstoken:"
	// IndexKey is the set of every token id (the admin list).
	IndexKey = keyPrefix + "index"
	// InvalidateChannel carries the id of a revoked token.
	InvalidateChannel = keyPrefix + "invalidate"
)

// RecordKey holds a token's Record (JSON).
func RecordKey(id string) string { return keyPrefix + id }

// UsedKey holds a token's last use (JSON: time, address, known addresses).
func UsedKey(id string) string { return keyPrefix + id + ":used" }

// UpstreamKey holds a token's sealed Superset CSRF token and session cookie.
func UpstreamKey(id string) string { return keyPrefix + id + ":upstream" }

// UserIndexKey is the set of a user's token ids.
func UserIndexKey(userID string) string { return keyPrefix + "user:" + userID }
