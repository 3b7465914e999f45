package sarif_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/superset-gateway/superset-gateway/internal/sarif"
)

// TestWrite: a run with no findings still has rule and result lists (SARIF
// readers refuse null), rules come sorted, and a location names the URI.
func TestWrite(t *testing.T) {
	var buf bytes.Buffer
	if err := sarif.Write(&buf, sarif.Tool{Name: "t", Version: "1"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []sarif.Rule `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []sarif.Result `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Version != "2.1.0" || len(doc.Runs) != 1 ||
		doc.Runs[0].Results == nil || doc.Runs[0].Tool.Driver.Rules == nil {
		t.Fatalf("empty run: %s (%v)", buf.String(), err)
	}
	buf.Reset()
	rules := []sarif.Rule{{ID: "b"}, {ID: "a"}}
	res := []sarif.Result{{RuleID: "a", Level: "error", Message: sarif.Message{Text: "x"}, Locations: sarif.At("https://bi.example.com/")}}
	if err := sarif.Write(&buf, sarif.Tool{Name: "t"}, rules, res); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Runs[0]
	if r.Tool.Driver.Rules[0].ID != "a" || rules[0].ID != "b" {
		t.Fatalf("rules %v (the caller's slice must not be reordered: %v)", r.Tool.Driver.Rules, rules)
	}
	if r.Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI != "https://bi.example.com/" {
		t.Fatalf("location %+v", r.Results[0].Locations)
	}
}
