// Package enforce applies the extension policy at the proxy: it decides
// on requests for an extension's files and backend routes, filters
// Superset's list of extensions, and optionally pins every served file
// to the bundle the gateway audited. It never writes a refusal itself:
// Check returns a Decision the gateway's refusal writer answers.
//
// What it cannot do: Superset imports every extension's backend code at
// start, in every web and worker process. A failing extension's Python
// still runs inside Superset; the proxy only keeps its frontend out of
// browsers and its HTTP routes unreachable through the gateway. The
// pre-deploy audit is what keeps the backend out.
package enforce

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/superset-gateway/superset-gateway/extensions/audit"
	"github.com/superset-gateway/superset-gateway/extensions/bundle"
	"github.com/superset-gateway/superset-gateway/extensions/osv"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
	gwpolicy "github.com/superset-gateway/superset-gateway/policy"
)

// Observer counts the enforcer's decisions; metrics implements it.
type Observer interface {
	ExtensionDecision(outcome string, reason string)
	ExtensionAdvisories(ok bool, newest time.Time)
}

// Auditor records a decision about an extension (first seen verdicts,
// refusals are audited by the gateway's refusal writer).
type Auditor interface {
	ExtensionVerdict(id, version string, allowed bool, reasons []string)
}

// Options configure New.
type Options struct {
	Rules policy.Rules
	// Sources are OSV sources (see osv.Load); empty means no advisory
	// checks, which is not "unavailable".
	Sources []string
	// FailClosed: with advisory data missing or stale, every extension
	// is refused (true) or only the policy applies (false).
	FailClosed bool
	// MaxDataAge: advisory data whose newest record is older is stale
	// (0: never stale).
	MaxDataAge time.Duration
	// BundlesDir, when set, is the directory Superset loads .supx files
	// from (EXTENSIONS_PATH), mounted read-only: its bundles are audited
	// at every refresh and each served file must match their SHA-256.
	BundlesDir string
	Limits     bundle.Limits
	Observer   Observer
	Auditor    Auditor
	Now        func() time.Time
	// MaxListBytes bounds the list answer read for filtering (0: 4 MiB).
	MaxListBytes int64
}

// Verdict is what the gateway decided about one extension id.
type Verdict struct {
	ID        string    `json:"id"`
	Publisher string    `json:"publisher,omitempty"`
	Name      string    `json:"name,omitempty"`
	Version   string    `json:"version"`
	Allowed   bool      `json:"allowed"`
	Reasons   []string  `json:"reasons,omitempty"`
	Source    string    `json:"source"` // "list" or "bundle"
	Seen      time.Time `json:"seen"`
	// files: name → sha256 of the audited bundle (BundlesDir only).
	files map[string][32]byte
}

// Status is what /-/admin/ and /-/readyz show.
type Status struct {
	AdvisoriesOK     bool      `json:"advisories_ok"`
	AdvisoryRecords  int       `json:"advisory_records"`
	AdvisoriesNewest time.Time `json:"advisories_newest,omitzero"`
	AdvisoryError    string    `json:"advisory_error,omitempty"`
	FailClosed       bool      `json:"fail_closed"`
	Verdicts         []Verdict `json:"verdicts"`
}

type advisories struct {
	db  *osv.DB
	err error
}

// Enforcer is safe for concurrent use.
type Enforcer struct {
	o   Options
	adv atomic.Pointer[advisories]
	mu  sync.RWMutex
	// byID: verdicts by manifest id (list answers and audited bundles).
	byID map[string]Verdict
	// audited: verdicts from BundlesDir, kept apart so a list answer
	// cannot overwrite the pinned hashes.
	audited map[string]Verdict
}

// New builds the enforcer and runs the first Refresh. An error is a bad
// policy; unavailable advisory data is a state (Ready), not an error.
func New(o Options) (*Enforcer, error) {
	if err := o.Rules.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxListBytes <= 0 {
		o.MaxListBytes = 4 << 20
	}
	e := &Enforcer{o: o, byID: map[string]Verdict{}, audited: map[string]Verdict{}}
	e.Refresh()
	return e, nil
}

// ErrAdvisoriesStale is the advisory data's newest record being older
// than MaxDataAge.
var ErrAdvisoriesStale = errors.New("extensions: advisory data is stale")

// Refresh reloads the advisory sources and re-audits BundlesDir. A
// failed load keeps nothing of the old data: stale or missing data is
// the fail-open/closed case, never silently the previous answer.
func (e *Enforcer) Refresh() {
	a := &advisories{}
	if len(e.o.Sources) > 0 {
		a.db, a.err = osv.Load(e.o.Sources, osv.Limits{})
		if a.err == nil && e.o.MaxDataAge > 0 && e.o.Now().Sub(a.db.Newest) > e.o.MaxDataAge {
			a.err = fmt.Errorf("%w: newest record %s", ErrAdvisoriesStale, a.db.Newest.UTC().Format(time.RFC3339))
		}
	}
	e.adv.Store(a)
	if e.o.Observer != nil {
		var newest time.Time
		if a.db != nil {
			newest = a.db.Newest
		}
		e.o.Observer.ExtensionAdvisories(a.err == nil, newest)
	}
	if e.o.BundlesDir != "" {
		e.auditDir()
	}
	// Verdicts from list answers are re-decided on the next answer.
	e.mu.Lock()
	e.byID = map[string]Verdict{}
	e.mu.Unlock()
}

// Ready reports the advisory data's state: nil when usable or when no
// source is configured.
func (e *Enforcer) Ready() error {
	return e.adv.Load().err
}

func (e *Enforcer) auditDir() {
	// Glob fails only on a malformed pattern; the directory is config.
	files, _ := globBundles(e.o.BundlesDir)
	audited := map[string]Verdict{}
	for _, f := range files {
		b, berr := bundle.Open(f, e.o.Limits)
		if berr != nil {
			continue // unreadable: Superset's copy is unknown, so unverified
		}
		m := b.Manifest
		v := e.decide(m.ID, m.EffectiveVersion(), b.Built, "bundle")
		v.Publisher, v.Name = m.Publisher, m.Name
		for _, p := range b.Problems {
			v.Allowed = false
			v.Reasons = append(v.Reasons, "bundle:"+p.Kind)
		}
		e.packageAdvisories(f, &v)
		v.files = map[string][32]byte{}
		for n, d := range b.Frontend {
			v.files[n] = sha256.Sum256(d)
		}
		if prev, dup := audited[m.ID]; dup {
			prev.Allowed = false
			prev.Reasons = append(prev.Reasons, "bundle:duplicate_id")
			v = prev
		}
		audited[m.ID] = v
	}
	e.mu.Lock()
	e.audited = audited
	e.mu.Unlock()
}

// packageAdvisories checks the npm and PyPI packages found in and beside
// the bundle at path (extensions/audit's identification) against the
// advisory data: an affected package fails the extension.
func (e *Enforcer) packageAdvisories(path string, v *Verdict) {
	a := e.adv.Load()
	if a.db == nil {
		return
	}
	rep := audit.Run([]string{path}, audit.Options{OSV: a.db, Limits: e.o.Limits, Now: e.o.Now()})
	for _, f := range rep.Findings {
		switch {
		case f.Rule == audit.RuleAdvisory:
			v.Allowed = false
			v.Reasons = append(v.Reasons, "advisory:"+f.Advisory)
		case f.Rule == audit.RuleUnevaluable && f.Package != nil && f.Package.Ecosystem != osv.Extension && e.o.FailClosed:
			v.Allowed = false
			v.Reasons = append(v.Reasons, "advisory_unevaluable")
		}
	}
}

// decide applies the policy and the extension advisory feed.
func (e *Enforcer) decide(id, version string, built time.Time, source string) Verdict {
	v := Verdict{ID: id, Version: version, Source: source, Seen: e.o.Now(), Allowed: true}
	for _, x := range e.o.Rules.Decide(policy.Subject{ID: id, Version: version, Built: built}, e.o.Now()) {
		v.Allowed = false
		v.Reasons = append(v.Reasons, "policy:"+x.Kind)
	}
	a := e.adv.Load()
	switch {
	case a.err != nil && e.o.FailClosed:
		v.Allowed = false
		v.Reasons = append(v.Reasons, "advisories_unavailable")
	case a.db != nil:
		recs, errs := a.db.Query(osv.Extension, id, version)
		for _, r := range recs {
			v.Allowed = false
			v.Reasons = append(v.Reasons, "advisory:"+r.ID)
		}
		if len(errs) > 0 && e.o.FailClosed {
			v.Allowed = false
			v.Reasons = append(v.Reasons, "advisory_unevaluable")
		}
	}
	return v
}

// route is what a path addresses.
type route struct {
	kind      int // routeNone, routeList, routeAsset, routeBackend
	publisher string
	name      string
	file      string
}

const (
	routeNone = iota
	routeList
	routeAsset
	routeBackend
)

// parse reads the gateway's normalised path the way Flask routes it in
// Superset 6.1.0: /api/v1/extensions/ (list), /api/v1/extensions/_info,
// /api/v1/extensions/<p>/<n>[/<file>] (looked up by the id "p.n"), and
// the backend APIs under /extensions/<p>/<n>/…; /extensions/list/ is
// Superset's own page.
func parse(path string) route {
	if rest, ok := strings.CutPrefix(path, "/api/v1/extensions/"); ok {
		if rest == "" {
			return route{kind: routeList}
		}
		parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
		switch {
		case len(parts) == 1:
			return route{} // _info and unknown single segments: Superset's own
		case len(parts) == 2:
			return route{kind: routeAsset, publisher: parts[0], name: parts[1]}
		default:
			return route{kind: routeAsset, publisher: parts[0], name: parts[1], file: strings.Join(parts[2:], "/")}
		}
	}
	if rest, ok := strings.CutPrefix(path, "/extensions/"); ok {
		parts := strings.SplitN(rest, "/", 3)
		if len(parts) >= 2 && parts[1] != "" && !(parts[0] == "list" && len(parts) == 2 && parts[1] == "") {
			return route{kind: routeBackend, publisher: parts[0], name: parts[1]}
		}
	}
	return route{}
}

var allow = gwpolicy.Decision{Allow: true}

// Check is the request-path decision for r (stage 5): an extension's
// files or backend route whose extension failed the policy, or that the
// gateway has not vetted, is refused.
func (e *Enforcer) Check(r *http.Request) gwpolicy.Decision {
	rt := parse(r.URL.Path)
	if rt.kind == routeNone || rt.kind == routeList {
		return allow
	}
	if e.adv.Load().err != nil && e.o.FailClosed {
		return e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionAdvisoriesUnavailable})
	}
	id := rt.publisher + "." + rt.name
	e.mu.RLock()
	v, known := e.audited[id]
	lv, listed := e.byID[id]
	// The backend is mounted by (publisher, name), not by id: find the
	// extension that declares them.
	if rt.kind == routeBackend && !known && !listed {
		for _, x := range e.audited {
			if x.Publisher == rt.publisher && x.Name == rt.name {
				v, known = x, true
			}
		}
		for _, x := range e.byID {
			if x.Publisher == rt.publisher && x.Name == rt.name {
				lv, listed = x, true
			}
		}
	}
	shared := false // another, failing extension mounts the same backend
	if rt.kind == routeBackend {
		for _, x := range e.byID {
			if x.Publisher == rt.publisher && x.Name == rt.name && !x.Allowed {
				shared = true
			}
		}
	}
	e.mu.RUnlock()
	switch {
	case known && !v.Allowed, listed && !lv.Allowed, shared:
		return e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionRefused})
	case known && listed && lv.Version != v.Version:
		// Superset serves a version the gateway did not audit.
		return e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionUnverified})
	case !known && !listed:
		return e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionUnverified})
	}
	return e.count(allow)
}

func (e *Enforcer) count(d gwpolicy.Decision) gwpolicy.Decision {
	if e.o.Observer != nil {
		outcome := "allowed"
		if !d.Allow {
			outcome = "refused"
		}
		e.o.Observer.ExtensionDecision(outcome, string(d.Reason))
	}
	return d
}

// ModifyResponse is the response hook: it filters the list answer and,
// with BundlesDir, pins served files to the audited bundle's hashes (a
// mismatching file's answer is replaced by an empty 502, never passed
// on).
func (e *Enforcer) ModifyResponse(resp *http.Response) error {
	if resp.Request == nil || resp.Request.Method != http.MethodGet {
		return nil
	}
	rt := parse(resp.Request.URL.Path)
	if resp.StatusCode == http.StatusPartialContent && rt.kind == routeAsset && e.o.BundlesDir != "" {
		// A byte range cannot be checked against the pinned hash.
		return e.pin(resp, route{})
	}
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	switch {
	case rt.kind == routeList:
		return e.filterList(resp)
	case rt.kind == routeAsset && rt.file != "" && e.o.BundlesDir != "":
		return e.pin(resp, rt)
	}
	return nil
}

type listEntry struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Version     string `json:"version"`
	RemoteEntry string `json:"remoteEntry"`
}

// filterList removes every extension that fails from the list and fixes
// count. An answer it cannot read is replaced by an empty list: an
// unvetted extension must not reach browsers through a parse failure.
func (e *Enforcer) filterList(resp *http.Response) error {
	body, err := readBody(resp, e.o.MaxListBytes)
	var doc struct {
		Result []json.RawMessage `json:"result"`
	}
	var other map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(body, &doc)
	}
	if err == nil {
		err = json.Unmarshal(body, &other)
	}
	kept := []json.RawMessage{}
	if err == nil {
		for _, raw := range doc.Result {
			var le listEntry
			if json.Unmarshal(raw, &le) != nil {
				continue
			}
			if e.listed(le).Allowed {
				kept = append(kept, raw)
			}
		}
	} else {
		other = map[string]json.RawMessage{}
		e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionUnverified})
	}
	other["result"], _ = json.Marshal(kept)
	other["count"] = json.RawMessage(strconv.Itoa(len(kept)))
	out, _ := json.Marshal(other)
	setBody(resp, out)
	return nil
}

// listed decides on one list entry and remembers it for Check.
func (e *Enforcer) listed(le listEntry) Verdict {
	v := e.decide(le.ID, le.Version, time.Time{}, "list")
	// Superset builds remoteEntry from the manifest's publisher and name
	// but serves files by the id "publisher.name": an id that is not
	// that would load another extension's files, or none.
	if le.RemoteEntry != "" {
		if rest, ok := strings.CutPrefix(le.RemoteEntry, "/api/v1/extensions/"); ok {
			parts := strings.Split(rest, "/")
			if len(parts) == 3 {
				v.Publisher, v.Name = parts[0], parts[1]
			}
		}
		if v.Publisher+"."+v.Name != le.ID {
			v.Allowed = false
			v.Reasons = append(v.Reasons, "id_mismatch")
		}
	} else if p, n, ok := strings.Cut(le.ID, "."); ok {
		v.Publisher, v.Name = p, n
	}
	e.mu.Lock()
	a, audited := e.audited[le.ID]
	if e.o.BundlesDir != "" && (!audited || a.Version != le.Version) {
		v.Allowed = false
		v.Reasons = append(v.Reasons, "not_audited")
	} else if audited && !a.Allowed {
		v.Allowed = false
		v.Reasons = append(v.Reasons, a.Reasons...)
	}
	prev, seen := e.byID[le.ID]
	e.byID[le.ID] = v
	e.mu.Unlock()
	if (!seen || prev.Allowed != v.Allowed || prev.Version != v.Version) && e.o.Auditor != nil {
		e.o.Auditor.ExtensionVerdict(le.ID, le.Version, v.Allowed, v.Reasons)
	}
	if !v.Allowed {
		e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionRefused})
	}
	return v
}

// pin compares a served file with the audited bundle's copy.
func (e *Enforcer) pin(resp *http.Response, rt route) error {
	e.mu.RLock()
	v, ok := e.audited[rt.publisher+"."+rt.name]
	e.mu.RUnlock()
	want, has := v.files[rt.file]
	body, err := readBody(resp, 64<<20)
	if ok && has && err == nil && sha256.Sum256(body) == want {
		setBody(resp, body)
		return nil
	}
	e.count(gwpolicy.Decision{Reason: gwpolicy.ReasonExtensionFileMismatch})
	// Not the audited bytes: the browser gets nothing it could run.
	resp.StatusCode = http.StatusBadGateway
	resp.Status = "502 Bad Gateway"
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Cache-Control", "no-store")
	setBody(resp, []byte(`{"msg": "Extension file does not match the audited bundle"}`+"\n"))
	return nil
}

func readBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	switch strings.ToLower(resp.Header.Get("Content-Encoding")) {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		r = zr
	default:
		return nil, fmt.Errorf("extensions: content encoding %q", resp.Header.Get("Content-Encoding"))
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("extensions: answer over the limit")
	}
	return b, nil
}

func setBody(resp *http.Response, b []byte) {
	resp.Header.Del("Content-Encoding")
	resp.Header.Del("ETag")
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.ContentLength = int64(len(b))
	resp.Body = io.NopCloser(bytes.NewReader(b))
}

// Status is a snapshot for the admin page and readiness.
func (e *Enforcer) Status() Status {
	a := e.adv.Load()
	s := Status{AdvisoriesOK: a.err == nil, FailClosed: e.o.FailClosed, Verdicts: []Verdict{}}
	if a.db != nil {
		s.AdvisoryRecords, s.AdvisoriesNewest = a.db.Count, a.db.Newest
	}
	if a.err != nil {
		s.AdvisoryError = a.err.Error()
	}
	e.mu.RLock()
	seen := map[string]bool{}
	for _, v := range e.byID {
		s.Verdicts = append(s.Verdicts, v)
		seen[v.ID] = true
	}
	for _, v := range e.audited {
		if !seen[v.ID] {
			s.Verdicts = append(s.Verdicts, v)
		}
	}
	e.mu.RUnlock()
	sortVerdicts(s.Verdicts)
	return s
}
