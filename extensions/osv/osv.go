// Package osv loads OSV advisory records offline (a directory of OSV
// JSON files, or an osv.dev per-ecosystem all.zip export) and decides
// whether a package version is affected, following the OSV schema's
// evaluation rules with github.com/google/osv-scalibr/semantic for
// version order.
package osv

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/osv-scalibr/semantic"
)

// Sentinel errors.
var (
	ErrSource  = errors.New("osv: advisory source unreadable")
	ErrRecord  = errors.New("osv: record invalid")
	ErrVersion = errors.New("osv: version does not parse")
	ErrRange   = errors.New("osv: range not evaluable")
)

// Ecosystem names as OSV spells them. Extension is this project's
// operator-written feed for Superset extensions (id@version); its
// versions are Superset's strict x.y.z and are ordered as SemVer.
const (
	NPM       = "npm"
	PyPI      = "PyPI"
	Extension = "Superset-Extension"
)

// Record is the part of an OSV record the evaluation needs.
type Record struct {
	ID        string     `json:"id"`
	Modified  time.Time  `json:"modified"`
	Withdrawn *time.Time `json:"withdrawn"`
	Aliases   []string   `json:"aliases"`
	Summary   string     `json:"summary"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	Affected         []Affected `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"` // GitHub advisories: LOW … CRITICAL
	} `json:"database_specific"`
}

// Affected is one affected package of a record.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges   []Range  `json:"ranges"`
	Versions []string `json:"versions"`
}

// Range is an OSV range: a type and its events.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Limits bound what a source may hold.
type Limits struct {
	MaxRecord  int64 // one record's bytes
	MaxRecords int
}

func (l Limits) withDefaults() Limits {
	if l.MaxRecord <= 0 {
		l.MaxRecord = 4 << 20
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = 1 << 20
	}
	return l
}

// DB is an immutable set of records indexed by ecosystem and package.
type DB struct {
	byPkg map[string][]*Record
	// Newest is the newest `modified` of any record: how fresh the data is.
	Newest time.Time
	Count  int
}

func key(ecosystem, name string) string {
	eco, _, _ := strings.Cut(ecosystem, ":")
	if eco == PyPI {
		name = normalisePyPI(name)
	}
	return eco + "\x00" + name
}

// normalisePyPI is PEP 503's name normalisation.
func normalisePyPI(n string) string {
	n = strings.ToLower(n)
	var b strings.Builder
	dash := false
	for _, r := range n {
		if r == '-' || r == '_' || r == '.' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		dash = false
		b.WriteRune(r)
	}
	return b.String()
}

// Load reads every source (a directory of *.json records, a .zip export,
// or one .json record) into one DB. A truncated or unreadable source is
// an error wrapping ErrSource: the caller decides fail open or closed.
func Load(sources []string, lim Limits) (*DB, error) {
	lim = lim.withDefaults()
	db := &DB{byPkg: map[string][]*Record{}}
	for _, src := range sources {
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSource, err)
		}
		switch {
		case fi.IsDir():
			err = loadDir(db, src, lim)
		case strings.HasSuffix(strings.ToLower(src), ".zip"):
			err = loadZip(db, src, fi.Size(), lim)
		default:
			err = loadFile(db, src, lim)
		}
		if err != nil {
			return nil, err
		}
	}
	return db, nil
}

func loadDir(db *DB, dir string, lim Limits) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSource, err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") {
			if err := loadFile(db, filepath.Join(dir, e.Name()), lim); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadFile(db *DB, p string, lim Limits) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSource, err)
	}
	defer f.Close()
	return db.add(f, p, lim)
}

func loadZip(db *DB, p string, size int64, lim Limits) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSource, err)
	}
	defer f.Close()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSource, p, err)
	}
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%w: %s: %s: %v", ErrSource, p, zf.Name, err)
		}
		err = db.add(rc, p+":"+zf.Name, lim)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) add(r io.Reader, where string, lim Limits) error {
	if db.Count >= lim.MaxRecords {
		return fmt.Errorf("%w: more than %d records", ErrSource, lim.MaxRecords)
	}
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxRecord+1))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSource, where, err)
	}
	if int64(len(data)) > lim.MaxRecord {
		return fmt.Errorf("%w: %s: record over %d bytes", ErrSource, where, lim.MaxRecord)
	}
	rec, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if rec.Withdrawn != nil {
		return nil
	}
	db.Count++
	if rec.Modified.After(db.Newest) {
		db.Newest = rec.Modified
	}
	seen := map[string]bool{}
	for _, a := range rec.Affected {
		k := key(a.Package.Ecosystem, a.Package.Name)
		if !seen[k] {
			db.byPkg[k] = append(db.byPkg[k], rec)
			seen[k] = true
		}
	}
	return nil
}

// Parse decodes one OSV record.
func Parse(data []byte) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecord, err)
	}
	if rec.ID == "" {
		return nil, fmt.Errorf("%w: no id", ErrRecord)
	}
	return &rec, nil
}

// Match is one record that affects the queried version.
type Match struct {
	Record *Record
}

// Query returns the records affecting ecosystem/name at version. errs
// lists ranges it could not evaluate (an unknown range type, a version
// that does not parse): the caller reports them, it never treats them
// as "not affected" silently.
func (db *DB) Query(ecosystem, name, version string) (matches []*Record, errs []error) {
	for _, rec := range db.byPkg[key(ecosystem, name)] {
		hit := false
		for _, a := range rec.Affected {
			if key(a.Package.Ecosystem, a.Package.Name) != key(ecosystem, name) {
				continue
			}
			ok, err := a.Affects(ecosystem, version)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", rec.ID, err))
			}
			if ok {
				hit = true
			}
		}
		if hit {
			matches = append(matches, rec)
		}
	}
	return matches, errs
}

// Affects reports whether version of the package is affected: listed in
// versions, or inside an ECOSYSTEM or SEMVER range. A GIT range (commit
// hashes) or an unknown type cannot be evaluated for a released version
// and yields ErrRange alongside whatever the other ranges decided.
func (a Affected) Affects(ecosystem, version string) (bool, error) {
	for _, v := range a.Versions {
		if v == version {
			return true, nil
		}
	}
	var firstErr error
	for _, r := range a.Ranges {
		var eco string
		switch r.Type {
		case "ECOSYSTEM":
			eco = ecosystem
		case "SEMVER":
			eco = NPM // SemVer 2.0 grammar and order
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: range type %q", ErrRange, r.Type)
			}
			continue
		}
		ok, err := inRange(r.Events, orderingFor(eco), version)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if ok {
			return true, firstErr
		}
	}
	return false, firstErr
}

func orderingFor(ecosystem string) string {
	eco, _, _ := strings.Cut(ecosystem, ":")
	if eco == Extension {
		return NPM
	}
	return eco
}

type event struct {
	kind string // introduced, fixed, last_affected, limit
	raw  string
	v    semantic.Version // nil for introduced "0"
}

// inRange is the OSV schema's evaluation: sort events by version, walk
// them keeping "affected" state; limit caps the range.
func inRange(events []Event, eco, version string) (bool, error) {
	v, err := ParseVersion(version, eco)
	if err != nil {
		return false, err
	}
	evs := make([]event, 0, len(events))
	for _, e := range events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: "introduced", raw: e.Introduced}
		case e.Fixed != "":
			ev = event{kind: "fixed", raw: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: "last_affected", raw: e.LastAffected}
		case e.Limit != "":
			ev = event{kind: "limit", raw: e.Limit}
		default:
			return false, fmt.Errorf("%w: empty event", ErrRange)
		}
		if !(ev.kind == "introduced" && ev.raw == "0") && !(ev.kind == "limit" && ev.raw == "*") {
			pv, err := ParseVersion(ev.raw, eco)
			if err != nil {
				return false, fmt.Errorf("event: %w", err)
			}
			ev.v = pv
		}
		evs = append(evs, ev)
	}
	var cmpErr error
	cmp := func(a, b semantic.Version) int {
		c, err := a.Compare(b)
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		return c
	}
	sort.SliceStable(evs, func(i, j int) bool {
		switch {
		case evs[i].v == nil && evs[j].v == nil:
			return false
		case evs[i].v == nil:
			return evs[i].kind == "introduced"
		case evs[j].v == nil:
			return evs[j].kind != "introduced"
		}
		return cmp(evs[i].v, evs[j].v) < 0
	})
	affected := false
	for _, e := range evs {
		var c int
		if e.v != nil {
			c = cmp(v, e.v)
		}
		switch e.kind {
		case "introduced":
			if e.v == nil || c >= 0 {
				affected = true
			}
		case "fixed":
			if c >= 0 {
				affected = false
			}
		case "last_affected":
			if c > 0 {
				affected = false
			}
		case "limit":
			if e.v != nil && c >= 0 {
				affected = false
			}
		}
	}
	if cmpErr != nil {
		return false, fmt.Errorf("%w: %v", ErrVersion, cmpErr)
	}
	return affected, nil
}

// SeverityWord is a record's severity word (LOW, MODERATE, HIGH, CRITICAL),
// from the GitHub advisory database's field; "" when the record has none.
func (r *Record) SeverityWord() string {
	return strings.ToUpper(r.DatabaseSpecific.Severity)
}
