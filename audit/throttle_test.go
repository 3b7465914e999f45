package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/testkit"

	"github.com/superset-gateway/superset-gateway/audit"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// drops is a DropObserver.
type drops struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *drops) ObserveAuditDropped(event string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[event]++
}

func (d *drops) get(event string) int { d.mu.Lock(); defer d.mu.Unlock(); return d.n[event] }

// lockedBuf is a Writer safe for concurrent Emit calls, counting lines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
func (w *lockedBuf) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Split(strings.TrimSuffix(w.b.String(), "\n"), "\n")
}

func redisStore(t *testing.T) *redis.Store {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redis.New(ctx, redis.Options{URL: srv.URL(), DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func junk(i int) audit.Event {
	return audit.Event{Event: "jwt.refused", Actor: "anonymous", Outcome: audit.OutcomeDenied, Reason: "malformed",
		IP: "203.0.113.9", Details: map[string]any{"n": i}}
}

// TestRefusalFloodCannotHideARevocation is the attacker's flood: a
// revocation, then 1,000 refused junk JWTs within one second. The
// revocation stays in every view of the recent events, the file grows by
// a handful of lines, every drop is counted and the summary says how many.
func TestRefusalFloodCannotHideARevocation(t *testing.T) {
	ctx := context.Background()
	st := redisStore(t)
	clk := testkit.NewClock(t0)
	var out lockedBuf
	obs := &drops{}
	l := audit.New(audit.Options{Writer: &out, Recent: st, Now: clk.Now, Dropped: obs})

	if err := l.Emit(ctx, audit.Event{Event: "user.revoke", Actor: "admin-token:ci", Subject: "user:7",
		Outcome: audit.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if err := l.Refusal(ctx, junk(w*100+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()

	if got := len(out.lines()); got != 1+audit.DefaultRefusalBurst {
		t.Errorf("audit file: %d lines for 1 revocation + 1,000 refusals, want %d", got, 1+audit.DefaultRefusalBurst)
	}
	if got := obs.get("jwt.refused"); got != 1000-audit.DefaultRefusalBurst {
		t.Errorf("dropped counted: %d, want %d", got, 1000-audit.DefaultRefusalBurst)
	}
	for _, n := range []int{0, 1, 4, 20, 1000} {
		evs, err := l.Recent(ctx, time.Time{}, n)
		if err != nil {
			t.Fatal(err)
		}
		if !hasEvent(evs, "user.revoke") {
			t.Errorf("Recent(%d) lost the revocation among %d events: %v", n, len(evs), names(evs))
		}
	}

	// The summary is due a period after the start; Flush writes it into
	// the main list, where it stays visible.
	clk.Advance(audit.DefaultSummaryEvery)
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Recent(ctx, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Event != audit.EventRefusalsDropped {
		t.Fatalf("newest event %v, want the summary", names(evs))
	}
	b, _ := json.Marshal(evs[0].Details)
	if want := `"dropped":[{"count":995,"event":"jwt.refused","reason":"malformed"}]`; !strings.Contains(string(b), want) ||
		!strings.Contains(string(b), `"total":995`) {
		t.Errorf("summary details %s, want %s and total 995", b, want)
	}
	// Nothing pending: a second flush writes nothing.
	before := len(out.lines())
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(out.lines()) != before {
		t.Error("an empty summary was written")
	}
}

// TestRefusalBucketsRefillAndAreApart: each (event, reason) has its own
// bucket, refilled at the rate, so a flood of one kind does not silence
// another kind's first refusals.
func TestRefusalBucketsRefillAndAreApart(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	var out lockedBuf
	l := audit.New(audit.Options{Writer: &out, Recent: &memList{}, Now: clk.Now,
		Throttle: audit.ThrottleOptions{Rate: 2, Burst: 1, SummaryEvery: time.Hour}})
	count := func(ev audit.Event, n int) {
		for range n {
			if err := l.Refusal(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	count(junk(0), 50)
	count(audit.Event{Event: "jwt.refused", Reason: "expired"}, 1)
	count(audit.Event{Event: "access_token.refused", Reason: "malformed"}, 1)
	if got := len(out.lines()); got != 3 {
		t.Fatalf("%d lines, want one per (event, reason)", got)
	}
	clk.Advance(500 * time.Millisecond) // rate 2/s: one token back
	count(junk(0), 5)
	if got := len(out.lines()); got != 4 {
		t.Fatalf("%d lines after refill, want 4", got)
	}
}

// TestRefusalSummaryIsWrittenLazily: without Run, a drop after
// SummaryEvery writes the summary itself.
func TestRefusalSummaryIsWrittenLazily(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	m := &memList{}
	l := audit.New(audit.Options{Recent: m, Now: clk.Now, Throttle: audit.ThrottleOptions{Burst: 1, SummaryEvery: 10 * time.Second}})
	for range 3 {
		_ = l.Refusal(ctx, junk(0))
	}
	if evs, _ := l.Recent(ctx, time.Time{}, 0); hasEvent(evs, audit.EventRefusalsDropped) {
		t.Fatal("summary written before its period")
	}
	clk.Advance(10 * time.Second)
	_ = l.Refusal(ctx, junk(0)) // allowed: the bucket refilled
	_ = l.Refusal(ctx, junk(0)) // dropped: the summary is due
	evs, _ := l.Recent(ctx, time.Time{}, 0)
	if !hasEvent(evs, audit.EventRefusalsDropped) {
		t.Fatalf("no summary after its period: %v", names(evs))
	}
	for _, ev := range evs {
		if ev.Event == audit.EventRefusalsDropped && ev.Details["total"] != float64(3) {
			t.Errorf("summary total %v, want 3 (2 before the period, 1 that made it due)", ev.Details["total"])
		}
	}
}

func TestMergeRecent(t *testing.T) {
	mk := func(prefix string, n int, start time.Time) []audit.Event {
		var out []audit.Event
		for i := range n {
			out = append(out, audit.Event{Event: prefix, TS: start.Add(-time.Duration(i) * time.Second)})
		}
		return out
	}
	count := func(evs []audit.Event, name string) int {
		n := 0
		for _, e := range evs {
			if e.Event == name {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		events, refusals, n int
		wantE, wantR        int
	}{
		{30, 100, 20, 15, 5},  // refusals capped at a quarter
		{3, 100, 20, 3, 17},   // … unless events run out
		{30, 2, 20, 18, 2},    // few refusals: events fill the rest
		{30, 100, 0, 30, 100}, // n <= 0: everything
		{30, 100, 2, 2, 0},    // too few places to share
		{0, 0, 10, 0, 0},      //
		{1000, 200, 1000, 800, 200},
	} {
		evs := audit.MergeRecent(mk("e", c.events, t0), mk("r", c.refusals, t0.Add(time.Hour)), c.n)
		if count(evs, "e") != c.wantE || count(evs, "r") != c.wantR {
			t.Errorf("%+v: got %d events, %d refusals", c, count(evs, "e"), count(evs, "r"))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].TS.After(evs[i-1].TS) {
				t.Errorf("%+v: not newest first at %d", c, i)
				break
			}
		}
	}
}

func hasEvent(evs []audit.Event, name string) bool {
	for _, e := range evs {
		if e.Event == name {
			return true
		}
	}
	return false
}

func names(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Event
	}
	return out
}
