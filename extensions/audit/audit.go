// Package audit checks Superset extension bundles before deploy: each
// bundle's structure and manifest (extensions/bundle), the packages in
// and beside it against offline OSV advisories (extensions/osv), and the
// operator's version policy (extensions/policy). Findings come out as
// text, JSON or SARIF.
package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/bundle"
	"github.com/superset-gateway/superset-gateway/extensions/osv"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
)

// Severity orders findings; --fail-on compares against it.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Moderate
	High
	Critical
)

var severityNames = []string{"info", "low", "moderate", "high", "critical"}

func (s Severity) String() string { return severityNames[s] }

// ParseSeverity reads a severity name (case-insensitive; "medium" is
// "moderate").
func ParseSeverity(s string) (Severity, error) {
	s = strings.ToLower(s)
	if s == "medium" {
		s = "moderate"
	}
	for i, n := range severityNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("audit: unknown severity %q", s)
}

// Finding is one problem with one bundle.
type Finding struct {
	Rule      string   `json:"rule"`
	Severity  Severity `json:"-"`
	Level     string   `json:"severity"`
	Bundle    string   `json:"bundle"`
	Extension string   `json:"extension,omitempty"` // id@version
	Package   *Package `json:"package,omitempty"`
	Advisory  string   `json:"advisory,omitempty"`
	Message   string   `json:"message"`
}

// Rules (the SARIF rule ids).
const (
	RuleUnreadable   = "bundle-unreadable"
	RuleStructure    = "bundle-structure"
	RuleAdvisory     = "advisory"
	RuleExtAdvisory  = "extension-advisory"
	RulePolicy       = "policy"
	RuleUnevaluable  = "advisory-unevaluable"
	RuleUnidentified = "package-unidentified"
	RuleNoAdvisories = "advisories-unavailable"
)

// Options configure one audit run.
type Options struct {
	OSV     *osv.DB // nil: advisories not checked (a finding says so)
	Policy  policy.Rules
	Limits  bundle.Limits
	Now     time.Time
	MaxData time.Duration // advisory data older than this is stale (0: no check)
}

// Report is one run's result.
type Report struct {
	Bundles  []BundleReport `json:"bundles"`
	Findings []Finding      `json:"findings"`
}

// BundleReport is what was found about one bundle.
type BundleReport struct {
	Path      string    `json:"path"`
	ID        string    `json:"id,omitempty"`
	Publisher string    `json:"publisher,omitempty"`
	Name      string    `json:"name,omitempty"`
	Version   string    `json:"version,omitempty"`
	Packages  []Package `json:"packages"`
}

// Max is the highest severity of the report's findings, and whether
// there is any.
func (r *Report) Max() (Severity, bool) {
	var m Severity
	for _, f := range r.Findings {
		m = max(m, f.Severity)
	}
	return m, len(r.Findings) > 0
}

// Expand turns PATH arguments into bundle files as Superset would load
// them: a directory means its *.supx files (not recursive, Superset's
// glob), a file is itself.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.supx"))
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

// Run audits every bundle file.
func Run(files []string, o Options) *Report {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	r := &Report{Bundles: []BundleReport{}, Findings: []Finding{}}
	if o.OSV == nil {
		r.add(Finding{Rule: RuleNoAdvisories, Severity: High, Message: "no advisory data given (--osv): packages were not checked"})
	} else if o.MaxData > 0 && o.Now.Sub(o.OSV.Newest) > o.MaxData {
		r.add(Finding{Rule: RuleNoAdvisories, Severity: High, Message: fmt.Sprintf("advisory data is stale: newest record modified %s", o.OSV.Newest.UTC().Format(time.RFC3339))})
	}
	ids := map[string]string{}
	for _, f := range files {
		br := r.one(f, o)
		if br.ID != "" {
			if prev, ok := ids[br.ID]; ok {
				r.add(Finding{Rule: RuleStructure, Severity: Moderate, Bundle: f, Extension: br.ID, Message: fmt.Sprintf("id %s is also used by %s: Superset loads only one of them", br.ID, prev)})
			}
			ids[br.ID] = f
		}
		r.Bundles = append(r.Bundles, br)
	}
	return r
}

func (r *Report) add(f Finding) {
	f.Level = f.Severity.String()
	r.Findings = append(r.Findings, f)
}

var problemSeverity = map[string]Severity{
	bundle.ProblemUnexpectedEntry: High,
	bundle.ProblemUnsafePath:      Critical,
	bundle.ProblemDuplicateEntry:  High,
	bundle.ProblemSymlink:         High,
	bundle.ProblemBadName:         Moderate,
	bundle.ProblemBadVersion:      Moderate,
	bundle.ProblemIDMismatch:      High,
	bundle.ProblemNoRemoteEntry:   Low,
	bundle.ProblemEncrypted:       High,
}

func (r *Report) one(path string, o Options) BundleReport {
	br := BundleReport{Path: path, Packages: []Package{}}
	b, err := bundle.Open(path, o.Limits)
	if err != nil {
		sev := High
		if errors.Is(err, bundle.ErrTooLarge) || errors.Is(err, bundle.ErrNotRegular) {
			sev = Critical
		}
		r.add(Finding{Rule: RuleUnreadable, Severity: sev, Bundle: path, Message: err.Error()})
		return br
	}
	m := b.Manifest
	ext := m.ID + "@" + m.EffectiveVersion()
	br.ID, br.Publisher, br.Name, br.Version = m.ID, m.Publisher, m.Name, m.EffectiveVersion()
	for _, p := range b.Problems {
		msg := p.Detail
		if p.Entry != "" {
			msg = p.Entry + ": " + msg
		}
		r.add(Finding{Rule: RuleStructure + "/" + p.Kind, Severity: problemSeverity[p.Kind], Bundle: path, Extension: ext, Message: msg})
	}
	for _, v := range o.Policy.Decide(policy.Subject{ID: m.ID, Version: m.EffectiveVersion(), Built: b.Built}, o.Now) {
		sev := High
		if v.Kind == policy.TooOld {
			sev = Moderate
		}
		r.add(Finding{Rule: RulePolicy + "/" + v.Kind, Severity: sev, Bundle: path, Extension: ext, Message: v.Detail})
	}
	br.Packages = r.packages(path, b, ext)
	if o.OSV == nil {
		return br
	}
	r.advisories(o.OSV, path, ext, Package{Ecosystem: osv.Extension, Name: m.ID, Version: m.EffectiveVersion(), Source: "manifest.json"}, RuleExtAdvisory)
	for i := range br.Packages {
		r.advisories(o.OSV, path, ext, br.Packages[i], RuleAdvisory)
	}
	return br
}

func (r *Report) advisories(db *osv.DB, path, ext string, p Package, rule string) {
	recs, errs := db.Query(p.Ecosystem, p.Name, p.Version)
	for _, rec := range recs {
		pc := p
		r.add(Finding{Rule: rule, Severity: recordSeverity(rec), Bundle: path, Extension: ext, Package: &pc, Advisory: rec.ID,
			Message: fmt.Sprintf("%s %s@%s (%s) is affected by %s: %s", p.Ecosystem, p.Name, p.Version, p.Source, rec.ID, rec.Summary)})
	}
	for _, err := range errs {
		pc := p
		r.add(Finding{Rule: RuleUnevaluable, Severity: Moderate, Bundle: path, Extension: ext, Package: &pc, Message: err.Error()})
	}
}

// recordSeverity maps the GitHub advisory word; a record without one
// counts as high: an advisory nobody graded is not harmless.
func recordSeverity(rec *osv.Record) Severity {
	if s, err := ParseSeverity(rec.SeverityWord()); err == nil {
		return s
	}
	return High
}

// packages: sidecars first (<bundle>.cdx.json, <base>.package-lock.json,
// <base>.requirements.txt); the built JS only when there is no npm
// sidecar.
func (r *Report) packages(path string, b *bundle.Bundle, ext string) []Package {
	base := strings.TrimSuffix(path, filepath.Ext(path))
	var out []Package
	npmSidecar := false
	for _, sc := range []string{path + ".cdx.json", base + ".cdx.json"} {
		data, err := readSidecar(sc)
		if err != nil {
			continue
		}
		ps, err := fromCycloneDX(data, filepath.Base(sc))
		if err != nil {
			r.add(Finding{Rule: RuleUnidentified, Severity: Moderate, Bundle: path, Extension: ext, Message: "SBOM unreadable: " + err.Error()})
			continue
		}
		for _, p := range ps {
			npmSidecar = npmSidecar || p.Ecosystem == osv.NPM
		}
		out = append(out, ps...)
		break
	}
	if data, err := readSidecar(base + ".package-lock.json"); err == nil {
		ps, err := fromPackageLock(data, filepath.Base(base)+".package-lock.json")
		if err != nil {
			r.add(Finding{Rule: RuleUnidentified, Severity: Moderate, Bundle: path, Extension: ext, Message: "lockfile unreadable: " + err.Error()})
		} else {
			npmSidecar = true
			out = append(out, ps...)
		}
	}
	if data, err := readSidecar(base + ".requirements.txt"); err == nil {
		ps, unpinned := fromRequirements(data, filepath.Base(base)+".requirements.txt")
		out = append(out, ps...)
		for _, u := range unpinned {
			r.add(Finding{Rule: RuleUnidentified, Severity: Low, Bundle: path, Extension: ext, Message: fmt.Sprintf("requirement %q is not pinned (name==version): not checked", u)})
		}
	}
	if !npmSidecar {
		names := make([]string, 0, len(b.Frontend))
		for n := range b.Frontend {
			names = append(names, n)
		}
		sort.Strings(names)
		unv := map[string]bool{}
		have := map[string]bool{}
		for _, n := range names {
			if !strings.HasSuffix(n, ".js") && !strings.HasSuffix(n, ".mjs") && !strings.HasSuffix(n, ".txt") {
				continue
			}
			ps, u := fromJS(b.Frontend[n], "frontend/dist/"+n)
			for _, p := range ps {
				have[p.Name] = true
			}
			out = append(out, ps...)
			for _, x := range u {
				unv[x] = true
			}
		}
		var missing []string
		for n := range unv {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			r.add(Finding{Rule: RuleUnidentified, Severity: Low, Bundle: path, Extension: ext, Message: fmt.Sprintf("npm packages seen in the built JS without a version (ship a <bundle>.cdx.json or package-lock.json to check them): %s", strings.Join(missing, ", "))})
		}
	}
	return out
}

func readSidecar(p string) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > 64<<20 {
		return nil, fmt.Errorf("audit: sidecar %s not a regular file under 64 MiB", p)
	}
	return os.ReadFile(p)
}
