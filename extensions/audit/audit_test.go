package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/audit"
	"github.com/superset-gateway/superset-gateway/extensions/bundle/bundletest"
	"github.com/superset-gateway/superset-gateway/extensions/osv"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
)

var now = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func db(t *testing.T) *osv.DB {
	t.Helper()
	d, err := osv.Load([]string{"../osv/testdata/records"}, osv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func rules(r *audit.Report, bundle string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Bundle == bundle {
			out = append(out, f.Rule+" "+f.Advisory)
		}
	}
	return out
}

func has(rs []string, want string) bool {
	for _, r := range rs {
		if r == want || strings.HasPrefix(r, want+" ") {
			return true
		}
	}
	return false
}

func TestAudit(t *testing.T) {
	dir := t.TempDir()
	clean := write(t, dir, "acme-clean.supx", bundletest.Valid(bundletest.Manifest("acme", "clean", "1.0.0"), []byte("/*! leftpadx v4.17.21 | MIT */\nvar a=1"), nil))
	banner := write(t, dir, "acme-banner.supx", bundletest.Valid(bundletest.Manifest("acme", "banner", "1.0.0"),
		[]byte("/*! For license information please see remoteEntry.js.LICENSE.txt */\n/*! leftpadx v4.17.20 | MIT */\n/***/ \"./node_modules/mystery/index.js\":"), nil))
	lock := write(t, dir, "acme-lock.supx", bundletest.Valid(bundletest.Manifest("acme", "lock", "1.0.0"), []byte("var a=1 /* nothing to see */"), nil))
	write(t, dir, "acme-lock.package-lock.json", []byte(`{"name":"acme-lock","lockfileVersion":3,"packages":{"":{"name":"acme-lock"},"node_modules/@scope/widget":{"version":"2.1.0"},"node_modules/leftpadx":{"version":"4.17.21"}}}`))
	py := write(t, dir, "acme-py.supx", bundletest.Valid(bundletest.Manifest("acme", "py", "1.0.0"), []byte("x"), map[string][]byte{"acme/py/entry.py": []byte("import requests_thing")}))
	write(t, dir, "acme-py.requirements.txt", []byte("requests-thing==1.4  # pinned\nflask>=2\n"))
	sbom := write(t, dir, "acme-sbom.supx", bundletest.Valid(bundletest.Manifest("acme", "sbom", "1.0.0"), []byte("/*! leftpadx v4.17.20 */"), nil))
	write(t, dir, "acme-sbom.supx.cdx.json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"leftpadx","version":"4.17.21","purl":"pkg:npm/leftpadx@4.17.21"}]}`))
	blocked := write(t, dir, "acme-blocked.supx", bundletest.Valid(bundletest.Manifest("acme", "blocked", "1.2.3"), []byte("x"), nil))
	old := write(t, dir, "acme-min.supx", bundletest.Valid(bundletest.Manifest("acme", "min", "0.9.0"), []byte("x"), nil))
	advised := write(t, dir, "acme-badext.supx", bundletest.Valid(bundletest.Manifest("acme", "badext", "1.9.0"), []byte("x"), nil))
	malformed := write(t, dir, "acme-malformed.supx", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: []byte("not json")}))
	mism := bundletest.Manifest("acme", "mism", "1.0.0")
	mism["id"] = "acme.clean"
	mismatch := write(t, dir, "acme-mism.supx", bundletest.Valid(mism, []byte("x"), nil))
	write(t, dir, "ignored.txt", []byte("not a bundle"))

	files, err := audit.Expand([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 10 {
		t.Fatalf("expand: %v", files)
	}
	r := audit.Run(files, audit.Options{OSV: db(t), Now: now, Policy: policy.Rules{
		Block: []string{"acme.blocked@1.2.3"}, MinVersions: map[string]string{"acme.min": "1.0.0"},
	}})
	want := map[string][]string{
		clean:     nil,
		banner:    {"advisory GHSA-test-npm1", audit.RuleUnidentified},
		lock:      {"advisory GHSA-test-npm1"},
		py:        {"advisory PYSEC-test-1", audit.RuleUnevaluable, audit.RuleUnidentified},
		sbom:      nil, // the SBOM's version wins over a banner
		blocked:   {"policy/blocked"},
		old:       {"policy/below_minimum"},
		advised:   {"extension-advisory SGX-test-1"},
		malformed: {audit.RuleUnreadable},
		mismatch:  {"bundle-structure/id_mismatch", audit.RuleStructure},
	}
	for b, ws := range want {
		got := rules(r, b)
		if len(got) != len(ws) {
			t.Errorf("%s: %v, want %v", filepath.Base(b), got, ws)
			continue
		}
		for _, w := range ws {
			if !has(got, w) {
				t.Errorf("%s: %v, want %v", filepath.Base(b), got, ws)
			}
		}
	}
	if m, _ := r.Max(); m != audit.Critical {
		t.Errorf("max %v", m)
	}

	var buf bytes.Buffer
	if err := r.WriteSARIF(&buf, "test"); err != nil {
		t.Fatal(err)
	}
	var sarif struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs[0].Results) != len(r.Findings) {
		t.Fatalf("sarif: %v %s", err, buf.String())
	}
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil || !strings.Contains(buf.String(), `"advisory": "GHSA-test-npm1"`) {
		t.Fatalf("json: %v %s", err, buf.String())
	}
}

func TestNoAdvisoriesIsAFinding(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "a.supx", bundletest.Valid(bundletest.Manifest("a", "b", "1.0.0"), []byte("x"), nil))
	r := audit.Run([]string{p}, audit.Options{Now: now})
	if m, ok := r.Max(); !ok || m < audit.High || r.Findings[0].Rule != audit.RuleNoAdvisories {
		t.Fatalf("%+v", r.Findings)
	}
	r = audit.Run([]string{p}, audit.Options{Now: now, OSV: db(t), MaxData: 24 * time.Hour})
	if len(r.Findings) != 1 || r.Findings[0].Rule != audit.RuleNoAdvisories {
		t.Fatalf("stale: %+v", r.Findings)
	}
}
