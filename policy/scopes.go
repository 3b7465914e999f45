package policy

import (
	"slices"
	"strings"
)

// Access-token scopes (DESIGN.md §2.4). Each names a set of Superset API
// routes; a token may hold several. They are stored in token records and
// used as metric labels, so they must never be renamed.
const (
	ScopeDashboardsRead = "dashboards:read"
	ScopeChartsRead     = "charts:read"
	ScopeChartDataRead  = "chart-data:read"
	ScopeDatasetsRead   = "datasets:read"
	ScopeDatabasesRead  = "databases:read"
	ScopeSQLLabExecute  = "sqllab:execute"
	ScopeMetadataRead   = "metadata:read"
	ScopeAPIRead        = "api:read"
)

// Scopes returns every scope, in the order a page shows them.
func Scopes() []string {
	return []string{ScopeMetadataRead, ScopeDashboardsRead, ScopeChartsRead, ScopeChartDataRead,
		ScopeDatasetsRead, ScopeDatabasesRead, ScopeSQLLabExecute, ScopeAPIRead}
}

// ValidScope reports whether s is one of Scopes.
func ValidScope(s string) bool { return slices.Contains(Scopes(), s) }

// ScopeDescription is a one-line, human description of a scope ("" for an
// unknown one).
func ScopeDescription(s string) string {
	switch s {
	case ScopeMetadataRead:
		return "List and read dashboards, charts, datasets and databases (no data), for metadata-ingestion tools"
	case ScopeDashboardsRead:
		return "Read dashboards"
	case ScopeChartsRead:
		return "Read chart definitions (no data)"
	case ScopeChartDataRead:
		return "Read chart data, including POST /api/v1/chart/data"
	case ScopeDatasetsRead:
		return "Read datasets"
	case ScopeDatabasesRead:
		return "Read database connections, schemas and tables"
	case ScopeSQLLabExecute:
		return "Run SQL Lab queries and read their results"
	case ScopeAPIRead:
		return "Any GET under /api/v1/"
	}
	return ""
}

// MissingScope returns the scope named by a refusal reason of Allow, or ""
// when the reason names none.
func MissingScope(reason Reason) string {
	s, ok := strings.CutPrefix(string(reason), string(ReasonMissingScopePrefix))
	if !ok {
		return ""
	}
	return s
}

// scopeRule grants scope for the methods on paths matching pattern and
// none of except. Patterns are segment patterns on the normalised path
// with any trailing slash removed: "*" is one segment, a final "**" any
// number of segments (none included).
type scopeRule struct {
	scope   string
	methods string // space-separated; GET also admits HEAD
	pattern string
	except  []string
}

// ScopeRules is the immutable route table of the scopes. Build it once
// with NewScopeRules and share it; it is safe for concurrent use.
type ScopeRules struct {
	rules []scopeRule
}

// NewScopeRules returns the route table. Order matters only for refusals:
// the first rule that matches names the missing scope, so the narrowest
// scope for a route comes first.
func NewScopeRules() *ScopeRules {
	// Data endpoints of the chart API: they return query results, not
	// definitions, so charts:read and metadata:read never cover them.
	chartDataPaths := []string{"/api/v1/chart/data/**", "/api/v1/chart/*/data/**"}
	return &ScopeRules{rules: []scopeRule{
		{scope: ScopeChartDataRead, methods: "POST", pattern: "/api/v1/chart/data"},
		{scope: ScopeChartDataRead, methods: "GET", pattern: "/api/v1/chart/data/**"},
		{scope: ScopeChartDataRead, methods: "GET", pattern: "/api/v1/chart/*/data/**"},
		{scope: ScopeDashboardsRead, methods: "GET", pattern: "/api/v1/dashboard/**"},
		{scope: ScopeChartsRead, methods: "GET", pattern: "/api/v1/chart/**", except: chartDataPaths},
		{scope: ScopeDatasetsRead, methods: "GET", pattern: "/api/v1/dataset/**"},
		{scope: ScopeDatabasesRead, methods: "GET", pattern: "/api/v1/database/**"},

		// SQL Lab: bootstrap, run, poll, fetch results, stop, format,
		// estimate, export, plus the database list and schema/table
		// pickers a client needs to choose where to run.
		{scope: ScopeSQLLabExecute, methods: "POST", pattern: "/api/v1/sqllab/execute"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/sqllab/results"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/sqllab"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/sqllab/export/*"},
		{scope: ScopeSQLLabExecute, methods: "POST", pattern: "/api/v1/sqllab/format_sql"},
		{scope: ScopeSQLLabExecute, methods: "POST", pattern: "/api/v1/sqllab/estimate"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/query/**"},
		{scope: ScopeSQLLabExecute, methods: "POST", pattern: "/api/v1/query/stop"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/database"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/database/*/schemas"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/database/*/tables"},
		{scope: ScopeSQLLabExecute, methods: "GET", pattern: "/api/v1/database/*/table_metadata"},

		// metadata:read: everything an ingestion tool lists and reads
		// (lists, items, related, info, _info, nested lists), no data.
		{scope: ScopeMetadataRead, methods: "GET", pattern: "/api/v1/dashboard/**"},
		{scope: ScopeMetadataRead, methods: "GET", pattern: "/api/v1/chart/**", except: chartDataPaths},
		{scope: ScopeMetadataRead, methods: "GET", pattern: "/api/v1/dataset/**"},
		{scope: ScopeMetadataRead, methods: "GET", pattern: "/api/v1/database/**"},

		{scope: ScopeAPIRead, methods: "GET", pattern: "/api/v1/**"},
	}}
}

// Allow is NewScopeRules().Allow, for callers off the hot path.
func Allow(scopes []string, method, path string) Decision {
	return NewScopeRules().Allow(scopes, method, path)
}

// Allow decides whether a token holding scopes may send method to path,
// the normalised request path (proxy.CleanPath's output). It is pure and
// does not allocate; it runs on every access-token request.
//
// Allowed: Reason is the scope that grants the route. Refused: Reason is
// ReasonNotAPI for anything outside /api/ (browser pages, whatever the
// scopes), ReasonMissingScopePrefix + the narrowest scope that would grant
// the route, or ReasonNoScope when no scope does. Unknown scope names in
// scopes grant nothing. The zero result refuses.
func (s *ScopeRules) Allow(scopes []string, method, path string) Decision {
	if !strings.HasPrefix(path, "/api/") {
		return Decision{Reason: ReasonNotAPI}
	}
	if method == "HEAD" {
		method = "GET"
	}
	p := strings.TrimSuffix(path, "/")
	missing := ""
	for i := range s.rules {
		r := &s.rules[i]
		if !methodIn(method, r.methods) || !matchPattern(r.pattern, p) || matchAny(r.except, p) {
			continue
		}
		if slices.Contains(scopes, r.scope) {
			return Decision{Allow: true, Reason: Reason(r.scope)}
		}
		if missing == "" {
			missing = r.scope
		}
	}
	if missing == "" {
		return Decision{Reason: ReasonNoScope}
	}
	return Decision{Reason: MissingScopeReason(missing)}
}

func methodIn(m, list string) bool {
	for f := range strings.FieldsSeq(list) {
		if f == m {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if matchPattern(pat, p) {
			return true
		}
	}
	return false
}

// matchPattern matches p (no trailing slash) against a segment pattern.
func matchPattern(pattern, p string) bool {
	for {
		if pattern == "/**" {
			return true
		}
		if pattern == "" || p == "" {
			return pattern == p
		}
		// Both start with "/": take one segment of each.
		ps, prest := nextSegment(pattern)
		s, rest := nextSegment(p)
		if ps == "**" && prest == "" {
			return true
		}
		if ps != "*" && ps != s || ps == "*" && s == "" {
			return false
		}
		pattern, p = prest, rest
	}
}

// nextSegment splits "/a/b" into "a" and "/b".
func nextSegment(s string) (string, string) {
	s = s[1:]
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}
