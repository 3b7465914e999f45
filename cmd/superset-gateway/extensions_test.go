package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/extensions/bundle/bundletest"
)

func TestExtensionsAuditCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "acme-good.supx")
	os.WriteFile(good, bundletest.Valid(bundletest.Manifest("acme", "good", "2.0.0"), []byte("/*! leftpadx v4.17.21 */"), nil), 0o644)
	bad := filepath.Join(dir, "acme-bad.supx")
	os.WriteFile(bad, bundletest.Valid(bundletest.Manifest("acme", "bad", "1.0.0"), []byte("/*! leftpadx v4.17.20 */"), nil), 0o644)
	osvDir := "../../extensions/osv/testdata/records"
	pol := writeFile(t, dir, "policy.yaml", "block: [acme.blocked]\nmin_versions: {acme.good: 2.0.0}\nmax_age: 8760h\n")
	ctx := context.Background()

	code, out, _ := runCmd(t, ctx, nil, "extensions", "audit", good, "--osv", osvDir, "--policy", pol)
	if code != 0 || !strings.Contains(out, "1 bundle(s), 0 finding(s)") {
		t.Fatalf("good: %d %q", code, out)
	}
	// Flags after and between paths; the vulnerable bundle fails the run.
	code, out, _ = runCmd(t, ctx, nil, "extensions", "audit", "--format", "sarif", good, "--osv", osvDir, bad)
	if code != exitFailure || !strings.Contains(out, `"ruleId": "advisory"`) {
		t.Fatalf("bad: %d %q", code, out)
	}
	// A critical advisory fails even --fail-on critical.
	code, out, _ = runCmd(t, ctx, nil, "extensions", "audit", bad, "--osv", osvDir, "--fail-on", "critical", "--format", "json")
	if code != exitFailure || !strings.Contains(out, `"severity": "critical"`) {
		t.Fatalf("critical advisory must fail --fail-on critical: %d %q", code, out)
	}
	code, _, _ = runCmd(t, ctx, nil, "extensions", "audit", good, "--fail-on", "critical")
	if code != 0 {
		t.Fatalf("no --osv is a high finding, under critical: %d", code)
	}
	code, _, _ = runCmd(t, ctx, nil, "extensions", "audit", good)
	if code != exitFailure {
		t.Fatalf("no --osv must fail at the default --fail-on high: %d", code)
	}
	for _, args := range [][]string{
		{"extensions"},
		{"extensions", "audit"},
		{"extensions", "audit", good, "--format", "xml"},
		{"extensions", "audit", good, "--fail-on", "dire"},
		{"extensions", "audit", good, "--policy", writeFile(t, dir, "p2.yaml", "blok: [x]\n")},
		{"extensions", "audit", filepath.Join(dir, "missing")},
	} {
		if code, _, errOut := runCmd(t, ctx, nil, args...); code != exitUsage {
			t.Errorf("%v: %d %q", args, code, errOut)
		}
	}
	// A truncated advisory archive is an error, not "no advisories".
	zip := writeFile(t, dir, "all.zip", "PK\x03\x04truncated")
	if code, _, errOut := runCmd(t, ctx, nil, "extensions", "audit", good, "--osv", zip); code != exitFailure || !strings.Contains(errOut, "advisory source unreadable") {
		t.Fatalf("truncated: %d %q", code, errOut)
	}
}
