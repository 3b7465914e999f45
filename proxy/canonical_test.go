package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/proxy/upstream"
)

// TestUnderscoreHeadersDropped: a client's Script_Name (which gunicorn
// turns into SCRIPT_NAME and strips from the path) and X_Remote_User
// (which a server mapping '_' like '-' takes for the trusted
// X-Remote-User) never reach the upstream, in any spelling; the request
// itself goes on.
func TestUnderscoreHeadersDropped(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) { o.TrustedHeaders = []string{"X-Remote-User"} })
	resp, _ := raw(t, s.addr(), "GET /api/v1/dashboard/api/v1/chart/2/data/ HTTP/1.1\r\nHost: gw\r\n"+
		"Script_Name: /api/v1/dashboard\r\nSCRIPT_NAME: /api/v1/dashboard\r\nX_Remote_User: admin\r\nX-Remote_User: admin\r\n"+
		"path_info: /api/v1/chart/2/data/\r\nX-Keep: yes\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := s.backend.last(t)
	for name := range got.Header {
		if strings.ContainsRune(name, '_') || strings.EqualFold(name, "X-Remote-User") {
			t.Errorf("upstream received %s: %q", name, got.Header[name])
		}
	}
	if got.Header.Get("X-Keep") != "yes" || got.Path != "/api/v1/dashboard/api/v1/chart/2/data/" {
		t.Errorf("upstream saw %s %v", got.Path, got.Header)
	}
	if _, _, refusals := s.obs.snapshot(); len(refusals) != 0 {
		t.Errorf("dropping is not a refusal: %v", refusals)
	}
}

func TestUnderscoreHeadersRefused(t *testing.T) {
	s := newStack(t, nil, func(o *Options, _ *upstream.Options) { o.RefuseUnderscoreHeaders = true })
	resp, page := raw(t, s.addr(), "GET /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\nScript_Name: /x\r\n\r\n")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "underscore") || s.backend.count() != 0 {
		t.Fatalf("status %d, backend hits %d, page %.200s", resp.StatusCode, s.backend.count(), page)
	}
	if _, _, refusals := s.obs.snapshot(); strings.Join(refusals, ",") != "underscore_header" {
		t.Errorf("refusals %v", refusals)
	}
	// Without one, the request is served.
	if resp, _ := raw(t, s.addr(), "GET /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"); resp.StatusCode != http.StatusOK {
		t.Errorf("plain request: %d", resp.StatusCode)
	}
}

// TestDuplicateSingleHeadersRefused: two of a header the gateway and
// gunicorn would read differently (Go: the first; gunicorn: the last, or
// both joined) are refused at the wire and never forwarded.
func TestDuplicateSingleHeadersRefused(t *testing.T) {
	s := newStack(t, nil, nil)
	addr := serveStack(t, s)
	for _, tc := range []struct{ name, lines string }{
		{"Content-Type", "Content-Type: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2\r\n\r\n{}"},
		{"Authorization", "Authorization: Bearer a.b.c\r\nauthorization: Bearer d.e.f\r\n\r\n"},
		{"X-Guesttoken", "X-GuestToken: a\r\nX-Guesttoken: b\r\n\r\n"},
		{"X-Csrftoken", "X-CSRFToken: a\r\nX-CSRFToken: b\r\n\r\n"},
		{"Origin", "Origin: https://a.example\r\nOrigin: https://b.example\r\n\r\n"},
		{"Referer", "Referer: https://a.example/\r\nReferer: https://b.example/\r\n\r\n"},
	} {
		resp, page := raw(t, addr, "POST /api/v1/chart/ HTTP/1.1\r\nHost: gw\r\n"+tc.lines)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "repeats the "+tc.name+" header") {
			t.Errorf("two %s: status %d, page %.300s", tc.name, resp.StatusCode, page)
		}
	}
	// net/http refuses two Hosts itself.
	if resp, _ := raw(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two Hosts: %d", resp.StatusCode)
	}
	if n := s.backend.count(); n != 0 {
		t.Fatalf("upstream received %d requests", n)
	}
	_, _, refusals := s.obs.snapshot()
	if strings.Count(strings.Join(refusals, ","), "duplicate_header") != 6 {
		t.Errorf("refusals %v", refusals)
	}
	// Cookie may repeat (HTTP/2 clients split it), as may other headers.
	resp, _ := raw(t, addr, "GET /x HTTP/1.1\r\nHost: gw\r\nCookie: a=1\r\nCookie: b=2\r\nAccept: a\r\nAccept: b\r\nConnection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK || s.backend.count() != 1 {
		t.Errorf("repeated Cookie and Accept: %d", resp.StatusCode)
	}
}

func TestCanonicalHeadersDoesNotAllocate(t *testing.T) {
	h := http.Header{
		"Host": {"gw"}, "User-Agent": {"Mozilla/5.0"}, "Accept": {"*/*"}, "Cookie": {"a=1", "b=2"},
		"Authorization": {"Bearer x"}, "Content-Type": {"application/json"}, "X-Requested-With": {"XMLHttpRequest"},
	}
	if n := testing.AllocsPerRun(100, func() {
		if why, _ := CanonicalHeaders(h, false); why != "" {
			t.Fatal(why)
		}
	}); n != 0 {
		t.Errorf("%v allocations per request", n)
	}
}
