package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
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
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string `json:"id"`
		ShortDescription msg    `json:"shortDescription"`
	}
	type artifact struct {
		URI string `json:"uri"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation artifact `json:"artifactLocation"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID     string            `json:"ruleId"`
		Level      string            `json:"level"`
		Message    msg               `json:"message"`
		Locations  []location        `json:"locations,omitempty"`
		Properties map[string]string `json:"properties,omitempty"`
	}
	ruleSet := map[string]bool{}
	results := []result{}
	for _, f := range r.Findings {
		ruleSet[f.Rule] = true
		res := result{RuleID: f.Rule, Level: sarifLevel(f.Severity), Message: msg{f.Message},
			Properties: map[string]string{"severity": f.Level}}
		if f.Advisory != "" {
			res.Properties["advisory"] = f.Advisory
		}
		if f.Extension != "" {
			res.Properties["extension"] = f.Extension
		}
		if f.Bundle != "" {
			var l location
			l.PhysicalLocation.ArtifactLocation.URI = f.Bundle
			res.Locations = []location{l}
		}
		results = append(results, res)
	}
	rules := []rule{}
	for id := range ruleSet {
		rules = append(rules, rule{ID: id, ShortDescription: msg{id}})
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "superset-gateway extensions audit", "version": version,
				"informationUri": "https://github.com/superset-gateway/superset-gateway/blob/main/docs/extensions.md",
				"rules":          rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
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
