package ttlcache

import (
	"sync"
	"testing"
	"time"
)

func TestEntriesExpire(t *testing.T) {
	c := New[string, int](10)
	now := time.Unix(1000, 0)
	c.PutIf(c.Generation(), "a", 1, now.Add(time.Second), now)
	if v, ok := c.Get("a", now); !ok || v != 1 {
		t.Fatalf("live entry: %v %v", v, ok)
	}
	if _, ok := c.Get("a", now.Add(time.Second)); ok {
		t.Fatal("an entry is served at its expiry")
	}
}

// TestInvalidationVoidsLoadsInFlight: a value loaded before a Delete,
// Clear or Put must not be cached after it.
func TestInvalidationVoidsLoadsInFlight(t *testing.T) {
	now := time.Unix(1000, 0)
	for name, invalidate := range map[string]func(c *Cache[string, int]){
		"delete": func(c *Cache[string, int]) { c.Delete("a") },
		"clear":  func(c *Cache[string, int]) { c.Clear() },
		"put":    func(c *Cache[string, int]) { c.Put("b", 2, now.Add(time.Hour), now) },
	} {
		c := New[string, int](10)
		gen := c.Generation() // the loader starts reading the store
		invalidate(c)         // a revocation lands meanwhile
		c.PutIf(gen, "a", 1, now.Add(time.Hour), now)
		if _, ok := c.Get("a", now); ok {
			t.Errorf("%s: a value loaded before the invalidation was cached", name)
		}
		c.PutIf(c.Generation(), "a", 1, now.Add(time.Hour), now)
		if _, ok := c.Get("a", now); !ok {
			t.Errorf("%s: a load after the invalidation was not cached", name)
		}
	}
}

func TestStaysBounded(t *testing.T) {
	c := New[int, int](64)
	now := time.Unix(1000, 0)
	for i := range 10_000 {
		c.PutIf(c.Generation(), i, i, now.Add(time.Hour), now)
		if c.Len() > 64 {
			t.Fatalf("%d entries after %d inserts, bound 64", c.Len(), i+1)
		}
	}
	if _, ok := c.Get(9999, now); !ok {
		t.Fatal("the newest insert was evicted")
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New[int, int](128)
	now := time.Unix(1000, 0)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := (w*2000 + i) % 300
				if _, ok := c.Get(k, now); !ok {
					c.PutIf(c.Generation(), k, i, now.Add(time.Minute), now)
				}
				if i%97 == 0 {
					c.Delete(k)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 128 {
		t.Fatalf("%d entries, bound 128", c.Len())
	}
}

// TestExpiredEntriesLeaveBeforeTheCacheIsFull: a large cache of
// short-lived entries (the jti cache: 100 000 entries of a second) holds
// about the entries of the last TTL, not every key it ever saw; live
// entries stay.
func TestExpiredEntriesLeaveBeforeTheCacheIsFull(t *testing.T) {
	c := New[int, int](100_000)
	now := time.Unix(1000, 0)
	c.Put(-1, -1, now.Add(time.Hour), now)
	for i := range 50_000 {
		at := now.Add(time.Duration(i) * time.Millisecond) // 50s, 1000 keys a second
		c.PutIf(c.Generation(), i, i, at.Add(time.Second), at)
	}
	t.Logf("after 50s of 1000 one-second keys a second: %d entries", c.Len())
	if n := c.Len(); n > 4*1000+64 {
		t.Fatalf("%d entries after 50s of 1000 one-second keys a second", n)
	}
	if _, ok := c.Get(-1, now.Add(50*time.Second)); !ok {
		t.Fatal("a live entry was swept")
	}
}
