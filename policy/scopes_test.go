package policy

import "testing"

func TestAllowScopes(t *testing.T) {
	for _, c := range []struct {
		scopes       []string
		method, path string
		allow        bool
		reason       Reason
	}{
		// dashboards
		{[]string{ScopeDashboardsRead}, "GET", "/api/v1/dashboard/", true, Reason(ScopeDashboardsRead)},
		{[]string{ScopeDashboardsRead}, "GET", "/api/v1/dashboard/12", true, Reason(ScopeDashboardsRead)},
		{[]string{ScopeDashboardsRead}, "HEAD", "/api/v1/dashboard/12/charts", true, Reason(ScopeDashboardsRead)},
		{[]string{ScopeDashboardsRead}, "POST", "/api/v1/dashboard/", false, ReasonNoScope},
		{[]string{ScopeDashboardsRead}, "DELETE", "/api/v1/dashboard/12", false, ReasonNoScope},
		{[]string{ScopeDashboardsRead}, "GET", "/api/v1/chart/", false, "missing_scope:charts:read"},
		// charts vs chart data
		{[]string{ScopeChartsRead}, "GET", "/api/v1/chart/5", true, Reason(ScopeChartsRead)},
		{[]string{ScopeChartsRead}, "GET", "/api/v1/chart/_info", true, Reason(ScopeChartsRead)},
		{[]string{ScopeChartsRead}, "GET", "/api/v1/chart/5/data/", false, "missing_scope:chart-data:read"},
		{[]string{ScopeChartsRead}, "POST", "/api/v1/chart/data", false, "missing_scope:chart-data:read"},
		{[]string{ScopeChartDataRead}, "POST", "/api/v1/chart/data", true, Reason(ScopeChartDataRead)},
		{[]string{ScopeChartDataRead}, "GET", "/api/v1/chart/data/abc123", true, Reason(ScopeChartDataRead)},
		{[]string{ScopeChartDataRead}, "GET", "/api/v1/chart/5/data/", true, Reason(ScopeChartDataRead)},
		{[]string{ScopeChartDataRead}, "GET", "/api/v1/chart/5", false, "missing_scope:charts:read"},
		{[]string{ScopeChartDataRead}, "PUT", "/api/v1/chart/data", false, ReasonNoScope},
		// datasets, databases
		{[]string{ScopeDatasetsRead}, "GET", "/api/v1/dataset/", true, Reason(ScopeDatasetsRead)},
		{[]string{ScopeDatasetsRead}, "GET", "/api/v1/dataset/related/owners", true, Reason(ScopeDatasetsRead)},
		{[]string{ScopeDatasetsRead}, "GET", "/api/v1/database/", false, "missing_scope:databases:read"},
		{[]string{ScopeDatabasesRead}, "GET", "/api/v1/database/1/schemas/", true, Reason(ScopeDatabasesRead)},
		// SQL Lab
		{[]string{ScopeSQLLabExecute}, "POST", "/api/v1/sqllab/execute/", true, Reason(ScopeSQLLabExecute)},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/sqllab/results/", true, Reason(ScopeSQLLabExecute)},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/sqllab/", true, Reason(ScopeSQLLabExecute)},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/query/updated_since", true, Reason(ScopeSQLLabExecute)},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/database/", true, Reason(ScopeSQLLabExecute)},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/database/1", false, "missing_scope:databases:read"},
		{[]string{ScopeSQLLabExecute}, "GET", "/api/v1/dashboard/", false, "missing_scope:dashboards:read"},
		{[]string{ScopeSQLLabExecute}, "POST", "/api/v1/sqllab/execute/x", false, ReasonNoScope},
		{[]string{ScopeMetadataRead}, "POST", "/api/v1/sqllab/execute/", false, "missing_scope:sqllab:execute"},
		// metadata
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/dashboard/", true, Reason(ScopeMetadataRead)},
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/chart/_info", true, Reason(ScopeMetadataRead)},
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/dataset/7", true, Reason(ScopeMetadataRead)},
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/database/related/created_by", true, Reason(ScopeMetadataRead)},
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/chart/5/data/", false, "missing_scope:chart-data:read"},
		{[]string{ScopeMetadataRead}, "POST", "/api/v1/chart/data", false, "missing_scope:chart-data:read"},
		{[]string{ScopeMetadataRead}, "GET", "/api/v1/me/", false, "missing_scope:api:read"},
		// api:read
		{[]string{ScopeAPIRead}, "GET", "/api/v1/me/", true, Reason(ScopeAPIRead)},
		{[]string{ScopeAPIRead}, "GET", "/api/v1/chart/5/data/", true, Reason(ScopeAPIRead)},
		{[]string{ScopeAPIRead}, "POST", "/api/v1/chart/data", false, "missing_scope:chart-data:read"},
		{[]string{ScopeAPIRead}, "PUT", "/api/v1/me/", false, ReasonNoScope},
		{[]string{ScopeAPIRead}, "GET", "/api/v2/thing", false, ReasonNoScope},
		// browser pages: never
		{Scopes(), "GET", "/superset/welcome/", false, ReasonNotAPI},
		{Scopes(), "GET", "/", false, ReasonNotAPI},
		{Scopes(), "GET", "/login/", false, ReasonNotAPI},
		{Scopes(), "GET", "/apis/v1/x", false, ReasonNotAPI},
		{Scopes(), "GET", "/api", false, ReasonNotAPI},
		// unknown scopes grant nothing; none at all
		{[]string{"admin", "*"}, "GET", "/api/v1/me/", false, "missing_scope:api:read"},
		{nil, "GET", "/api/v1/dashboard/", false, "missing_scope:dashboards:read"},
		{Scopes(), "OPTIONS", "/api/v1/me/", false, ReasonNoScope},
	} {
		d := Allow(c.scopes, c.method, c.path)
		if d.Allow != c.allow || d.Reason != c.reason {
			t.Errorf("Allow(%v, %s %s) = %+v, want allow=%v reason=%q", c.scopes, c.method, c.path, d, c.allow, c.reason)
		}
	}
}

func TestScopesAreValidAndDescribed(t *testing.T) {
	for _, s := range Scopes() {
		if !ValidScope(s) || ScopeDescription(s) == "" {
			t.Errorf("scope %q: valid=%v description=%q", s, ValidScope(s), ScopeDescription(s))
		}
	}
	if ValidScope("admin") || ScopeDescription("admin") != "" {
		t.Error("unknown scope accepted")
	}
	if MissingScope("missing_scope:charts:read") != ScopeChartsRead || MissingScope(ReasonNotAPI) != "" {
		t.Error("MissingScope")
	}
}

func TestMatchPattern(t *testing.T) {
	for _, c := range []struct {
		pat, p string
		want   bool
	}{
		{"/api/v1/**", "/api/v1", true},
		{"/api/v1/**", "/api/v1/a/b/c", true},
		{"/api/v1/**", "/api/v2", false},
		{"/api/v1/chart/*/data/**", "/api/v1/chart/1/data", true},
		{"/api/v1/chart/*/data/**", "/api/v1/chart/data", false},
		{"/api/v1/sqllab/execute", "/api/v1/sqllab/execute", true},
		{"/api/v1/sqllab/execute", "/api/v1/sqllab/execute/x", false},
		{"/api/v1/sqllab/export/*", "/api/v1/sqllab/export", false},
	} {
		if got := matchPattern(c.pat, c.p); got != c.want {
			t.Errorf("matchPattern(%q, %q) = %v", c.pat, c.p, got)
		}
	}
}
