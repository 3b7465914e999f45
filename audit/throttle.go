package audit

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// RecentRefusalsKey is the store list that holds the most recent refusals,
// newest first. It is apart from RecentKey so that refusals, which anyone
// can cause, never push another event out.
const RecentRefusalsKey = "audit:recent:refusals"

// Refusal throttling defaults (ThrottleOptions' zero values).
const (
	// DefaultRefusalRate is the steady number of refusals recorded per
	// second for one (event, reason).
	DefaultRefusalRate = 1.0
	// DefaultRefusalBurst is how many refusals of one (event, reason) are
	// recorded at once before the rate applies.
	DefaultRefusalBurst = 5
	// DefaultRefusalRecentMax bounds the recent refusals list.
	DefaultRefusalRecentMax = 200
	// DefaultSummaryEvery is how often dropped refusals are summed up.
	DefaultSummaryEvery = time.Minute
)

// EventRefusalsDropped is the summary event of refusals the throttle
// dropped: Details "total" and "dropped", a list of {event, reason, count}.
const EventRefusalsDropped = "audit.refusals_dropped"

// maxBuckets bounds the throttle's memory. Events and reasons are fixed
// identifiers, so a few dozen buckets are in use; past the bound new pairs
// share one bucket.
const maxBuckets = 1024

// ThrottleOptions shape refusal throttling: a token bucket per (event,
// reason), in this process (each replica records its own share).
type ThrottleOptions struct {
	// Rate is refusals recorded per second per (event, reason); 0 means
	// DefaultRefusalRate.
	Rate float64
	// Burst is the bucket size; 0 means DefaultRefusalBurst.
	Burst int
	// RecentMax bounds RecentRefusalsKey; 0 means DefaultRefusalRecentMax.
	RecentMax int
	// SummaryEvery is the shortest time between two summary events; 0
	// means DefaultSummaryEvery.
	SummaryEvery time.Duration
}

// DropObserver counts refusal events the throttle dropped, by event name
// (a fixed identifier); metrics.Audit implements it. It must not block.
type DropObserver interface {
	ObserveAuditDropped(event string)
}

type nopDrops struct{}

func (nopDrops) ObserveAuditDropped(string) {}

// bucketKey names one token bucket.
type bucketKey struct{ event, reason string }

// overflowKey is the bucket every pair shares once maxBuckets are in use.
var overflowKey = bucketKey{"*", "*"}

type bucket struct {
	tokens float64
	last   time.Time
}

// throttle is the refusals' token buckets and the drops not yet summed up.
type throttle struct {
	rate, burst float64
	every       time.Duration

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	pending map[bucketKey]int64 // dropped since the last summary
	lastSum time.Time           // when the last summary was taken (or the first refusal came)
}

func newThrottle(o ThrottleOptions) *throttle {
	t := &throttle{rate: o.Rate, burst: float64(o.Burst), every: o.SummaryEvery,
		buckets: map[bucketKey]*bucket{}, pending: map[bucketKey]int64{}}
	if t.rate <= 0 {
		t.rate = DefaultRefusalRate
	}
	if t.burst <= 0 {
		t.burst = DefaultRefusalBurst
	}
	if t.every <= 0 {
		t.every = DefaultSummaryEvery
	}
	return t
}

// allow takes a token of k's bucket at now; a refused take is counted as
// pending. due reports that a summary is due (some drops pending and
// every has passed since the last one).
func (t *throttle) allow(k bucketKey, now time.Time) (ok, due bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastSum.IsZero() {
		t.lastSum = now // the first period starts with the first refusal
	}
	b := t.buckets[k]
	if b == nil {
		if len(t.buckets) >= maxBuckets {
			t.prune(now)
		}
		if len(t.buckets) >= maxBuckets {
			k = overflowKey
			b = t.buckets[k]
		}
		if b == nil {
			b = &bucket{tokens: t.burst, last: now}
			t.buckets[k] = b
		}
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(t.burst, b.tokens+el.Seconds()*t.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, false
	}
	t.pending[k]++
	return false, now.Sub(t.lastSum) >= t.every
}

// prune forgets full buckets (they are as good as new).
func (t *throttle) prune(now time.Time) {
	for k, b := range t.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*t.rate >= t.burst {
			delete(t.buckets, k)
		}
	}
}

// DropCount is one line of a summary: how many refusals of one event and
// reason were dropped.
type DropCount struct {
	Event  string `json:"event"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// take hands over the pending drops for a summary, sorted, and the start
// of the period they cover; nil when none are pending.
func (t *throttle) take(now time.Time) (drops []DropCount, since time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return nil, time.Time{}
	}
	for k, n := range t.pending {
		drops = append(drops, DropCount{Event: k.event, Reason: k.reason, Count: n})
	}
	slices.SortFunc(drops, func(a, b DropCount) int {
		return cmp.Or(cmp.Compare(a.Event, b.Event), cmp.Compare(a.Reason, b.Reason))
	})
	clear(t.pending)
	since, t.lastSum = t.lastSum, now
	return drops, since
}

// Refusal records ev, a refusal, unless its (Event, Reason) has used its
// share (ThrottleOptions): a dropped one is counted (DropObserver) and
// summed up in the next EventRefusalsDropped event, so nothing is lost
// silently. A recorded one is written like Emit's and kept on
// RecentRefusalsKey, never on RecentKey. Refusal returns nil for a dropped
// event; otherwise Emit's errors.
func (l *Logger) Refusal(ctx context.Context, ev Event) error {
	if ev.TS.IsZero() {
		ev.TS = l.now()
	}
	ok, due := l.thr.allow(bucketKey{ev.Event, ev.Reason}, ev.TS)
	if ok {
		return l.record(ctx, ev, RecentRefusalsKey, l.refusalMax)
	}
	l.dropped.ObserveAuditDropped(ev.Event)
	if due {
		return l.summarize(ctx, ev.TS)
	}
	return nil
}

// Flush writes the summary of refusals dropped since the last one, if any
// were. Run calls it periodically; call it once more before the sink
// closes.
func (l *Logger) Flush(ctx context.Context) error {
	return l.summarize(ctx, l.now())
}

// Run flushes every SummaryEvery until ctx is done, so that the drops at
// the end of a flood are summed up too.
func (l *Logger) Run(ctx context.Context) {
	tk := time.NewTicker(l.thr.every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			if err := l.Flush(ctx); err != nil {
				l.log.Warn("audit: summary of dropped refusals not fully recorded", zap.Error(err))
			}
		}
	}
}

func (l *Logger) summarize(ctx context.Context, now time.Time) error {
	// The summary is no one request's: the one that happened to make it
	// due must not lend it its id.
	ctx = WithRequest(ctx, "", "")
	drops, since := l.thr.take(now)
	if drops == nil {
		return nil
	}
	var total int64
	list := make([]any, len(drops))
	for i, d := range drops {
		total += d.Count
		list[i] = map[string]any{"event": d.Event, "reason": d.Reason, "count": d.Count}
	}
	// Emit, not Refusal: the summary is never dropped, and one a period
	// cannot crowd the recent events.
	return l.Emit(ctx, Event{TS: now, Event: EventRefusalsDropped, Actor: "gateway", Outcome: OutcomeDenied,
		Reason: "throttled", Details: map[string]any{"since": since.UTC(), "total": total, "dropped": list}})
}
