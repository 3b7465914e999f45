package deploytest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Dashboards lists the shipped Grafana dashboards.
func dashboards(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../grafana/*.json")
	if err != nil || len(files) < 2 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	return files
}

// TestDashboardsDecodeStrictly decodes every dashboard with the Grafana
// Foundation SDK's strict decoder (unknown fields and wrong types are
// errors) and checks that each carries a datasource variable that every
// panel and query uses, and that every query names only metrics the
// gateway registers.
func TestDashboardsDecodeStrictly(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	known := registered(t)
	for _, f := range dashboards(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 the classic JSON model is what Grafana's import and file provisioning read.
		var d dashboard.Dashboard
		// v0.0.22 returns an empty cog.BuildErrors as a non-nil error.
		if err := d.UnmarshalJSONStrict(raw); err != nil && !emptyBuildErrors(err) {
			t.Errorf("%s: strict decode: %v", f, err)
			continue
		}
		if err := d.Validate(); err != nil {
			t.Errorf("%s: validate: %v", f, err)
		}
		hasVar := false
		if d.Templating.List != nil {
			for _, v := range d.Templating.List {
				if v.Type == "datasource" && v.Name == "datasource" {
					hasVar = true
				}
			}
		}
		if !hasVar {
			t.Errorf("%s: no datasource variable", f)
		}
		for _, e := range Exprs(t, raw) {
			for _, name := range metricNames(e) {
				if !known[name] {
					t.Errorf("%s: query %q names %s, which the gateway does not register", f, e, name)
				}
			}
		}
		if !strings.Contains(string(raw), `"uid": "${datasource}"`) {
			t.Errorf("%s: panels do not use the datasource variable", f)
		}
	}
}

func emptyBuildErrors(err error) bool {
	var be cog.BuildErrors
	return errors.As(err, &be) && len(be) == 0
}

// Exprs returns every query expression of a dashboard's panels.
func Exprs(t *testing.T, raw []byte) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

var metricRE = regexp.MustCompile(`superset_gateway_[a-z0-9_]+`)

// metricNames are the gateway metric names in e, with the histogram
// suffixes taken off.
func metricNames(e string) []string {
	var out []string
	for _, n := range metricRE.FindAllString(e, -1) {
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(n, "_seconds"+s) || strings.HasSuffix(n, "_bytes"+s) {
				n = strings.TrimSuffix(n, s)
			}
		}
		out = append(out, n)
	}
	return out
}

// registered is the set of families in docs/metrics.md, which
// gateway.TestMetricsDoc keeps equal to a running gateway's registry.
func registered(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, n := range regexp.MustCompile("(?m)^\\| `(superset_gateway_[a-z0-9_]+)`").FindAllStringSubmatch(string(raw), -1) {
		m[n[1]] = true
	}
	if len(m) < 10 {
		t.Fatalf("docs/metrics.md lists %d families", len(m))
	}
	return m
}

// TestStrictDecodeCatchesMistakes proves the check above can fail: a
// misspelt panel field and a wrongly typed one are both errors.
func TestStrictDecodeCatchesMistakes(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, bad := range []string{
		`{"title":"x","panels":[{"type":"timeseries","titel":"typo"}]}`,
		`{"title":"x","schemaVersion":"39"}`,
	} {
		//lint:ignore SA1019 see TestDashboardsDecodeStrictly.
		var d dashboard.Dashboard
		if err := d.UnmarshalJSONStrict([]byte(bad)); err == nil || emptyBuildErrors(err) {
			t.Errorf("strict decode accepted %s", bad)
		}
	}
}
