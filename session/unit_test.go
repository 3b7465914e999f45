package session

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testKeys(b byte) []KeyPair {
	return []KeyPair{{Hash: bytes.Repeat([]byte{b}, 64), Block: bytes.Repeat([]byte{b + 1}, 32)}}
}

func TestCookieCodecRoundTripAndAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		c, err := NewCookieCodec(testKeys(1), secure, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id := bytes.Repeat([]byte{7}, IDLen)
		v, err := c.Encode(id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(v)
		if err != nil || !bytes.Equal(got, id) {
			t.Fatalf("round trip: %x %v", got, err)
		}
		ck := c.Cookie(v)
		wantName := map[bool]string{false: "sg_session", true: "__Host-sg_session"}[secure]
		if ck.Name != wantName || !ck.HttpOnly || ck.Secure != secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
			t.Fatalf("cookie attributes: %+v", ck)
		}
		if del := c.Cookie(""); del.MaxAge >= 0 {
			t.Fatalf("deletion cookie: %+v", del)
		}
	}
}

func TestNewCookieCodecRefusesWeakKeys(t *testing.T) {
	for _, k := range []KeyPair{
		{Hash: make([]byte, 16), Block: make([]byte, 32)},
		{Hash: make([]byte, 64), Block: make([]byte, 16)},
	} {
		if _, err := NewCookieCodec([]KeyPair{k}, false, 0); err == nil {
			t.Fatalf("accepted %d/%d-byte keys", len(k.Hash), len(k.Block))
		}
	}
	if _, err := NewCookieCodec(nil, false, 0); err == nil {
		t.Fatal("accepted no keys")
	}
}

func FuzzCookieDecode(f *testing.F) {
	c, err := NewCookieCodec(append(testKeys(1), testKeys(5)...), false, 0)
	if err != nil {
		f.Fatal(err)
	}
	old, _ := NewCookieCodec(testKeys(5), false, 0)
	good, _ := c.Encode(bytes.Repeat([]byte{1}, IDLen))
	byOld, _ := old.Encode(bytes.Repeat([]byte{2}, IDLen))
	for _, s := range []string{good, byOld, "", "a|b|c", good[:len(good)/2], strings.Repeat("A", 600), "MTIzfHx8", good + "="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, err := c.Decode(v)
		if err != nil {
			return
		}
		if len(id) != IDLen {
			t.Fatalf("decoded id of %d bytes", len(id))
		}
		// Anything that decodes must be a value this codec (or a key
		// it trusts) produced: re-encoding and decoding agrees.
		again, err := c.Encode(id)
		if err != nil {
			t.Fatal(err)
		}
		if id2, err := c.Decode(again); err != nil || !bytes.Equal(id, id2) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}

func TestJarSealedUnderTheID(t *testing.T) {
	id := bytes.Repeat([]byte{3}, IDLen)
	hid := hashID(id)
	j := Jar{"session": {Value: "secret-flask-cookie-value"}}
	sealed, err := sealJar(id, hid, j, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret-flask")) {
		t.Fatal("jar stored in clear")
	}
	got, err := openJar(id, hid, sealed)
	if err != nil || got["session"].Value != "secret-flask-cookie-value" {
		t.Fatalf("open: %v %v", got, err)
	}
	other := bytes.Repeat([]byte{4}, IDLen)
	if _, err := openJar(other, hid, sealed); err == nil {
		t.Fatal("jar opened with another id")
	}
	if _, err := openJar(id, hashID(other), sealed); err == nil {
		t.Fatal("jar moved to another record opened")
	}
}

func TestJarApply(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	j := Jar{}
	if !j.apply([]*http.Cookie{{Name: "session", Value: "a"}, {Name: "x", Value: "1", MaxAge: 60}}, now) {
		t.Fatal("new cookies not reported")
	}
	if j.apply([]*http.Cookie{{Name: "session", Value: "a", Expires: now.Add(time.Hour)}}, now) {
		t.Fatal("expiry-only change reported as a change")
	}
	if v, _ := j.Value("x", now.Add(2*time.Minute)); v != "" {
		t.Fatal("expired cookie still served")
	}
	if h := j.CookieHeader(now.Add(2 * time.Minute)); h != "session=a" {
		t.Fatalf("header %q", h)
	}
	if !j.apply([]*http.Cookie{{Name: "session", MaxAge: -1}}, now) || len(j) != 1 {
		t.Fatalf("Max-Age deletion: %v", j)
	}
	if !j.apply([]*http.Cookie{{Name: "x", Value: "", Expires: time.Unix(0, 0)}}, now) || len(j) != 0 {
		t.Fatalf("past-Expires deletion: %v", j)
	}
	for i := range 100 {
		j.apply([]*http.Cookie{{Name: "c" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: "v"}}, now)
	}
	if len(j) > maxJarCookies {
		t.Fatalf("jar grew to %d cookies", len(j))
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(cacheShards*2, time.Minute)
	now := time.Now()
	for i := range 1000 {
		c.put(&Session{hid: hashID([]byte{byte(i), byte(i >> 8)})}, now)
	}
	if n := c.len(); n > cacheShards*2 {
		t.Fatalf("cache holds %d entries", n)
	}
	s := &Session{hid: "h"}
	c.put(s, now)
	if c.get("h", now.Add(59*time.Second)) == nil || c.get("h", now.Add(time.Minute)) != nil {
		t.Fatal("cache TTL not honoured")
	}
}

// TestCacheSweepsExpiredAndDeadEntries: entries whose TTL ran out and the
// cookie-value aliases of destroyed sessions leave the cache long before it
// is full (they used to stay until the bound, each holding a session), and
// live ones stay.
func TestCacheSweepsExpiredAndDeadEntries(t *testing.T) {
	c := newCache(100_000, time.Second)
	now := time.Now()
	live := &Session{hid: "live"}
	c.putValue("live-cookie", c.put(live, now), now)
	for i := range 20_000 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		hid := hashID([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		e := c.put(&Session{hid: hid}, at)
		c.putValue("cookie-"+hid, e, at)
		c.del(hid) // destroyed at once: its alias is dead
	}
	// 20s of sign-ins with a 1s TTL: a few thousand entries at most
	// would be live or recent, not 20 000.
	var m, v int
	for i := range c.shards {
		m += len(c.shards[i].m)
		v += len(c.shards[i].byValue)
	}
	t.Logf("after 20 000 destroyed sessions: %d entries, %d cookie aliases", m, v)
	if m > 2*cacheShards*sweepMin || v > 2*cacheShards*sweepMin {
		t.Fatalf("after 20 000 destroyed sessions the cache holds %d entries and %d cookie aliases", m, v)
	}
	// The live one was inserted first and has expired by now (1s TTL);
	// one refreshed within its TTL survives every sweep.
	fresh := now.Add(20 * time.Second)
	c.putValue("live-cookie", c.put(live, fresh), fresh)
	for i := range 5000 {
		at := fresh.Add(time.Duration(i) * 100 * time.Microsecond)
		hid := hashID([]byte{byte(i), byte(i >> 8), 7})
		c.putValue("cookie2-"+hid, c.put(&Session{hid: hid}, at), at)
	}
	if c.get("live", fresh.Add(500*time.Millisecond)) == nil || c.getByValue("live-cookie", fresh.Add(500*time.Millisecond)) == nil {
		t.Fatal("a live entry was swept")
	}
}

// TestCacheLoadRacingADeleteIsNotCached: a record read before a destroy's
// invalidation arrived must not be cached after it (it would be served
// for a whole TTL on this replica); clear voids loads in flight too.
func TestCacheLoadRacingADeleteIsNotCached(t *testing.T) {
	now := time.Now()
	c := newCache(64, time.Minute)
	hid := hashID([]byte("a-session-id-0123456789abcdef012"))
	gen := c.generation(hid) // a load starts
	c.del(hid)               // the destroy's message arrives meanwhile
	if e := c.putIf(gen, &Session{hid: hid, UserID: "3"}, now); e == nil || e.s.UserID != "3" {
		t.Fatal("the loading request lost its record")
	}
	if c.get(hid, now) != nil {
		t.Fatal("a record loaded before its deletion was cached after it")
	}
	gen = c.generation(hid)
	c.clear()
	c.putIf(gen, &Session{hid: hid}, now)
	if c.get(hid, now) != nil {
		t.Fatal("a load in flight across a clear was cached")
	}
	c.putIf(c.generation(hid), &Session{hid: hid}, now)
	if c.get(hid, now) == nil {
		t.Fatal("an undisturbed load was not cached")
	}
}
