package osv_test

import (
	"archive/zip"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/osv"
)

func load(t *testing.T) *osv.DB {
	t.Helper()
	db, err := osv.Load([]string{"testdata/records"}, osv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func ids(rs []*osv.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestQuery(t *testing.T) {
	db := load(t)
	cases := []struct {
		eco, name, version string
		want               string // "" = not affected
		wantErr            error
	}{
		{"npm", "leftpadx", "4.17.20", "GHSA-test-npm1", nil},
		{"npm", "leftpadx", "0.0.1", "GHSA-test-npm1", nil},
		{"npm", "leftpadx", "4.17.21", "", nil},
		{"npm", "leftpadx", "5.0.0", "", nil},
		{"npm", "leftpadx", "9.9.9", "", nil}, // only in a withdrawn record
		{"npm", "leftpadx", "4.17.21-beta.1", "GHSA-test-npm1", nil},
		{"npm", "@scope/widget", "2.3.1", "GHSA-test-npm1", nil},
		{"npm", "@scope/widget", "2.3.2", "", nil},
		{"npm", "@scope/widget", "1.9.9", "", nil},
		{"PyPI", "Requests_Thing", "1.4", "PYSEC-test-1", osv.ErrRange}, // GIT range is not evaluable
		{"PyPI", "requests.thing", "1.5.0rc1", "", osv.ErrRange},
		{"PyPI", "requests-thing", "1.5.0b2", "PYSEC-test-1", osv.ErrRange},
		{"PyPI", "requests-thing", "2.0.5", "PYSEC-test-1", osv.ErrRange},
		{"PyPI", "requests-thing", "2.1", "", osv.ErrRange},
		{"PyPI", "requests-thing", "0.9.post1", "PYSEC-test-1", nil},
		{"Superset-Extension", "acme.badext", "1.9.0", "SGX-test-1", nil},
		{"Superset-Extension", "acme.badext", "2.0.0", "", nil},
		{"npm", "oddpkg", "1.0.0", "", osv.ErrRange},
		{"npm", "leftpadx", "not a version!", "", osv.ErrVersion},
	}
	for _, c := range cases {
		got, errs := db.Query(c.eco, c.name, c.version)
		g := ""
		if len(got) == 1 {
			g = got[0].ID
		} else if len(got) > 1 {
			t.Errorf("%s %s@%s: %v", c.eco, c.name, c.version, ids(got))
			continue
		}
		if g != c.want {
			t.Errorf("%s %s@%s: got %q want %q", c.eco, c.name, c.version, g, c.want)
		}
		if c.wantErr == nil && len(errs) > 0 {
			t.Errorf("%s %s@%s: unexpected %v", c.eco, c.name, c.version, errs)
		}
		if c.wantErr != nil && (len(errs) == 0 || !errors.Is(errs[0], c.wantErr)) {
			t.Errorf("%s %s@%s: errs %v, want %v", c.eco, c.name, c.version, errs, c.wantErr)
		}
	}
	if want := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC); !db.Newest.Equal(want) {
		t.Errorf("Newest %v (the withdrawn record must not count)", db.Newest)
	}
}

// writeZip packs the fixture records as osv.dev's all.zip does (one
// <ID>.json per record at the root).
func writeZip(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	ents, _ := os.ReadDir("testdata/records")
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("testdata/records", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(e.Name())
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestLoadZipAndTruncated(t *testing.T) {
	p := writeZip(t)
	db, err := osv.Load([]string{p}, osv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Query("npm", "leftpadx", "1.0.0"); len(got) != 1 {
		t.Fatalf("zip: %v", ids(got))
	}
	data, _ := os.ReadFile(p)
	for _, cut := range []int{len(data) - 1, len(data) / 2, 10, 0} {
		tp := filepath.Join(t.TempDir(), "cut.zip")
		os.WriteFile(tp, data[:cut], 0o644)
		if _, err := osv.Load([]string{tp}, osv.Limits{}); !errors.Is(err, osv.ErrSource) {
			t.Errorf("truncated at %d: %v", cut, err)
		}
	}
}

func TestBadSources(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"id": `), 0o644)
	if _, err := osv.Load([]string{bad}, osv.Limits{}); !errors.Is(err, osv.ErrRecord) {
		t.Errorf("not JSON: %v", err)
	}
	if _, err := osv.Load([]string{filepath.Join(dir, "missing")}, osv.Limits{}); !errors.Is(err, osv.ErrSource) {
		t.Errorf("missing: %v", err)
	}
	if _, err := osv.Load([]string{"testdata/records"}, osv.Limits{MaxRecords: 2}); !errors.Is(err, osv.ErrSource) {
		t.Errorf("too many: %v", err)
	}
	if _, err := osv.Load([]string{"testdata/records"}, osv.Limits{MaxRecord: 100}); !errors.Is(err, osv.ErrSource) {
		t.Errorf("too big: %v", err)
	}
}

func FuzzAffects(f *testing.F) {
	f.Add("npm", "1.2.3", "0", "1.2.4", "", "")
	f.Add("PyPI", "1.0rc1", "1.0a1", "", "1.0", "")
	f.Add("npm", "2.0.0", "1.0.0", "", "", "3.0.0")
	f.Add("Superset-Extension", "1.0.0", "0", "", "", "*")
	f.Add("PyPI", "!!", "", "x", "", "")
	f.Fuzz(func(t *testing.T, eco, version, intro, fixed, last, limit string) {
		a := osv.Affected{Ranges: []osv.Range{{Type: "ECOSYSTEM", Events: []osv.Event{{Introduced: intro}, {Fixed: fixed}, {LastAffected: last}, {Limit: limit}}}}}
		ok, err := a.Affects(eco, version)
		if err != nil && ok {
			// A range that errored must not also be the one that matched.
			t.Fatalf("affected with error %v", err)
		}
	})
}
