// Package overview keeps the last hour of the gateway's traffic in memory,
// in per-minute buckets of fixed size, and draws it as inline SVG for the
// admin overview page (/-/admin/overview): requests, refusals by reason,
// Superset's p95 latency per endpoint class and node health. It is fed by
// the same observer calls as the Prometheus metrics and needs no Grafana,
// no JavaScript and no store: each replica shows its own traffic.
package overview

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Window is how much history is kept: Minutes buckets of one minute.
const Minutes = 60

// Bounds on what a minute may hold, so memory stays fixed whatever the
// traffic: reasons and classes are fixed vocabularies in the gateway, but
// a new one beyond the bound folds into Other rather than grow a map.
const (
	maxReasons = 48
	maxClasses = 24
	maxNodes   = 16
	// maxTransitions of node health are kept (a flapping node overwrites
	// the oldest).
	maxTransitions = 256
	// Other is the label anything beyond the bounds folds into.
	Other = "other"
)

// latencyBounds are the upper bounds of the latency histogram, in
// milliseconds; a last, open bucket holds the rest.
var latencyBounds = [...]float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}

type histogram [len(latencyBounds) + 1]uint32

func (h *histogram) add(ms float64) {
	i := sort.SearchFloat64s(latencyBounds[:], ms)
	h[i]++
}

// quantile estimates the q-quantile (0 < q < 1) by linear interpolation
// inside the bucket that holds it; NaN when empty. The open last bucket
// answers its lower bound.
func (h *histogram) quantile(q float64) float64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	var seen float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i == len(latencyBounds) {
				return latencyBounds[len(latencyBounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = latencyBounds[i-1]
			}
			return lo + (latencyBounds[i]-lo)*(rank-seen)/float64(c)
		}
		seen += float64(c)
	}
	return latencyBounds[len(latencyBounds)-1]
}

type bucket struct {
	minute   int64 // Unix minute this bucket holds; another value means stale
	requests uint32
	errors   uint32 // 5xx answers, the gateway's own included
	refusals map[string]uint32
	latency  map[string]*histogram
}

func (b *bucket) reset(minute int64) {
	b.minute, b.requests, b.errors = minute, 0, 0
	clear(b.refusals)
	clear(b.latency)
}

type transition struct {
	at      time.Time
	node    string
	healthy bool
}

// Recorder is the ring buffer. Its zero value is not usable; build it
// with New. It is safe for concurrent use; every method is a short
// critical section with no allocation once the buckets are warm.
type Recorder struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [Minutes]bucket
	nodes   map[string]bool // node → healthy now
	trans   [maxTransitions]transition
	ntrans  int // total transitions recorded; the ring holds the last maxTransitions
}

// New returns an empty Recorder reading the clock now (nil: time.Now).
func New(now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	r := &Recorder{now: now, nodes: make(map[string]bool)}
	for i := range r.buckets {
		r.buckets[i].minute = -1
		r.buckets[i].refusals = make(map[string]uint32)
		r.buckets[i].latency = make(map[string]*histogram)
	}
	return r
}

// current returns the bucket of this minute, reset if it held an older
// one. mu must be held.
func (r *Recorder) current() *bucket {
	m := r.now().Unix() / 60
	b := &r.buckets[m%Minutes]
	if b.minute != m {
		b.reset(m)
	}
	return b
}

// InFlight is part of proxy.Observer; the overview does not chart it.
func (r *Recorder) InFlight(int) {}

// ObserveRequest counts one finished request (proxy.Observer).
func (r *Recorder) ObserveRequest(_ string, status int, _ time.Duration) {
	r.mu.Lock()
	b := r.current()
	b.requests++
	if status >= 500 {
		b.errors++
	}
	r.mu.Unlock()
}

// ObserveRefusal counts a refusal of the proxy's own (proxy.Observer).
func (r *Recorder) ObserveRefusal(reason string) { r.refusal(reason) }

// ObserveCredentialRefusal counts a refusal of the request path
// (gateway.RefusalObserver).
func (r *Recorder) ObserveCredentialRefusal(_, reason string) { r.refusal(reason) }

func (r *Recorder) refusal(reason string) {
	r.mu.Lock()
	b := r.current()
	if _, ok := b.refusals[reason]; !ok && len(b.refusals) >= maxReasons-1 {
		reason = Other
	}
	b.refusals[reason]++
	r.mu.Unlock()
}

// ObserveUpstream records Superset's time to response headers for a
// request of class on node (upstream.Observer). Transport failures
// (status 0) have no latency to chart.
func (r *Recorder) ObserveUpstream(node, class string, status int, d time.Duration) {
	r.mu.Lock()
	r.knowNode(node)
	if status != 0 {
		b := r.current()
		h := b.latency[class]
		if h == nil {
			if len(b.latency) >= maxClasses-1 {
				class = Other
				h = b.latency[class]
			}
			if h == nil {
				h = new(histogram)
				b.latency[class] = h
			}
		}
		h.add(float64(d) / float64(time.Millisecond))
	}
	r.mu.Unlock()
}

// SetNodeHealthy records a node's change of health (upstream.Observer).
func (r *Recorder) SetNodeHealthy(node string, healthy bool) {
	r.mu.Lock()
	// A report that changes nothing (the first health check of a node
	// that was assumed healthy) is no transition.
	if r.knowNode(node) && r.nodes[node] != healthy {
		r.nodes[node] = healthy
		r.trans[r.ntrans%maxTransitions] = transition{at: r.now(), node: node, healthy: healthy}
		r.ntrans++
	}
	r.mu.Unlock()
}

// knowNode adds node (healthy until told otherwise) and reports whether
// it is tracked: beyond maxNodes new names are ignored. mu must be held.
func (r *Recorder) knowNode(node string) bool {
	if _, ok := r.nodes[node]; ok {
		return true
	}
	if len(r.nodes) >= maxNodes {
		return false
	}
	r.nodes[node] = true
	return true
}

// Snapshot is the last hour, oldest minute first; index i of every series
// is Start + i minutes.
type Snapshot struct {
	// Start is the first minute shown; the last is the current one.
	Start time.Time
	// Requests and ServerErrors per minute.
	Requests, ServerErrors []int
	// Refusals per reason, the most frequent first.
	Refusals []Series
	// P95 is Superset's p95 time to response headers per endpoint class,
	// in milliseconds (NaN for a minute without requests), busiest class
	// first.
	P95 []Latency
	// Nodes are the Superset nodes by name with their health per minute.
	Nodes []Node
}

// Series is one count per minute.
type Series struct {
	Name   string
	Counts []int
	Total  int
}

// Latency is one class's p95 per minute and over the hour.
type Latency struct {
	Class    string
	P95      []float64
	HourP95  float64
	Requests int
}

// Node is one node's health: Down[i] is true when it was unhealthy at any
// time in minute i.
type Node struct {
	Name       string
	HealthyNow bool
	Down       []bool
	// DownMinutes counts the true entries of Down.
	DownMinutes int
}

// Snapshot copies the last hour out of the buffer.
func (r *Recorder) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	cur := now.Unix() / 60
	first := cur - Minutes + 1
	s := Snapshot{Start: time.Unix(first*60, 0).UTC(), Requests: make([]int, Minutes), ServerErrors: make([]int, Minutes)}
	refusals := map[string][]int{}
	hours := map[string]*histogram{}
	perMin := map[string][]float64{}
	counts := map[string]int{}
	for i := 0; i < Minutes; i++ {
		m := first + int64(i)
		b := &r.buckets[m%Minutes]
		if b.minute != m {
			continue
		}
		s.Requests[i], s.ServerErrors[i] = int(b.requests), int(b.errors)
		for reason, n := range b.refusals {
			if refusals[reason] == nil {
				refusals[reason] = make([]int, Minutes)
			}
			refusals[reason][i] = int(n)
		}
		for class, h := range b.latency {
			if hours[class] == nil {
				hours[class] = new(histogram)
				perMin[class] = nanSeries()
			}
			for k, c := range h {
				hours[class][k] += c
				counts[class] += int(c)
			}
			perMin[class][i] = h.quantile(0.95)
		}
	}
	for name, c := range refusals {
		t := 0
		for _, n := range c {
			t += n
		}
		s.Refusals = append(s.Refusals, Series{Name: name, Counts: c, Total: t})
	}
	sort.Slice(s.Refusals, func(i, j int) bool {
		a, b := s.Refusals[i], s.Refusals[j]
		return a.Total > b.Total || a.Total == b.Total && a.Name < b.Name
	})
	for class, h := range hours {
		s.P95 = append(s.P95, Latency{Class: class, P95: perMin[class], HourP95: h.quantile(0.95), Requests: counts[class]})
	}
	sort.Slice(s.P95, func(i, j int) bool {
		a, b := s.P95[i], s.P95[j]
		return a.Requests > b.Requests || a.Requests == b.Requests && a.Class < b.Class
	})
	s.Nodes = r.nodeHistory(first)
	return s
}

func nanSeries() []float64 {
	v := make([]float64, Minutes)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

// nodeHistory replays the kept transitions over the hour. Every node
// starts out healthy, so before its first transition it was healthy,
// unless older transitions were overwritten (then the first kept one
// changed it from the opposite). mu must be held.
func (r *Recorder) nodeHistory(first int64) []Node {
	n := min(r.ntrans, maxTransitions)
	trans := make([]transition, 0, n)
	for i := r.ntrans - n; i < r.ntrans; i++ {
		trans = append(trans, r.trans[i%maxTransitions])
	}
	var out []Node
	for name, healthy := range r.nodes {
		nd := Node{Name: name, HealthyNow: healthy, Down: make([]bool, Minutes)}
		state := true
		if r.ntrans > maxTransitions {
			state = healthy
			for _, t := range trans {
				if t.node == name {
					state = !t.healthy
					break
				}
			}
		}
		j := 0
		for j < len(trans) && trans[j].at.Before(time.Unix(first*60, 0)) {
			if trans[j].node == name {
				state = trans[j].healthy
			}
			j++
		}
		for i := 0; i < Minutes; i++ {
			end := time.Unix((first+int64(i)+1)*60, 0)
			down := !state
			for j < len(trans) && trans[j].at.Before(end) {
				if trans[j].node == name {
					state = trans[j].healthy
					down = down || !state
				}
				j++
			}
			nd.Down[i] = down
			if down {
				nd.DownMinutes++
			}
		}
		out = append(out, nd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
