package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/policy"
)

// feedAll feeds s to a fresh tracker in pieces of size step (0: at once).
func feedAll(s string, step int) framingTracker {
	t := newFramingTracker()
	if step <= 0 {
		step = len(s) + 1
	}
	for i := 0; i < len(s); i += step {
		t.feed([]byte(s[i:min(i+step, len(s))]))
	}
	return t
}

const smuggledGet = "GET /admin HTTP/1.1\r\nHost: gw\r\n\r\n"

var chunkedSmuggle = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggledGet), smuggledGet)

func TestFramingTracker(t *testing.T) {
	get := "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"
	post := "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello"
	clteHead := "POST /y HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunked := "POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"
	for _, tc := range []struct {
		name   string
		in     string
		blocks int
		bad    int
		why    policy.Reason
	}{
		{"one GET", get, 1, -1, ""},
		{"bare LF lines", "GET /x HTTP/1.1\nHost: gw\n\n", 1, -1, ""},
		{"pipelined", get + post + chunked + get, 4, -1, ""},
		{"a GET's Content-Length body", "GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nGET" + get, 2, -1, ""},
		{"body that looks like a request", "POST /x HTTP/1.1\r\nContent-Length: " + fmt.Sprint(len(get)) + "\r\n\r\n" + get, 1, -1, ""},
		{"chunk size in capitals, trailing tabs", "POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\nA\t\r\n0123456789\r\n0\r\n\r\n" + get, 2, -1, ""},
		{"HTTP/1.0 GET", "GET /x HTTP/1.0\r\n\r\n", 1, -1, ""},

		{"CL+TE", "POST /x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedSmuggle, 1, 0, reasonFramingConflict},
		{"TE+CL, odd case", "POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 4\r\n\r\n0\r\n\r\n", 1, 0, reasonFramingConflict},
		{"two equal Content-Lengths", "POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 1, 0, reasonFramingConflict},
		{"TE on HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1, 0, reasonFramingConflict},
		{"conflict after a chunked body", chunked + get + "POST /y HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedSmuggle, 3, 2, reasonFramingConflict},
		{"conflict inside a Content-Length body is body", "POST /x HTTP/1.1\r\nContent-Length: " + fmt.Sprint(len(clteHead)) + "\r\n\r\n" + clteHead + get, 2, -1, ""},

		{"folded Transfer-Encoding", "POST /x HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 1, 0, reasonFramingUnknown},
		{"TE not chunked", "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 1, 0, reasonFramingUnknown},
		{"two TEs (net/http: 501)", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 0, reasonFramingUnknown},
		{"bad Content-Length", "POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 1, 0, reasonFramingUnknown},
		{"chunk size with bare LF", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + get, 1, 1, reasonFramingUnknown},
		{"chunk data not followed by CRLF", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + get, 1, 1, reasonFramingUnknown},
		{"chunk size too long", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n", 1, 1, reasonFramingUnknown},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, 0, reasonFramingUnknown},
		{"three-part request line", "GET /x y HTTP/1.1\r\n\r\n", 0, 0, reasonFramingUnknown},
	} {
		for _, step := range []int{0, 1, 3, 7} {
			tr := feedAll(tc.in, step)
			if tr.blocks != tc.blocks || tr.bad != tc.bad || tr.why != tc.why {
				t.Errorf("%s (step %d): blocks %d bad %d %q; want %d %d %q", tc.name, step, tr.blocks, tr.bad, tr.why, tc.blocks, tc.bad, tc.why)
			}
		}
	}
}

// serveStack runs s's gateway behind the real Server (framing listener
// included) and returns its address.
func serveStack(t *testing.T, s *stack) string {
	t.Helper()
	l := listen(t)
	srv, err := NewServer(ServerOptions{Listener: l, Handler: s.gw})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	return l.Addr().String()
}

// exchange writes req on a fresh connection and reads up to n answers.
func exchange(t *testing.T, addr, req string, n int) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return exchangeOn(t, c, req, n)
}

// exchangeOn writes req on c, reads up to n answers and closes c.
func exchangeOn(t *testing.T, c net.Conn, req string, n int) []*http.Response {
	t.Helper()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		resp.Status = string(b) // keep the page for messages
		out = append(out, resp)
	}
	return out
}

func statuses(rs []*http.Response) []int {
	var s []int
	for _, r := range rs {
		s = append(s, r.StatusCode)
	}
	return s
}

// TestFramingRefusedAtTheWire: over a raw socket against the running
// gateway, ambiguous framing is answered 400 and the upstream sees
// nothing of it, alone or hidden in a pipeline; well-framed requests
// before it are served.
func TestFramingRefusedAtTheWire(t *testing.T) {
	s := newStack(t, nil, nil)
	addr := serveStack(t, s)

	for _, tc := range []struct{ name, req string }{
		{"CL+TE", "POST /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedSmuggle},
		{"TE+CL", "POST /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n" + chunkedSmuggle},
		{"equal Content-Lengths", "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"},
		{"TE on HTTP/1.0", "POST /x HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" + chunkedSmuggle},
		{"folded TE", "POST /x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + chunkedSmuggle},
	} {
		got := exchange(t, addr, tc.req, 2)
		if len(got) != 1 || got[0].StatusCode != http.StatusBadRequest || !got[0].Close {
			t.Errorf("%s: answers %v; want one 400 and the connection closed", tc.name, statuses(got))
		} else if !strings.Contains(got[0].Status, "ambiguous") && !strings.Contains(got[0].Status, "new one") {
			t.Errorf("%s: page does not say why: %.300s", tc.name, got[0].Status)
		}
	}
	if n := s.backend.count(); n != 0 {
		t.Fatalf("upstream received %d requests, last %+v", n, s.backend.last(t))
	}
	_, _, refusals := s.obs.snapshot()
	if j := strings.Join(refusals, ","); j != "framing_conflict,framing_conflict,framing_conflict,framing_conflict,framing_unknown" {
		t.Errorf("refusals %s", j)
	}

	// A pipeline: GET, a chunked POST, a TRACE the gateway answers itself
	// (405, the connection stays), then CL+TE after the chunked body.
	pipeline := "GET /first HTTP/1.1\r\nHost: gw\r\n\r\n" +
		"POST /second HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"TRACE /third HTTP/1.1\r\nHost: gw\r\n\r\n" +
		"POST /hidden HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedSmuggle +
		"GET /after HTTP/1.1\r\nHost: gw\r\n\r\n"
	got := exchange(t, addr, pipeline, 5)
	if st := statuses(got); fmt.Sprint(st) != "[200 200 405 400]" {
		t.Fatalf("pipeline answers %v; want [200 200 405 400] and the connection closed", st)
	}
	s.backend.mu.Lock()
	var paths []string
	for _, r := range s.backend.reqs {
		paths = append(paths, r.Path+"="+r.Body)
	}
	s.backend.mu.Unlock()
	if strings.Join(paths, " ") != "/first= /second=hello" {
		t.Errorf("upstream saw %q; want /first and /second (hello) only", paths)
	}

	// The listener serves well-framed traffic as before.
	if got := exchange(t, addr, "POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nhiGET /y HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", 2); fmt.Sprint(statuses(got)) != "[200 200]" {
		t.Errorf("well-framed pipeline: %v", statuses(got))
	}
}

// TestFramingNetHTTPRefusals: what net/http refuses itself stays refused
// behind the framing listener (and the gateway never sees it).
func TestFramingNetHTTPRefusals(t *testing.T) {
	s := newStack(t, nil, nil)
	addr := serveStack(t, s)
	for _, head := range []string{
		"Content-Length: 4\r\nContent-Length: 5\r\n",
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
		"Transfer-Encoding: gzip, chunked\r\n",
		"Host: other\r\n",
	} {
		got := exchange(t, addr, "POST /x HTTP/1.1\r\nHost: gw\r\n"+head+"\r\n0\r\n\r\n", 1)
		if len(got) != 1 || got[0].StatusCode < 400 {
			t.Errorf("%q: %v", head, statuses(got))
		}
	}
	if s.backend.count() != 0 {
		t.Error("upstream reached")
	}
}

// TestFramingHTTP2Unaffected: HTTP/2 requests (h2c is not served on the
// plain listener) never consult a tracker; in-process callers neither.
func TestAdmitFramingWithoutListener(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://gw/x", nil)
	if why := admitFraming(r); why != "" {
		t.Fatalf("in-process request: %q", why)
	}
}

func FuzzFramingTracker(f *testing.F) {
	f.Add([]byte("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n"), 3)
	f.Add([]byte("POST /x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+chunkedSmuggle), 1)
	f.Add([]byte("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 2)
	f.Fuzz(func(t *testing.T, in []byte, step int) {
		whole := newFramingTracker()
		whole.feed(in)
		// Reads are split wherever net/http's buffer happens to end: the
		// verdicts must not depend on it.
		if step <= 0 || step > len(in) {
			step = 1
		}
		parts := newFramingTracker()
		for i := 0; i < len(in); i += step {
			parts.feed(in[i:min(i+step, len(in))])
		}
		if whole.blocks != parts.blocks || whole.bad != parts.bad || whole.why != parts.why {
			t.Fatalf("whole: %d %d %q; in steps of %d: %d %d %q", whole.blocks, whole.bad, whole.why, step, parts.blocks, parts.bad, parts.why)
		}
		if whole.bad >= 0 && whole.bad > whole.blocks {
			t.Fatalf("bad %d beyond blocks %d", whole.bad, whole.blocks)
		}
		// Go's own parser reads the same bytes: every request it reads
		// before the tracker's first refusal must end where the tracker's
		// header block of the same index ended.
		checkAgainstNetHTTP(t, in, whole)
	})
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// checkAgainstNetHTTP reads in with net/http's request parser (the one
// the server runs) and checks that each request it accepts, up to the
// tracker's first refused one, is the tracker's header block of the same
// index: both end at the same offset. Otherwise the handler would be
// given the verdict on another request.
func checkAgainstNetHTTP(t *testing.T, in []byte, tr framingTracker) {
	t.Helper()
	// Where each header block ends, by the tracker fed byte by byte.
	var ends []int
	step := newFramingTracker()
	for i := range in {
		if step.feed(in[i:i+1]) && step.blocks > len(ends) {
			ends = append(ends, i+1)
		}
	}
	cr := &countingReader{r: strings.NewReader(string(in))}
	br := bufio.NewReader(cr)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if tr.bad >= 0 && i >= tr.bad {
			return
		}
		at := cr.n - br.Buffered()
		if i >= len(ends) || ends[i] != at {
			t.Fatalf("net/http read request %d (%s %q) ending at %d; the tracker's blocks end at %v", i, req.Method, req.RequestURI, at, ends)
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		req.Body.Close()
		if req.ProtoMajor != 1 {
			return
		}
	}
}

// TestFramingOverTLS: under TLS the listener terminates TLS itself so that
// HTTP/1.1 is followed too: CL+TE is refused; well-framed HTTP/1.1 and
// HTTP/2 (ALPN h2) are served as https; a client that never finishes its
// handshake holds up nobody.
func TestFramingOverTLS(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "gw")
	s := newStack(t, nil, nil)
	l := listen(t)
	srv, err := NewServer(ServerOptions{Listener: l, Handler: s.gw, ReadHeaderTimeout: 2 * time.Second,
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, srv)
	addr := l.Addr().String()

	// A stalled client: TCP only, no ClientHello.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	tlsExchange := func(req string, n int) []*http.Response {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test certificate
		if err != nil {
			t.Fatal(err)
		}
		return exchangeOn(t, c, req, n)
	}
	got := tlsExchange("GET /first HTTP/1.1\r\nHost: gw\r\n\r\n"+
		"POST /hidden HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+chunkedSmuggle, 3)
	if fmt.Sprint(statuses(got)) != "[200 400]" {
		t.Fatalf("HTTP/1.1 over TLS: answers %v; want [200 400]", statuses(got))
	}
	if n := s.backend.count(); n != 1 {
		t.Fatalf("upstream received %d requests; want /first only", n)
	}
	if got := s.backend.last(t); got.Path != "/first" || got.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw %s with X-Forwarded-Proto %q", got.Path, got.Header.Get("X-Forwarded-Proto"))
	}

	h2 := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test certificate
	t.Cleanup(h2.CloseIdleConnections)
	resp, err := h2.Get("https://" + addr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2: %d over %s", resp.StatusCode, resp.Proto)
	}
	if got := s.backend.last(t); got.Path != "/h2" || got.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("upstream saw %s with X-Forwarded-Proto %q", got.Path, got.Header.Get("X-Forwarded-Proto"))
	}

	// Plain HTTP to the TLS port gets net/http's hint, not a hang.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: gw\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %v %v", resp, err)
	}
}
