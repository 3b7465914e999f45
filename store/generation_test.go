package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// downStore answers every call with ErrUnavailable, or with a SetNX that
// always loses while Get keeps missing (a marker deleted as fast as it is
// written).
type downStore struct{ flapping bool }

func (d downStore) Get(context.Context, string) ([]byte, error) {
	if d.flapping {
		return nil, store.ErrNotFound
	}
	return nil, store.ErrUnavailable
}

func (d downStore) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, nil
}

func TestEnsureGenerationStoreDown(t *testing.T) {
	fresh, gen, err := store.EnsureGeneration(context.Background(), downStore{}, time.Now())
	if !errors.Is(err, store.ErrUnavailable) || fresh || gen != "" {
		t.Fatalf("EnsureGeneration on a down store = %v, %q, %v; want ErrUnavailable and not fresh", fresh, gen, err)
	}
}

func TestEnsureGenerationGivesUpOnFlapping(t *testing.T) {
	fresh, _, err := store.EnsureGeneration(context.Background(), downStore{flapping: true}, time.Now())
	if err == nil || fresh || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EnsureGeneration on a flapping marker = %v, %v; want an error", fresh, err)
	}
}

// mapStore is the smallest honest GenerationStore.
type mapStore map[string][]byte

func (m mapStore) Get(_ context.Context, k string) ([]byte, error) {
	v, ok := m[k]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}

func (m mapStore) SetNX(_ context.Context, k string, v []byte, _ time.Duration) (bool, error) {
	if _, ok := m[k]; ok {
		return false, nil
	}
	m[k] = v
	return true, nil
}

func TestEnsureGenerationID(t *testing.T) {
	m := mapStore{}
	now := time.Date(2026, 11, 23, 1, 2, 3, 0, time.FixedZone("X", 3600))
	fresh, gen, err := store.EnsureGeneration(context.Background(), m, now)
	if err != nil || !fresh {
		t.Fatalf("EnsureGeneration = %v, %v", fresh, err)
	}
	// UTC creation time, then 128 random bits in hex.
	stamp, random, ok := strings.Cut(gen, "-")
	if !ok || stamp != "20261123T000203Z" || len(random) != 32 {
		t.Fatalf("generation id %q, want 20261123T000203Z-<32 hex>", gen)
	}
	if string(m[store.GenerationKey]) != gen {
		t.Fatalf("stored marker %q, returned %q", m[store.GenerationKey], gen)
	}
	_, other, _ := store.EnsureGeneration(context.Background(), mapStore{}, now)
	if other == gen {
		t.Fatal("two fresh stores got the same generation id")
	}
}
