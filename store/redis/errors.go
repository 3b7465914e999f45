package redis

import (
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/superset-gateway/superset-gateway/store"
)

// wrapErr sorts a go-redis error into the store's three outcomes. The rule:
// redis.Nil is absent; an error reply from a server that cannot serve right
// now (loading, read-only replica, failover, out of memory, credentials
// refused) is unavailable, and so is every error that is not a reply at all
// (network, timeout, context, closed client); any other reply (WRONGTYPE, a
// script error) is a plain error, because retrying will not help.
// Keys and values never appear in the message: keys embed session ids.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, goredis.Nil):
		return fmt.Errorf("redis %s: %w", op, store.ErrNotFound)
	case serverCannotServe(err):
		return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
	case isReply(err):
		return fmt.Errorf("redis %s: %w", op, err)
	default:
		return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
	}
}

func isReply(err error) bool {
	var re goredis.Error
	return errors.As(err, &re)
}

func serverCannotServe(err error) bool {
	if !isReply(err) {
		return false
	}
	switch {
	case goredis.IsLoadingError(err),
		goredis.IsReadOnlyError(err),
		goredis.IsClusterDownError(err),
		goredis.IsTryAgainError(err),
		goredis.IsMasterDownError(err),
		goredis.IsMaxClientsError(err),
		goredis.IsOOMError(err),
		goredis.IsNoReplicasError(err),
		goredis.IsAuthError(err),
		goredis.HasErrorPrefix(err, "BUSY "):
		return true
	}
	return false
}
