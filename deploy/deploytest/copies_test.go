package deploytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The shipped alert rules and dashboards are tested where they live
// (deploy/prometheus with promtool, deploy/grafana against the SDK and a
// real Prometheus); compose and the Helm chart can only read files inside
// their own folders, so they carry copies, which must not drift.
const shippedAlerts = "../prometheus/alerts.yml"

var shippedCopies = map[string]string{
	"../compose/prometheus/alerts.yml":                        shippedAlerts,
	"../helm/superset-gateway/files/alerts.yml":               shippedAlerts,
	"../compose/grafana/dashboards/security.json":             "../grafana/security.json",
	"../compose/grafana/dashboards/superset-performance.json": "../grafana/superset-performance.json",
}

// TestShippedCopiesAreIdentical fails when a copy differs from what it
// copies; `make deploy-copies` writes them again.
func TestShippedCopiesAreIdentical(t *testing.T) {
	for cp, src := range shippedCopies {
		a, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(cp)
		if err != nil {
			t.Errorf("%s: %v (make deploy-copies)", cp, err)
			continue
		}
		if string(a) != string(b) {
			t.Errorf("%s differs from %s: run make deploy-copies", cp, src)
		}
	}
	// Every shipped dashboard is provisioned in compose.
	ds, err := filepath.Glob("../grafana/*.json")
	if err != nil || len(ds) == 0 {
		t.Fatalf("no dashboards in deploy/grafana: %v", err)
	}
	for _, d := range ds {
		if _, ok := shippedCopies["../compose/grafana/dashboards/"+filepath.Base(d)]; !ok {
			t.Errorf("dashboard %s is not copied into compose", d)
		}
	}
}

// shippedAlertNames lists the alerts of the shipped rules.
func shippedAlertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(shippedAlerts)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if strings.TrimSpace(r.Alert) != "" {
				names = append(names, r.Alert)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("no alerts in the shipped rules")
	}
	return names
}
