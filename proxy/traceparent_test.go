package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseTraceparent(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{validTP, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		// A later version: the 00 part is read, the rest ignored.
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", false}, // 00 is exactly 55
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},  // forbidden version
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},  // uppercase
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},  // zero trace id
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},  // zero parent
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX: y", false},
		{"<script>-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
	} {
		tc, ok := ParseTraceparent(c.in)
		if ok != c.ok {
			t.Errorf("ParseTraceparent(%q) ok = %v, want %v", c.in, ok, c.ok)
			continue
		}
		if ok && c.in[:2] == "00" && tc.String() != c.in {
			t.Errorf("round trip %q → %q", c.in, tc.String())
		}
	}
}

func TestValidTracestate(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"a@b=1, c/d=2", true},
		{"", false},
		{"=x", false},
		{"Rojo=1", false},
		{"a=b=c", false},
		{"a=\x01", false},
		{strings.Repeat("a=1,", 33), false},
		{"a=" + strings.Repeat("x", 600), false},
	} {
		if got := ValidTracestate(c.in); got != c.ok {
			t.Errorf("ValidTracestate(%q) = %v, want %v", c.in, got, c.ok)
		}
	}
}

// FuzzTraceparent: whatever arrives, a value accepted formats back to a
// well-formed version-00 traceparent that parses to the same context,
// and nothing with a control character, uppercase or a zero id passes.
func FuzzTraceparent(f *testing.F) {
	for _, s := range []string{validTP, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tc, ok := ParseTraceparent(s)
		if !ok {
			if tc != (TraceContext{}) {
				t.Fatalf("refused %q but returned %v", s, tc)
			}
			return
		}
		if !tc.Valid() {
			t.Fatalf("accepted %q with a zero id", s)
		}
		out := tc.String()
		if len(out) != 55 || strings.ToLower(out) != out {
			t.Fatalf("accepted %q formats as %q", s, out)
		}
		back, ok := ParseTraceparent(out)
		if !ok || back != tc {
			t.Fatalf("%q → %q does not parse back", s, out)
		}
		if !strings.HasPrefix(s, out[:2]) && s[:2] == "00" {
			t.Fatalf("version changed for %q", s)
		}
	})
}

// TestTraceparentForwarding: without a tracer, what Superset receives.
func TestTraceparentForwarding(t *testing.T) {
	s := newStack(t, nil, nil)
	for _, c := range []struct {
		name   string
		hdr    []string
		wantTP string // "" none, "fresh" a new valid one unlike the input
		wantTS string
	}{
		{"none", nil, "", ""},
		{"valid continues", []string{"Traceparent", validTP, "Tracestate", "rojo=1"}, validTP, "rojo=1"},
		{"valid with bad tracestate", []string{"Traceparent", validTP, "Tracestate", "BAD"}, validTP, ""},
		{"malformed replaced", []string{"Traceparent", strings.ToUpper(validTP), "Tracestate", "rojo=1"}, "fresh", ""},
		{"zero ids replaced", []string{"Traceparent", "00-00000000000000000000000000000000-0000000000000000-01"}, "fresh", ""},
		{"tracestate alone dropped", []string{"Tracestate", "rojo=1"}, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.get(t, "/x", c.hdr...)
			got := s.backend.last(t).Header
			tp := got.Values("Traceparent")
			switch c.wantTP {
			case "":
				if len(tp) != 0 {
					t.Fatalf("traceparent %q reached Superset", tp)
				}
			case "fresh":
				if len(tp) != 1 || tp[0] == strings.ToUpper(validTP) {
					t.Fatalf("traceparent %q", tp)
				}
				if tc, ok := ParseTraceparent(tp[0]); !ok || tc.Sampled() || strings.Contains(tp[0], "4bf92f35") {
					t.Fatalf("replacement %q is not a fresh unsampled trace", tp[0])
				}
			default:
				if len(tp) != 1 || tp[0] != c.wantTP {
					t.Fatalf("traceparent %q, want %q", tp, c.wantTP)
				}
			}
			if ts := got.Get("Tracestate"); ts != c.wantTS {
				t.Fatalf("tracestate %q, want %q", ts, c.wantTS)
			}
		})
	}
	// Two traceparent lines are ambiguous: replaced.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", s.front.URL+"/two", nil)
	req.Header["Traceparent"] = []string{validTP, "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01"}
	resp, err := s.front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := s.backend.last(t).Header.Values("Traceparent"); len(tp) != 1 || tp[0] == validTP || strings.HasPrefix(tp[0], "00-aaaa") {
		t.Fatalf("two traceparents became %q", tp)
	}
}

type fakeSpan struct {
	parent TraceContext
	state  string
	mine   TraceContext
	ended  []string
	status int
}

func (s *fakeSpan) Upstream() (TraceContext, string) { return s.mine, s.state }
func (s *fakeSpan) End(class string, status int, refusal string) {
	s.ended = append(s.ended, class, refusal)
	s.status = status
}

type fakeTracer struct {
	mu    sync.Mutex
	spans []*fakeSpan
}

func (f *fakeTracer) Start(ctx context.Context, parent TraceContext, ts, _, _ string) (context.Context, RequestSpan) {
	sp := &fakeSpan{parent: parent, state: ts, mine: TraceContext{TraceID: parent.TraceID, SpanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Flags: 1}}
	if !parent.Valid() {
		sp.mine.TraceID = [16]byte{9}
	}
	f.mu.Lock()
	f.spans = append(f.spans, sp)
	f.mu.Unlock()
	return ctx, sp
}

// TestTracerSpanIsTheUpstreamParent: with a tracer, Superset's parent
// is the gateway's span in the caller's trace, and the span ends with
// the class, status and refusal of the request.
func TestTracerSpanIsTheUpstreamParent(t *testing.T) {
	tr := &fakeTracer{}
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) { o.Tracer = tr })
	s.get(t, "/x", "Traceparent", validTP, "Tracestate", "rojo=1")
	got := s.backend.last(t).Header
	if tp := got.Get("Traceparent"); tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01" {
		t.Fatalf("Superset got traceparent %q", tp)
	}
	if ts := got.Get("Tracestate"); ts != "rojo=1" {
		t.Fatalf("Superset got tracestate %q", ts)
	}
	s.get(t, "/y", "Traceparent", "junk")
	resp, _ := raw(t, s.addr(), "TRACE /z HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("bad path answered %d", resp.StatusCode)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.spans) != 3 {
		t.Fatalf("%d spans", len(tr.spans))
	}
	if p := tr.spans[0].parent; p.String() != validTP {
		t.Fatalf("span parent %v", p)
	}
	if tr.spans[1].parent.Valid() {
		t.Fatal("a malformed traceparent became the parent")
	}
	if e := tr.spans[2].ended; len(e) != 2 || e[1] != "bad_method" || tr.spans[2].status != 405 {
		t.Fatalf("refused request's span ended with %q %d", e, tr.spans[2].status)
	}
}

// BenchmarkTraceUpstreamOff is all that tracing costs a request when it
// is off and the caller sent no traceparent: a look-up and a delete.
func BenchmarkTraceUpstreamOff(b *testing.B) {
	g := &Gateway{}
	st := &reqState{}
	in := http.Header{"Accept": {"application/json"}, "User-Agent": {"bench"}}
	out := http.Header{"Accept": {"application/json"}, "User-Agent": {"bench"}}
	b.ReportAllocs()
	for b.Loop() {
		g.traceUpstream(in, out, st)
	}
}

// BenchmarkTraceUpstreamOffForwarded: off, a caller's valid traceparent
// checked and forwarded.
func BenchmarkTraceUpstreamOffForwarded(b *testing.B) {
	g := &Gateway{}
	st := &reqState{}
	in := http.Header{"Traceparent": {validTP}}
	out := http.Header{"Traceparent": {validTP}}
	b.ReportAllocs()
	for b.Loop() {
		g.traceUpstream(in, out, st)
	}
}
