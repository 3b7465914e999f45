package superset

import (
	"net/http"
	"strings"
)

// Endpoint classes returned by Endpoint: what a request asks Superset to do,
// for performance metrics. They are stable metric label values; the set is
// closed (EndpointClasses), so a label built from them stays bounded.
const (
	EndpointDashboardPage = "dashboard_page"
	EndpointChartData     = "chart_data"
	EndpointExplore       = "explore"
	EndpointSQLLabExecute = "sqllab_execute"
	EndpointSQLLabResults = "sqllab_results"
	EndpointAPIRead       = "api_read"
	EndpointAPIWrite      = "api_write"
	EndpointStatic        = "static"
	EndpointLogin         = "login_logout"
	EndpointEmbedded      = "embedded"
	EndpointOther         = "other"
)

// EndpointClasses lists every value Endpoint returns.
var EndpointClasses = [...]string{
	EndpointDashboardPage, EndpointChartData, EndpointExplore,
	EndpointSQLLabExecute, EndpointSQLLabResults, EndpointAPIRead,
	EndpointAPIWrite, EndpointStatic, EndpointLogin, EndpointEmbedded,
	EndpointOther,
}

// Endpoint names the endpoint class of a request to Superset 6.1.0. It is a
// pure function of the method and the decoded path, never fails and never
// returns anything outside EndpointClasses: unknown methods and paths are
// EndpointOther, so the result is safe as a metric label. Unlike ClassifyPath
// (which decides what the gateway guards) it answers "which kind of Superset
// work was this", so chart data and SQL Lab are split by cost. Routes, as
// registered by Superset 6.1.0:
//
//   - /superset/dashboard/<id_or_slug>/ and /superset/dashboard/p/<key>/:
//     the dashboard page (views/core.py);
//   - /api/v1/chart/data[/<cache_key>], /api/v1/chart/<pk>/data/ and
//     /superset/explore_json/…: chart data;
//   - /explore/…, /superset/explore/…, /api/v1/explore/…: explore;
//   - POST /api/v1/sqllab/execute/: SQL Lab execute; /api/v1/sqllab/results/
//     and /api/v1/sqllab/export/…: SQL Lab results;
//   - /embedded/<uuid>, /dashboard/<id>/embedded and POST
//     /api/v1/security/guest_token/: embedded;
//   - /login…, /logout, /oauth-authorized/…, /api/v1/security/login and
//     /refresh: login and logout.
func Endpoint(method, p string) string {
	if !knownMethod(method) {
		return EndpointOther
	}
	p = canonical(p)
	t := trimSlash(p)
	switch {
	case strings.HasPrefix(p, "/static/"):
		return EndpointStatic
	case strings.HasPrefix(p, "/api/"):
		return endpointAPI(method, t)
	case strings.HasPrefix(p, "/embedded/"):
		return EndpointEmbedded
	case t == "/login" || t == "/logout" || strings.HasPrefix(t, "/login/") ||
		strings.HasPrefix(t, "/oauth-authorized/"):
		return EndpointLogin
	case strings.HasPrefix(t, "/superset/dashboard/") && t != "/superset/dashboard/p":
		return EndpointDashboardPage
	case strings.HasPrefix(t, "/dashboard/") && strings.HasSuffix(t, "/embedded"):
		return EndpointEmbedded
	case strings.HasPrefix(t, "/superset/explore_json"):
		return EndpointChartData
	case t == "/explore" || strings.HasPrefix(t, "/explore/") ||
		t == "/superset/explore" || strings.HasPrefix(t, "/superset/explore/"):
		return EndpointExplore
	}
	return EndpointOther
}

func endpointAPI(method, t string) string {
	switch {
	case t == "/api/v1/security/login" || t == "/api/v1/security/refresh":
		return EndpointLogin
	case t == "/api/v1/security/guest_token":
		if method == http.MethodPost {
			return EndpointEmbedded
		}
	case t == "/api/v1/chart/data" || strings.HasPrefix(t, "/api/v1/chart/data/"):
		return EndpointChartData
	case strings.HasPrefix(t, "/api/v1/chart/") && strings.HasSuffix(t, "/data"):
		if _, ok := oneSegment(t[:len(t)-len("/data")], "/api/v1/chart/"); ok {
			return EndpointChartData
		}
	case t == "/api/v1/sqllab/execute":
		if method == http.MethodPost {
			return EndpointSQLLabExecute
		}
	case t == "/api/v1/sqllab/results" || strings.HasPrefix(t, "/api/v1/sqllab/export/") ||
		t == "/api/v1/sqllab/export_streaming":
		return EndpointSQLLabResults
	case t == "/api/v1/explore" || strings.HasPrefix(t, "/api/v1/explore/"):
		return EndpointExplore
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return EndpointAPIRead
	default:
		return EndpointAPIWrite
	}
}

// knownMethod reports the methods Superset serves; anything else (WebDAV
// verbs, garbage) is EndpointOther rather than an API write.
func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost,
		http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}
