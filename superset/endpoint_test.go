package superset

import (
	"slices"
	"testing"
)

func TestEndpoint(t *testing.T) {
	cases := []struct{ method, path, want string }{
		{"GET", "/superset/dashboard/12/", EndpointDashboardPage},
		{"GET", "/superset/dashboard/sales-slug/", EndpointDashboardPage},
		{"GET", "/superset/dashboard/p/abc/", EndpointDashboardPage},
		{"GET", "/dashboard/list/", EndpointOther},
		{"POST", "/api/v1/chart/data", EndpointChartData},
		{"GET", "/api/v1/chart/data/cachekey123", EndpointChartData},
		{"GET", "/api/v1/chart/7/data/", EndpointChartData},
		{"POST", "/superset/explore_json/", EndpointChartData},
		{"GET", "/api/v1/chart/7/", EndpointAPIRead},
		{"GET", "/explore/", EndpointExplore},
		{"GET", "/explore/p/key/", EndpointExplore},
		{"GET", "/superset/explore/table/3/", EndpointExplore},
		{"GET", "/api/v1/explore/", EndpointExplore},
		{"POST", "/api/v1/sqllab/execute/", EndpointSQLLabExecute},
		{"GET", "/api/v1/sqllab/execute/", EndpointAPIRead},
		{"GET", "/api/v1/sqllab/results/", EndpointSQLLabResults},
		{"GET", "/api/v1/sqllab/export/client1/", EndpointSQLLabResults},
		{"GET", "/api/v1/dashboard/", EndpointAPIRead},
		{"HEAD", "/api/v1/dashboard/1", EndpointAPIRead},
		{"PUT", "/api/v1/dashboard/1", EndpointAPIWrite},
		{"DELETE", "/api/v1/chart/1", EndpointAPIWrite},
		{"GET", "/static/assets/app.js", EndpointStatic},
		{"GET", "/login/", EndpointLogin},
		{"POST", "/login/", EndpointLogin},
		{"GET", "/logout/", EndpointLogin},
		{"GET", "/oauth-authorized/google", EndpointLogin},
		{"POST", "/api/v1/security/login", EndpointLogin},
		{"POST", "/api/v1/security/refresh", EndpointLogin},
		{"GET", "/embedded/0b8f-uuid", EndpointEmbedded},
		{"GET", "/dashboard/3/embedded", EndpointEmbedded},
		{"POST", "/api/v1/security/guest_token/", EndpointEmbedded},
		{"GET", "/superset/welcome/", EndpointOther},
		// Attacker shapes: cleaned paths, unknown methods, junk.
		{"GET", "//static/../api/v1/sqllab/execute/", EndpointAPIRead},
		{"POST", "/static/../api/v1/sqllab/execute/", EndpointSQLLabExecute},
		{"PROPFIND", "/api/v1/dashboard/", EndpointOther},
		{"get", "/api/v1/dashboard/", EndpointOther},
		{"GET", "", EndpointOther},
		{"GET", "/\x00\xff", EndpointOther},
	}
	for _, c := range cases {
		if got := Endpoint(c.method, c.path); got != c.want {
			t.Errorf("Endpoint(%q, %q) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

func FuzzEndpoint(f *testing.F) {
	f.Add("GET", "/superset/dashboard/1/")
	f.Add("POST", "/api/v1/sqllab/execute/")
	f.Add("BREW", "//../x")
	f.Fuzz(func(t *testing.T, method, p string) {
		if got := Endpoint(method, p); !slices.Contains(EndpointClasses[:], got) {
			t.Fatalf("Endpoint(%q, %q) = %q, not a known class", method, p, got)
		}
	})
}
