package overview

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 5, 16, 0, 30, 0, time.UTC)} }

func TestBucketsPerMinuteAndRingWraps(t *testing.T) {
	c := newClock()
	r := New(c.now)
	for i := 0; i < 5; i++ {
		r.ObserveRequest("chart_data", 200, time.Millisecond)
	}
	r.ObserveRequest("other", 502, time.Millisecond)
	r.ObserveRefusal("bad_path")
	r.ObserveCredentialRefusal("access_jwt", "expired")
	r.ObserveCredentialRefusal("guest", "expired")
	c.add(time.Minute)
	r.ObserveRequest("other", 200, time.Millisecond)

	s := r.Snapshot()
	if got := s.Requests[Minutes-2:]; got[0] != 6 || got[1] != 1 {
		t.Fatalf("requests of the last two minutes %v", got)
	}
	if s.ServerErrors[Minutes-2] != 1 {
		t.Fatalf("server errors %v", s.ServerErrors[Minutes-2:])
	}
	if len(s.Refusals) != 2 || s.Refusals[0].Name != "expired" || s.Refusals[0].Total != 2 || s.Refusals[1].Name != "bad_path" {
		t.Fatalf("refusals %+v", s.Refusals)
	}
	if !s.Start.Equal(time.Date(2026, 12, 5, 15, 2, 0, 0, time.UTC)) {
		t.Fatalf("start %v", s.Start)
	}

	// An hour later the first minute is gone, not added to the new one
	// that shares its slot.
	c.add(59 * time.Minute)
	r.ObserveRequest("other", 200, time.Millisecond)
	s = r.Snapshot()
	total := 0
	for _, n := range s.Requests {
		total += n
	}
	if total != 2 || s.Requests[Minutes-1] != 1 {
		t.Fatalf("after an hour: total %d, last %d", total, s.Requests[Minutes-1])
	}
	if len(s.Refusals) != 0 {
		t.Fatalf("refusals older than an hour kept: %+v", s.Refusals)
	}
}

func TestP95PerClass(t *testing.T) {
	c := newClock()
	r := New(c.now)
	for i := 0; i < 100; i++ {
		d := 20 * time.Millisecond
		if i >= 90 {
			d = 2 * time.Second
		}
		r.ObserveUpstream("http://n1", "chart_data", 200, d)
	}
	r.ObserveUpstream("http://n1", "static", 200, time.Millisecond)
	r.ObserveUpstream("http://n1", "static", 0, time.Hour) // transport failure: no latency
	s := r.Snapshot()
	if len(s.P95) != 2 || s.P95[0].Class != "chart_data" || s.P95[0].Requests != 100 {
		t.Fatalf("p95 %+v", s.P95)
	}
	p := s.P95[0].P95[Minutes-1]
	if p < 1000 || p > 2500 {
		t.Fatalf("p95 of 10%% at 2s is %v ms", p)
	}
	if !math.IsNaN(s.P95[0].P95[0]) {
		t.Fatal("a minute without requests has a p95")
	}
	if s.P95[1].HourP95 > 5 {
		t.Fatalf("static p95 %v: the failed attempt counted", s.P95[1].HourP95)
	}
}

// TestBoundedWhateverTheInput: a flood of distinct reasons, classes and
// nodes folds into "other" and a fixed number of nodes.
func TestBoundedWhateverTheInput(t *testing.T) {
	r := New(newClock().now)
	for i := 0; i < 10000; i++ {
		r.ObserveCredentialRefusal("x", fmt.Sprintf("reason-%d", i))
		r.ObserveUpstream(fmt.Sprintf("http://node-%d", i), fmt.Sprintf("class-%d", i), 200, time.Millisecond)
		r.SetNodeHealthy(fmt.Sprintf("http://node-%d", i), false)
	}
	s := r.Snapshot()
	if len(s.Refusals) != maxReasons || len(s.P95) != maxClasses || len(s.Nodes) != maxNodes {
		t.Fatalf("%d reasons, %d classes, %d nodes", len(s.Refusals), len(s.P95), len(s.Nodes))
	}
	other := 0
	for _, x := range s.Refusals {
		if x.Name == Other {
			other = x.Total
		}
	}
	if other != 10000-(maxReasons-1) {
		t.Fatalf("other holds %d", other)
	}
}

func TestNodeHealthHistory(t *testing.T) {
	c := newClock()
	r := New(c.now)
	r.ObserveUpstream("http://a:8088", "other", 200, time.Millisecond)
	r.ObserveUpstream("http://b:8088", "other", 200, time.Millisecond)
	// The first health check confirms what was assumed: no transition.
	r.SetNodeHealthy("http://a:8088", true)
	r.SetNodeHealthy("http://c:8088", true)
	c.add(10 * time.Minute)
	r.SetNodeHealthy("http://b:8088", false)
	c.add(3 * time.Minute)
	r.SetNodeHealthy("http://b:8088", true)
	c.add(5 * time.Minute)
	r.SetNodeHealthy("http://a:8088", false)
	s := r.Snapshot()
	if len(s.Nodes) != 3 {
		t.Fatalf("nodes %+v", s.Nodes)
	}
	if cn := s.Nodes[2]; !cn.HealthyNow || cn.DownMinutes != 0 {
		t.Fatalf("c, healthy throughout: %+v", cn)
	}
	a, b := s.Nodes[0], s.Nodes[1]
	if a.HealthyNow || a.DownMinutes != 1 || !a.Down[Minutes-1] {
		t.Fatalf("a: now %v, down %d", a.HealthyNow, a.DownMinutes)
	}
	if !b.HealthyNow || b.DownMinutes != 4 || !b.Down[Minutes-1-18+10] || b.Down[Minutes-1] {
		t.Fatalf("b: now %v, down %d %v", b.HealthyNow, b.DownMinutes, b.Down)
	}
}

// svgDoc is the structure the tests read back from the drawn SVG.
type svgDoc struct {
	XMLName xml.Name `xml:"svg"`
	Role    string   `xml:"role,attr"`
	Labels  string   `xml:"aria-labelledby,attr"`
	Title   string   `xml:"title"`
	Desc    string   `xml:"desc"`
	Groups  []struct {
		Class string `xml:"class,attr"`
		Name  string `xml:"data-name,attr"`
		Down  string `xml:"data-down-minutes,attr"`
		Rects []struct {
			Class  string `xml:"class,attr"`
			Minute int    `xml:"data-minute,attr"`
			Value  int    `xml:"data-value,attr"`
			Height string `xml:"height,attr"`
		} `xml:"rect"`
		Lines []struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Texts []string `xml:"text"`
	} `xml:"g"`
}

func parse(t *testing.T, h string) svgDoc {
	t.Helper()
	var d svgDoc
	if err := xml.Unmarshal([]byte(h), &d); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, h)
	}
	if d.Role != "img" || d.Title == "" || d.Desc == "" || !strings.Contains(d.Labels, "-title") {
		t.Fatalf("chart without its text alternative: %+v", d)
	}
	return d
}

func TestDrawStructure(t *testing.T) {
	c := newClock()
	r := New(c.now)
	for i := 0; i < 7; i++ {
		r.ObserveRequest("other", 200, 0)
	}
	r.ObserveRequest("other", 503, 0)
	c.add(time.Minute)
	r.ObserveRequest("other", 200, 0)
	r.ObserveCredentialRefusal("guest", "revoked_dashboard")
	r.ObserveUpstream("http://superset-1:8088", "chart_data", 200, 300*time.Millisecond)
	r.ObserveUpstream("http://superset-1:8088", "chart_data", 200, 300*time.Millisecond)
	v := Draw(r.Snapshot())

	req := parse(t, string(v.Requests))
	var bars []int
	errs := 0
	for _, g := range req.Groups {
		for _, rc := range g.Rects {
			switch rc.Class {
			case "bar":
				bars = append(bars, rc.Minute, rc.Value)
			case "bar-error":
				errs += rc.Value
			}
		}
	}
	if fmt.Sprint(bars) != fmt.Sprint([]int{Minutes - 2, 8, Minutes - 1, 1}) || errs != 1 {
		t.Fatalf("bars %v, error part %d", bars, errs)
	}
	if !strings.Contains(req.Desc, "9 requests") {
		t.Fatalf("requests text %q", req.Desc)
	}

	ref := parse(t, string(v.Refusals))
	found := false
	for _, g := range ref.Groups {
		if g.Class == "series" && g.Name == "revoked_dashboard" {
			found = true
		}
	}
	if !found || !strings.Contains(ref.Desc, "revoked_dashboard 1") {
		t.Fatalf("refusals chart %+v", ref)
	}
	lat := parse(t, string(v.Latency))
	if !strings.Contains(lat.Desc, "chart_data") || !strings.Contains(v.LatencyText, "over 2 requests") {
		t.Fatalf("latency text %q", lat.Desc)
	}
	nodes := parse(t, string(v.Nodes))
	if len(nodes.Groups) == 0 || nodes.Groups[0].Name != "http://superset-1:8088" || nodes.Groups[0].Down != "0" || len(nodes.Groups[0].Rects) != Minutes {
		t.Fatalf("node strip %+v", nodes.Groups)
	}
}

// TestDrawEscapes: a name that reached the buffer is text in the SVG,
// never markup.
func TestDrawEscapes(t *testing.T) {
	r := New(newClock().now)
	evil := `</title><script>alert(1)</script>"'&`
	r.ObserveCredentialRefusal("x", evil)
	r.ObserveUpstream(evil, evil, 200, time.Millisecond)
	r.SetNodeHealthy(evil, false)
	v := Draw(r.Snapshot())
	for _, h := range []string{string(v.Refusals), string(v.Latency), string(v.Nodes)} {
		if strings.Contains(h, "<script>") {
			t.Fatalf("markup injected: %s", h)
		}
		parse(t, h)
	}
}

func TestDrawEmpty(t *testing.T) {
	v := Draw(New(newClock().now).Snapshot())
	for _, h := range []string{string(v.Requests), string(v.Refusals), string(v.Latency), string(v.Nodes)} {
		parse(t, h)
	}
	if v.RequestsText != "No requests in the last hour." {
		t.Fatalf("%q", v.RequestsText)
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	r := New(nil)
	b.ReportAllocs()
	for b.Loop() {
		r.ObserveRequest("other", 200, time.Millisecond)
		r.ObserveUpstream("http://n", "chart_data", 200, time.Millisecond)
	}
}
