package bundle_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/extensions/bundle"
	"github.com/superset-gateway/superset-gateway/extensions/bundle/bundletest"
)

func read(t *testing.T, data []byte, lim bundle.Limits) (*bundle.Bundle, error) {
	t.Helper()
	return bundle.Read(bytes.NewReader(data), int64(len(data)), lim)
}

func kinds(b *bundle.Bundle) []string {
	var out []string
	for _, p := range b.Problems {
		out = append(out, p.Kind)
	}
	return out
}

func TestValidBundle(t *testing.T) {
	data := bundletest.Valid(bundletest.Manifest("acme", "tools", "1.2.3"), []byte("var x=1"), map[string][]byte{"acme/tools/entry.py": []byte("print(1)")})
	b, err := read(t, data, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Problems) != 0 {
		t.Fatalf("problems in a valid bundle: %+v", b.Problems)
	}
	if b.Manifest.ID != "acme.tools" || b.Manifest.Version != "1.2.3" || string(b.Frontend["remoteEntry.js"]) != "var x=1" || string(b.Backend["acme/tools/entry.py"]) != "print(1)" {
		t.Fatalf("read %+v", b)
	}
	if !b.Built.Equal(bundletest.Built) {
		t.Fatalf("built %v", b.Built)
	}
}

func TestHostileBundles(t *testing.T) {
	m := bundletest.JSON(bundletest.Manifest("acme", "tools", "1.2.3"))
	re := bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: []byte("x")}
	man := bundletest.Entry{Name: "manifest.json", Data: m}
	bomb := bytes.Repeat([]byte{0}, 8<<20)
	mismatch := bundletest.Manifest("acme", "tools", "1.2.3")
	mismatch["id"] = "other.thing"
	badName := bundletest.Manifest("Acme", "tools", "1.2")
	cases := []struct {
		name    string
		data    []byte
		lim     bundle.Limits
		err     error
		problem string
	}{
		{"not a zip", []byte("PK\x03\x04 definitely not"), bundle.Limits{}, bundle.ErrNotZip, ""},
		{"empty", nil, bundle.Limits{}, bundle.ErrNotZip, ""},
		{"bomb by ratio", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/big.js", Data: bomb}), bundle.Limits{}, bundle.ErrTooLarge, ""},
		{"over file limit", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/big.js", Data: bytes.Repeat([]byte("ab"), 4096), Store: true}), bundle.Limits{MaxFile: 1024}, bundle.ErrTooLarge, ""},
		{"over total", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/a.js", Data: make([]byte, 600), Store: true}, bundletest.Entry{Name: "frontend/dist/b.js", Data: make([]byte, 600), Store: true}), bundle.Limits{MaxTotal: 1000}, bundle.ErrTooLarge, ""},
		{"archive too big", bundletest.Zip(man, re), bundle.Limits{MaxArchive: 10}, bundle.ErrTooLarge, ""},
		{"too many entries", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/a.js"}), bundle.Limits{MaxEntries: 2}, bundle.ErrTooManyEnts, ""},
		{"no manifest", bundletest.Zip(re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"manifest not JSON", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: []byte("{nope")}, re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"manifest wrong types", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: []byte(`{"id":1}`)}, re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"manifest trailing", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: append(m, []byte(" {}")...)}, re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"manifest without id", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: []byte(`{"publisher":"a","name":"b"}`)}, re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"huge manifest", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: append(m[:len(m)-1], []byte(`,"description":"`+strings.Repeat("a", 300<<10)+`"}`)...)}, re), bundle.Limits{}, bundle.ErrManifest, ""},
		{"traversal", bundletest.Zip(man, re, bundletest.Entry{Name: "backend/src/../../etc/passwd", Data: []byte("x")}), bundle.Limits{}, nil, bundle.ProblemUnsafePath},
		{"absolute", bundletest.Zip(man, re, bundletest.Entry{Name: "/etc/passwd", Data: []byte("x")}), bundle.Limits{}, nil, bundle.ProblemUnsafePath},
		{"backslash", bundletest.Zip(man, re, bundletest.Entry{Name: `frontend\dist\x.js`, Data: []byte("x")}), bundle.Limits{}, nil, bundle.ProblemUnsafePath},
		{"symlink", bundletest.Zip(man, re, bundletest.Entry{Name: "backend/src/link.py", Data: []byte("/etc/passwd"), Mode: os.ModeSymlink | 0o777}), bundle.Limits{}, nil, bundle.ProblemSymlink},
		{"duplicate", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: []byte("evil")}), bundle.Limits{}, nil, bundle.ProblemDuplicateEntry},
		{"directory entry", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/"}), bundle.Limits{}, nil, bundle.ProblemUnexpectedEntry},
		{"unexpected entry", bundletest.Zip(man, re, bundletest.Entry{Name: "frontend/dist/sub/x.js", Data: []byte("x")}), bundle.Limits{}, nil, bundle.ProblemUnexpectedEntry},
		{"id mismatch", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(mismatch)}, re), bundle.Limits{}, nil, bundle.ProblemIDMismatch},
		{"bad name", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(badName)}, re), bundle.Limits{}, nil, bundle.ProblemBadName},
		{"bad version", bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(badName)}, re), bundle.Limits{}, nil, bundle.ProblemBadVersion},
		{"remote entry missing", bundletest.Zip(man), bundle.Limits{}, nil, bundle.ProblemNoRemoteEntry},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := read(t, c.data, c.lim)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kinds(b) {
				if k == c.problem {
					return
				}
			}
			t.Fatalf("problems %v, want %s", kinds(b), c.problem)
		})
	}
}

// The duplicate's second copy is never the one kept: Python's ZipFile
// reads the last, so the audit must not vouch for either silently.
func TestDuplicateKeepsFirstAndReports(t *testing.T) {
	data := bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(bundletest.Manifest("a", "b", "1.0.0"))},
		bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: []byte("good")},
		bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: []byte("evil")})
	b, err := read(t, data, bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Frontend["remoteEntry.js"]) != "good" || len(b.Problems) != 1 {
		t.Fatalf("%q %+v", b.Frontend["remoteEntry.js"], b.Problems)
	}
}

func TestOpenRefusesSymlinkedBundle(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.supx")
	if err := os.WriteFile(real, bundletest.Valid(bundletest.Manifest("a", "b", "1.0.0"), []byte("x"), nil), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.supx")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.Open(link, bundle.Limits{}); !errors.Is(err, bundle.ErrNotRegular) {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := bundle.Open(real, bundle.Limits{}); err != nil {
		t.Fatalf("real: %v", err)
	}
}

// A zip whose entry decompresses past its declared size is caught by the
// reader's own limit, not trusted.
func TestLyingSizeIsBounded(t *testing.T) {
	data := bundletest.Zip(bundletest.Entry{Name: "manifest.json", Data: bundletest.JSON(bundletest.Manifest("a", "b", "1.0.0"))},
		bundletest.Entry{Name: "frontend/dist/remoteEntry.js", Data: bytes.Repeat([]byte("a"), 2000)})
	// Patch the central directory's uncompressed size of the last entry
	// down to 10: archive/zip then sees more data than declared.
	i := bytes.LastIndex(data, []byte("PK\x01\x02"))
	patched := append([]byte(nil), data...)
	copy(patched[i+24:i+28], []byte{10, 0, 0, 0})
	if _, err := read(t, patched, bundle.Limits{}); err == nil {
		t.Fatal("a lying size was accepted")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(bundletest.Valid(bundletest.Manifest("acme", "tools", "1.2.3"), []byte("x"), map[string][]byte{"a/b.py": nil}))
	f.Add(bundletest.Zip(bundletest.Entry{Name: "../x", Data: []byte("x")}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Read(bytes.NewReader(data), int64(len(data)), bundle.Limits{MaxTotal: 1 << 20, MaxFile: 1 << 20})
		if err == nil && (b == nil || b.Manifest.ID == "") {
			t.Fatal("no error and no manifest id")
		}
	})
}
