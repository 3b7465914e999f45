package audit

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/superset-gateway/superset-gateway/internal/sarif"
)

// WriteText writes one line per finding, then a summary.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		where := f.Bundle
		if where == "" {
			where = "-"
		}
		if _, err := fmt.Fprintf(w, "%-8s %-28s %s: %s\n", f.Level, f.Rule, where, f.Message); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d bundle(s), %d finding(s)\n", len(r.Bundles), len(r.Findings))
	return err
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSARIF writes SARIF 2.1.0, the format code-scanning UIs read.
func (r *Report) WriteSARIF(w io.Writer, version string) error {
	ruleSet := map[string]bool{}
	var rules []sarif.Rule
	var results []sarif.Result
	for _, f := range r.Findings {
		if !ruleSet[f.Rule] {
			ruleSet[f.Rule] = true
			rules = append(rules, sarif.Rule{ID: f.Rule, ShortDescription: sarif.Message{Text: f.Rule}})
		}
		res := sarif.Result{RuleID: f.Rule, Level: sarifLevel(f.Severity), Message: sarif.Message{Text: f.Message},
			Properties: map[string]any{"severity": f.Level}}
		if f.Advisory != "" {
			res.Properties["advisory"] = f.Advisory
		}
		if f.Extension != "" {
			res.Properties["extension"] = f.Extension
		}
		if f.Bundle != "" {
			res.Locations = sarif.At(f.Bundle)
		}
		results = append(results, res)
	}
	return sarif.Write(w, sarif.Tool{Name: "superset-gateway extensions audit", Version: version,
		InformationURI: "https://github.com/superset-gateway/superset-gateway/blob/main/docs/extensions.md"}, rules, results)
}

func sarifLevel(s Severity) string {
	switch {
	case s >= High:
		return "error"
	case s >= Moderate:
		return "warning"
	default:
		return "note"
	}
}
