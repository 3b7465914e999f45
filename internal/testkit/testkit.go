// Package testkit holds the test doubles every package's tests share: a
// fake clock, a counter for observers and a recorder of audit events. It is
// imported by tests only.
package testkit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/audit"
)

// Clock is a fake clock shared by the fake Superset, the store and the
// gateway pieces of a test, so timeouts are tested without sleeping. It is
// safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Counter counts named events (an observer's calls); the zero value is
// ready and safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	m  map[string]int
}

// Inc adds one to k.
func (c *Counter) Inc(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
	c.mu.Unlock()
}

// Get is k's count.
func (c *Counter) Get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// Events records audit events; the zero value is ready and safe for
// concurrent use. It satisfies every package's Auditor.
type Events struct {
	mu  sync.Mutex
	evs []audit.Event
}

// Emit records ev.
func (e *Events) Emit(_ context.Context, ev audit.Event) error {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	return nil
}

// Refusal records ev like Emit: the throttling of refusals is the audit
// package's, tested there.
func (e *Events) Refusal(ctx context.Context, ev audit.Event) error { return e.Emit(ctx, ev) }

// All is every event so far, oldest first.
func (e *Events) All() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]audit.Event(nil), e.evs...)
}

// Last is the newest event, or the zero Event.
func (e *Events) Last() audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.evs) == 0 {
		return audit.Event{}
	}
	return e.evs[len(e.evs)-1]
}

// Find is the newest event named event whose subject and outcome match
// (an empty subject or outcome matches any), or nil.
func (e *Events) Find(event, subject, outcome string) *audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		ev := e.evs[i]
		if ev.Event == event && (subject == "" || ev.Subject == subject) && (outcome == "" || ev.Outcome == outcome) {
			return &ev
		}
	}
	return nil
}

// Forge builds a JWT with arbitrary header and claims, HS256-signed with
// key (or with an empty signature when key is nil), the way an attacker
// would: nothing about it is checked.
func Forge(tb testing.TB, header, claims map[string]any, key []byte) string {
	tb.Helper()
	h, err1 := json.Marshal(header)
	c, err2 := json.Marshal(claims)
	if err1 != nil || err2 != nil {
		tb.Fatal(err1, err2)
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	if key == nil {
		return signed + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// With is a copy of claims with key/value pairs set (a nil value deletes
// the key), for tokens that differ from a valid one in one claim.
func With(claims map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
