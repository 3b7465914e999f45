// Package bundle reads a Superset extension bundle (.supx) the way
// Superset 6.1.0 would load it, without trusting it: sizes, ratios and
// entry counts are bounded before anything is decompressed, and every
// entry Superset would refuse or mis-load is reported as a Problem.
package bundle

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors: the bundle cannot be audited at all.
var (
	ErrNotZip      = errors.New("bundle: not a zip archive")
	ErrTooLarge    = errors.New("bundle: over the size limits")
	ErrManifest    = errors.New("bundle: manifest.json missing or invalid")
	ErrNotRegular  = errors.New("bundle: not a regular file")
	ErrTooManyEnts = errors.New("bundle: too many entries")
)

// Limits bound what Read decompresses. The zero value of a field means
// its default (DefaultLimits).
type Limits struct {
	MaxArchive  int64 // compressed bundle size
	MaxEntries  int
	MaxFile     int64 // one entry, decompressed
	MaxTotal    int64 // all entries, decompressed
	MaxRatio    int64 // decompressed / compressed, per entry and overall
	MaxManifest int64
}

// DefaultLimits are generous for real bundles (a few MiB of JS) and stop
// zip bombs long before memory matters.
func DefaultLimits() Limits {
	return Limits{MaxArchive: 64 << 20, MaxEntries: 4096, MaxFile: 32 << 20, MaxTotal: 128 << 20, MaxRatio: 100, MaxManifest: 256 << 10}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxArchive <= 0 {
		l.MaxArchive = d.MaxArchive
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxFile <= 0 {
		l.MaxFile = d.MaxFile
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = d.MaxTotal
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.MaxManifest <= 0 {
		l.MaxManifest = d.MaxManifest
	}
	return l
}

// Manifest is manifest.json as superset_core.extensions.types.Manifest
// declares it (6.1.0).
type Manifest struct {
	ID           string    `json:"id"`
	Publisher    string    `json:"publisher"`
	Name         string    `json:"name"`
	DisplayName  string    `json:"displayName"`
	Version      string    `json:"version"`
	License      string    `json:"license"`
	Description  string    `json:"description"`
	Dependencies []string  `json:"dependencies"`
	Permissions  []string  `json:"permissions"`
	Frontend     *Frontend `json:"frontend"`
	Backend      *Backend  `json:"backend"`
}

// Frontend is the manifest's frontend block.
type Frontend struct {
	RemoteEntry          string `json:"remoteEntry"`
	ModuleFederationName string `json:"moduleFederationName"`
}

// Backend is the manifest's backend block.
type Backend struct {
	Entrypoint string `json:"entrypoint"`
}

// Problem kinds: each is something Superset would refuse, mis-load, or
// something a reviewer must see.
const (
	ProblemUnexpectedEntry = "unexpected_entry" // Superset refuses the whole bundle
	ProblemUnsafePath      = "unsafe_path"      // absolute, .., backslash, NUL
	ProblemDuplicateEntry  = "duplicate_entry"  // zip readers disagree on which wins
	ProblemSymlink         = "symlink"
	ProblemBadName         = "bad_name"    // publisher or name outside Superset's pattern
	ProblemBadVersion      = "bad_version" // not strict x.y.z
	ProblemIDMismatch      = "id_mismatch" // id != publisher.name: routes and blocklists disagree
	ProblemNoRemoteEntry   = "missing_remote_entry"
	ProblemEncrypted       = "encrypted_entry"
)

// Problem is one finding about the bundle's structure or manifest.
type Problem struct {
	Kind   string `json:"kind"`
	Entry  string `json:"entry,omitempty"`
	Detail string `json:"detail"`
}

// Bundle is what Read found. Frontend is keyed by the file name under
// frontend/dist/, Backend by the path under backend/src/.
type Bundle struct {
	Manifest Manifest
	Frontend map[string][]byte
	Backend  map[string][]byte
	// Built is the newest entry modification time (the build time).
	Built    time.Time
	Problems []Problem
}

// Superset 6.1.0's patterns (superset_core/extensions/constants.py).
var (
	namePattern    = regexp.MustCompile(`^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$`)
	versionPattern = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	frontendEntry  = regexp.MustCompile(`^frontend/dist/([^/]+)$`)
	backendEntry   = regexp.MustCompile(`^backend/src/(.+)$`)
)

// ValidName reports whether s matches Superset's publisher/name pattern.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Open reads the bundle at p. A symlink or any non-regular file is
// refused: Superset's glob follows symlinks, so a link could swap what
// is loaded without the bundle changing.
func Open(p string, lim Limits) (*Bundle, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s (%s)", ErrNotRegular, p, fi.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	return Read(f, fi.Size(), lim)
}

// Read reads a bundle of size bytes from r. It returns an error wrapping
// one of the sentinels when the bundle cannot be audited (and Superset
// would not load it either, or must not be allowed to), and a Bundle
// with Problems for everything it could read.
func Read(r io.ReaderAt, size int64, lim Limits) (*Bundle, error) {
	lim = lim.withDefaults()
	if size > lim.MaxArchive {
		return nil, fmt.Errorf("%w: archive is %d bytes (limit %d)", ErrTooLarge, size, lim.MaxArchive)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: %v", ErrNotZip, err)
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, fmt.Errorf("%w: %d (limit %d)", ErrTooManyEnts, len(zr.File), lim.MaxEntries)
	}
	// Declared sizes first: nothing is decompressed from a bomb.
	var total, compressed uint64
	for _, f := range zr.File {
		if f.UncompressedSize64 > uint64(lim.MaxFile) {
			return nil, fmt.Errorf("%w: entry %q declares %d bytes (limit %d)", ErrTooLarge, f.Name, f.UncompressedSize64, lim.MaxFile)
		}
		if f.UncompressedSize64 > 1<<20 && f.UncompressedSize64/max(f.CompressedSize64, 1) > uint64(lim.MaxRatio) {
			return nil, fmt.Errorf("%w: entry %q compression ratio above %d", ErrTooLarge, f.Name, lim.MaxRatio)
		}
		total += f.UncompressedSize64
		compressed += f.CompressedSize64
	}
	if total > uint64(lim.MaxTotal) {
		return nil, fmt.Errorf("%w: %d bytes decompressed (limit %d)", ErrTooLarge, total, lim.MaxTotal)
	}
	if total > 1<<20 && total/max(compressed, 1) > uint64(lim.MaxRatio) {
		return nil, fmt.Errorf("%w: compression ratio above %d", ErrTooLarge, lim.MaxRatio)
	}

	b := &Bundle{Frontend: map[string][]byte{}, Backend: map[string][]byte{}}
	seen := map[string]bool{}
	var manifest []byte
	haveManifest := false
	var budget = lim.MaxTotal
	for _, f := range zr.File {
		name := f.Name
		if seen[name] {
			b.problem(ProblemDuplicateEntry, name, "the archive holds this name more than once")
			continue
		}
		seen[name] = true
		if f.Modified.After(b.Built) {
			b.Built = f.Modified
		}
		if f.Mode()&fs.ModeSymlink != 0 {
			b.problem(ProblemSymlink, name, "symbolic link entry")
			continue
		}
		if strings.HasSuffix(name, "/") {
			b.problem(ProblemUnexpectedEntry, name, "directory entry: Superset 6.1.0 refuses the bundle")
			continue
		}
		if !safePath(name) {
			b.problem(ProblemUnsafePath, name, "absolute, parent-relative or otherwise unsafe path")
			continue
		}
		if f.Flags&0x1 != 0 {
			b.problem(ProblemEncrypted, name, "encrypted entry")
			continue
		}
		limit := lim.MaxFile
		if name == "manifest.json" {
			limit = min(limit, lim.MaxManifest)
			if int64(f.UncompressedSize64) > limit {
				return nil, fmt.Errorf("%w: manifest.json is %d bytes (limit %d)", ErrManifest, f.UncompressedSize64, limit)
			}
		}
		data, err := readEntry(f, min(limit, budget))
		if err != nil {
			return nil, err
		}
		budget -= int64(len(data))
		switch m := frontendEntry.FindStringSubmatch(name); {
		case name == "manifest.json":
			manifest, haveManifest = data, true
		case m != nil:
			b.Frontend[m[1]] = data
		default:
			if m := backendEntry.FindStringSubmatch(name); m != nil {
				b.Backend[m[1]] = data
			} else {
				b.problem(ProblemUnexpectedEntry, name, "only manifest.json, frontend/dist/<file> and backend/src/<path> are allowed; Superset 6.1.0 refuses the bundle")
			}
		}
	}
	if !haveManifest {
		return nil, fmt.Errorf("%w: no manifest.json", ErrManifest)
	}
	if err := decodeManifest(manifest, &b.Manifest); err != nil {
		return nil, err
	}
	b.checkManifest()
	return b, nil
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: entry %q: %v", ErrNotZip, f.Name, err)
	}
	defer rc.Close()
	// The declared size may lie: read at most limit+1 bytes.
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %q: %v", ErrNotZip, f.Name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: entry %q decompresses past its limit", ErrTooLarge, f.Name)
	}
	return data, nil
}

func decodeManifest(data []byte, m *Manifest) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(m); err != nil {
		return fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrManifest)
	}
	if m.ID == "" || m.Publisher == "" || m.Name == "" {
		return fmt.Errorf("%w: id, publisher and name are required", ErrManifest)
	}
	return nil
}

func safePath(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
		return false
	}
	if path.Clean(name) != name {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." || part == "." {
			return false
		}
	}
	return true
}

func (b *Bundle) problem(kind, entry, detail string) {
	b.Problems = append(b.Problems, Problem{Kind: kind, Entry: entry, Detail: detail})
}

func (b *Bundle) checkManifest() {
	m := b.Manifest
	if !ValidName(m.Publisher) {
		b.problem(ProblemBadName, "manifest.json", fmt.Sprintf("publisher %q does not match %s", m.Publisher, namePattern))
	}
	if !ValidName(m.Name) {
		b.problem(ProblemBadName, "manifest.json", fmt.Sprintf("name %q does not match %s", m.Name, namePattern))
	}
	if m.Version != "" && !versionPattern.MatchString(m.Version) {
		b.problem(ProblemBadVersion, "manifest.json", fmt.Sprintf("version %q is not strict x.y.z", m.Version))
	}
	if m.ID != m.Publisher+"."+m.Name {
		b.problem(ProblemIDMismatch, "manifest.json", fmt.Sprintf("id %q is not %q: Superset serves /api/v1/extensions/%s/%s by the id %q and mounts its backend under /extensions/%s/%s", m.ID, m.Publisher+"."+m.Name, m.Publisher, m.Name, m.Publisher+"."+m.Name, m.Publisher, m.Name))
	}
	if m.Frontend != nil {
		if _, ok := b.Frontend[m.Frontend.RemoteEntry]; !ok {
			b.problem(ProblemNoRemoteEntry, "manifest.json", fmt.Sprintf("remoteEntry %q is not in frontend/dist/", m.Frontend.RemoteEntry))
		}
	}
}

// EffectiveVersion returns the manifest's version as Superset reports it
// ("0.0.0" when absent, pydantic's default).
func (m Manifest) EffectiveVersion() string {
	if m.Version == "" {
		return "0.0.0"
	}
	return m.Version
}
