package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// GenerationKey holds the store's generation marker. Nothing else may
// write it.
const GenerationKey = "meta:generation"

// GenerationStore is what EnsureGeneration needs; both backends satisfy it.
type GenerationStore interface {
	Get(ctx context.Context, key string) ([]byte, error)
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
}

// EnsureGeneration returns the store's generation id, creating it if the
// store has none. fresh is true only for the one caller that created it:
// the store is new or was wiped (FLUSHALL, a deleted bolt file, a Redis
// restarted without persistence), so every revocation it held is gone and
// the caller must stamp the global epoch before serving, refusing everything
// issued before now. When several replicas start on a wiped store at once,
// exactly one sees fresh; all return the same gen.
//
// now only makes the id readable (it starts with the UTC creation time);
// uniqueness comes from 128 random bits. Errors from s are returned wrapped,
// so ErrUnavailable still matches with errors.Is; the caller must not serve
// on error, since it cannot know whether the store was wiped.
func EnsureGeneration(ctx context.Context, s GenerationStore, now time.Time) (fresh bool, gen string, err error) {
	// A racing replica may create the marker between our Get and SetNX, and
	// a concurrent wipe may delete it between our SetNX and Get; a few
	// rounds settle both.
	for range 3 {
		v, err := s.Get(ctx, GenerationKey)
		if err == nil {
			return false, string(v), nil
		}
		if !errors.Is(err, ErrNotFound) {
			return false, "", fmt.Errorf("store: read generation: %w", err)
		}
		id, err := newGeneration(now)
		if err != nil {
			return false, "", err
		}
		ok, err := s.SetNX(ctx, GenerationKey, []byte(id), 0)
		if err != nil {
			return false, "", fmt.Errorf("store: write generation: %w", err)
		}
		if ok {
			return true, id, nil
		}
	}
	return false, "", errors.New("store: generation marker keeps changing under us")
}

func newGeneration(now time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: generation id: %w", err)
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// RenewGeneration replaces the generation marker with a new id: the store
// now holds another history than the one the old marker named (a restore
// from a backup). The caller stamps the global revocations first.
func RenewGeneration(ctx context.Context, s interface {
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}, now time.Time) (string, error) {
	id, err := newGeneration(now)
	if err != nil {
		return "", err
	}
	if err := s.Set(ctx, GenerationKey, []byte(id), 0); err != nil {
		return "", fmt.Errorf("store: write generation: %w", err)
	}
	return id, nil
}
