package enforce_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/bundle/bundletest"
	"github.com/superset-gateway/superset-gateway/extensions/enforce"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
	gwpolicy "github.com/superset-gateway/superset-gateway/policy"
)

var now = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

type entry struct{ ID, Name, Version, RemoteEntry string }

func listAnswer(t *testing.T, es ...entry) *http.Response {
	t.Helper()
	res := []map[string]any{}
	for _, e := range es {
		m := map[string]any{"id": e.ID, "name": e.Name, "version": e.Version, "description": "", "dependencies": []string{}}
		if e.RemoteEntry != "" {
			m["remoteEntry"], m["moduleFederationName"] = e.RemoteEntry, "x"
		}
		res = append(res, m)
	}
	b, _ := json.Marshal(map[string]any{"result": res, "count": len(res)})
	return answer("/api/v1/extensions/", b)
}

func answer(path string, b []byte) *http.Response {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(b))}},
		Body: io.NopCloser(bytes.NewReader(b)), ContentLength: int64(len(b)), Request: req}
}

func decodeList(t *testing.T, resp *http.Response) (ids []string, count int) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	var doc struct {
		Result []struct{ ID string } `json:"result"`
		Count  int                   `json:"count"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if resp.ContentLength != int64(len(b)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
		t.Fatalf("length not fixed: %d %q vs %d", resp.ContentLength, resp.Header.Get("Content-Length"), len(b))
	}
	for _, r := range doc.Result {
		ids = append(ids, r.ID)
	}
	return ids, doc.Count
}

func check(e *enforce.Enforcer, path string) gwpolicy.Decision {
	return e.Check(httptest.NewRequest(http.MethodGet, path, nil))
}

func TestListFilterAndRoutes(t *testing.T) {
	e, err := enforce.New(enforce.Options{Rules: policy.Rules{Block: []string{"acme.bad"}, MinVersions: map[string]string{"acme.old": "2.0.0"}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// Before any list answer nothing is vetted: files are refused.
	if d := check(e, "/api/v1/extensions/acme/good/remoteEntry.js"); d.Allow || d.Reason != gwpolicy.ReasonExtensionUnverified {
		t.Fatalf("unvetted: %+v", d)
	}
	resp := listAnswer(t,
		entry{"acme.good", "good", "1.0.0", "/api/v1/extensions/acme/good/remoteEntry.js"},
		entry{"acme.bad", "bad", "1.0.0", "/api/v1/extensions/acme/bad/remoteEntry.js"},
		entry{"acme.old", "old", "1.0.0", "/api/v1/extensions/acme/old/remoteEntry.js"},
		// id is not publisher.name: its remote entry would load acme.good's
		// files, or none.
		entry{"evil.x", "good", "1.0.0", "/api/v1/extensions/acme/good/remoteEntry.js"},
		entry{"acme.backendonly", "backendonly", "1.0.0", ""},
	)
	if err := e.ModifyResponse(resp); err != nil {
		t.Fatal(err)
	}
	ids, count := decodeList(t, resp)
	if count != 2 || len(ids) != 2 || ids[0] != "acme.good" || ids[1] != "acme.backendonly" {
		t.Fatalf("list %v count %d", ids, count)
	}
	cases := []struct {
		path string
		want gwpolicy.Reason // "" = allowed
	}{
		{"/api/v1/extensions/acme/good/remoteEntry.js", ""},
		{"/api/v1/extensions/acme/good/123.chunk.js", ""},
		{"/api/v1/extensions/acme/good", ""},
		{"/api/v1/extensions/acme/bad/remoteEntry.js", gwpolicy.ReasonExtensionRefused},
		{"/api/v1/extensions/acme/bad", gwpolicy.ReasonExtensionRefused},
		{"/api/v1/extensions/acme/bad/", gwpolicy.ReasonExtensionRefused},
		{"/api/v1/extensions/acme/old/remoteEntry.js", gwpolicy.ReasonExtensionRefused},
		{"/extensions/acme/bad/api/thing", gwpolicy.ReasonExtensionRefused},
		{"/extensions/acme/bad", gwpolicy.ReasonExtensionRefused},
		{"/extensions/acme/good/hello", gwpolicy.ReasonExtensionRefused}, // evil.x declares acme/good too
		{"/extensions/acme/backendonly/hello", ""},
		{"/extensions/acme/unknown/hello", gwpolicy.ReasonExtensionUnverified},
		{"/api/v1/extensions/acme/unknown/remoteEntry.js", gwpolicy.ReasonExtensionUnverified},
		{"/extensions/list/", ""},
		{"/api/v1/extensions/", ""},
		{"/api/v1/extensions/_info", ""},
		{"/api/v1/dashboard/", ""},
	}
	for _, c := range cases {
		d := check(e, c.path)
		if (c.want == "") != d.Allow || d.Reason != c.want {
			t.Errorf("%s: %+v, want %q", c.path, d, c.want)
		}
	}
	st := e.Status()
	if len(st.Verdicts) != 5 {
		t.Fatalf("status %+v", st)
	}
}

func TestUnreadableListIsEmptied(t *testing.T) {
	e, _ := enforce.New(enforce.Options{})
	for _, body := range [][]byte{[]byte("not json"), []byte(`{"result": 5}`), bytes.Repeat([]byte(" "), 5<<20)} {
		resp := answer("/api/v1/extensions/", body)
		if err := e.ModifyResponse(resp); err != nil {
			t.Fatal(err)
		}
		if ids, count := decodeList(t, resp); len(ids) != 0 || count != 0 {
			t.Fatalf("%v %d", ids, count)
		}
	}
	// A gzip answer is read, filtered and sent uncompressed.
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(`{"result":[{"id":"a.b","name":"b","version":"1.0.0","remoteEntry":"/api/v1/extensions/a/b/r.js"}],"count":1}`))
	zw.Close()
	resp := answer("/api/v1/extensions/", zb.Bytes())
	resp.Header.Set("Content-Encoding", "gzip")
	e.ModifyResponse(resp)
	if ids, count := decodeList(t, resp); count != 1 || ids[0] != "a.b" || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("gzip: %v %d", ids, count)
	}
}

func TestAdvisoriesUnavailable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.zip")
	for _, closed := range []bool{true, false} {
		e, err := enforce.New(enforce.Options{Sources: []string{missing}, FailClosed: closed})
		if err != nil {
			t.Fatal(err)
		}
		if e.Ready() == nil {
			t.Fatal("missing advisory data reported ready")
		}
		resp := listAnswer(t, entry{"acme.good", "good", "1.0.0", "/api/v1/extensions/acme/good/remoteEntry.js"})
		e.ModifyResponse(resp)
		ids, _ := decodeList(t, resp)
		d := check(e, "/api/v1/extensions/acme/good/remoteEntry.js")
		if closed && (len(ids) != 0 || d.Reason != gwpolicy.ReasonExtensionAdvisoriesUnavailable) {
			t.Fatalf("closed: %v %+v", ids, d)
		}
		if !closed && (len(ids) != 1 || !d.Allow) {
			t.Fatalf("open: %v %+v", ids, d)
		}
	}
	// Stale data is unavailable too.
	e, _ := enforce.New(enforce.Options{Sources: []string{"../osv/testdata/records"}, MaxDataAge: time.Hour, FailClosed: true, Now: func() time.Time { return now }})
	if e.Ready() == nil {
		t.Fatal("stale data reported ready")
	}
	// Fresh data: the extension feed refuses acme.badext below 2.0.0.
	e, _ = enforce.New(enforce.Options{Sources: []string{"../osv/testdata/records"}, MaxDataAge: 30 * 24 * time.Hour, FailClosed: true, Now: func() time.Time { return now }})
	if err := e.Ready(); err != nil {
		t.Fatal(err)
	}
	resp := listAnswer(t, entry{"acme.badext", "badext", "1.9.0", "/api/v1/extensions/acme/badext/remoteEntry.js"}, entry{"acme.fine", "fine", "1.0.0", "/api/v1/extensions/acme/fine/remoteEntry.js"})
	e.ModifyResponse(resp)
	if ids, _ := decodeList(t, resp); len(ids) != 1 || ids[0] != "acme.fine" {
		t.Fatalf("advisory: %v", ids)
	}
}

// With bundles_dir, the packages inside a bundle are checked too: a
// vulnerable npm package named in the built JS fails the extension.
func TestBundlePackagesChecked(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "acme-vuln.supx"), bundletest.Valid(bundletest.Manifest("acme", "vuln", "1.0.0"), []byte("/*! leftpadx v4.17.20 */"), nil), 0o644)
	os.WriteFile(filepath.Join(dir, "acme-fixed.supx"), bundletest.Valid(bundletest.Manifest("acme", "fixed", "1.0.0"), []byte("/*! leftpadx v4.17.21 */"), nil), 0o644)
	e, _ := enforce.New(enforce.Options{BundlesDir: dir, Sources: []string{"../osv/testdata/records"}, Now: func() time.Time { return now }})
	resp := listAnswer(t, entry{"acme.vuln", "vuln", "1.0.0", "/api/v1/extensions/acme/vuln/remoteEntry.js"},
		entry{"acme.fixed", "fixed", "1.0.0", "/api/v1/extensions/acme/fixed/remoteEntry.js"})
	e.ModifyResponse(resp)
	if ids, _ := decodeList(t, resp); len(ids) != 1 || ids[0] != "acme.fixed" {
		t.Fatalf("list: %v", ids)
	}
	if d := check(e, "/api/v1/extensions/acme/vuln/remoteEntry.js"); d.Reason != gwpolicy.ReasonExtensionRefused {
		t.Fatalf("vulnerable bundle's file: %+v", d)
	}
}

func TestPinnedFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "acme-good.supx"), bundletest.Valid(bundletest.Manifest("acme", "good", "1.0.0"), []byte("audited"), nil), 0o644)
	e, _ := enforce.New(enforce.Options{BundlesDir: dir})
	resp := listAnswer(t, entry{"acme.good", "good", "1.0.0", "/api/v1/extensions/acme/good/remoteEntry.js"},
		entry{"acme.stranger", "stranger", "1.0.0", "/api/v1/extensions/acme/stranger/remoteEntry.js"})
	e.ModifyResponse(resp)
	if ids, _ := decodeList(t, resp); len(ids) != 1 || ids[0] != "acme.good" {
		t.Fatalf("an unaudited extension listed: %v", ids)
	}
	ok := answer("/api/v1/extensions/acme/good/remoteEntry.js", []byte("audited"))
	e.ModifyResponse(ok)
	if b, _ := io.ReadAll(ok.Body); ok.StatusCode != 200 || string(b) != "audited" {
		t.Fatalf("audited file: %d %q", ok.StatusCode, b)
	}
	// The file swapped on disk after the audit: Superset serves it, the
	// gateway does not.
	swapped := answer("/api/v1/extensions/acme/good/remoteEntry.js", []byte("swapped"))
	e.ModifyResponse(swapped)
	if b, _ := io.ReadAll(swapped.Body); swapped.StatusCode != http.StatusBadGateway || bytes.Contains(b, []byte("swapped")) {
		t.Fatalf("swapped file: %d %q", swapped.StatusCode, b)
	}
	// A byte range of the audited file cannot be checked: refused too.
	part := answer("/api/v1/extensions/acme/good/remoteEntry.js", []byte("audi"))
	part.StatusCode = http.StatusPartialContent
	e.ModifyResponse(part)
	if part.StatusCode != http.StatusBadGateway {
		t.Fatalf("range answer passed: %d", part.StatusCode)
	}
	// A version other than the audited one is not vetted.
	resp = listAnswer(t, entry{"acme.good", "good", "1.0.1", "/api/v1/extensions/acme/good/remoteEntry.js"})
	e.ModifyResponse(resp)
	if ids, _ := decodeList(t, resp); len(ids) != 0 {
		t.Fatalf("other version listed: %v", ids)
	}
	if d := check(e, "/api/v1/extensions/acme/good/remoteEntry.js"); d.Allow {
		t.Fatalf("other version's files: %+v", d)
	}
}
