// Package sarif writes SARIF 2.1.0 logs, the format code-scanning tools
// read, for the gateway's two audits (superset-gateway audit and
// extensions audit): one run of one tool, its rules and its results.
package sarif

import (
	"encoding/json"
	"io"
	"sort"
)

// Message is SARIF's message object.
type Message struct {
	Text string `json:"text"`
}

// Rule describes a kind of finding.
type Rule struct {
	ID               string         `json:"id"`
	ShortDescription Message        `json:"shortDescription"`
	Help             *Message       `json:"help,omitempty"`
	Properties       map[string]any `json:"properties,omitempty"`
}

// Location names the artifact a result is about (a URL, a file).
type Location struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
	} `json:"physicalLocation"`
}

// At is the location of uri.
func At(uri string) []Location {
	var l Location
	l.PhysicalLocation.ArtifactLocation.URI = uri
	return []Location{l}
}

// Result is one finding.
type Result struct {
	RuleID     string         `json:"ruleId"`
	Level      string         `json:"level"` // error, warning, note, none
	Message    Message        `json:"message"`
	Locations  []Location     `json:"locations,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Tool is the run's driver.
type Tool struct {
	Name, Version, InformationURI string
}

// Write writes one run of tool with rules (sorted by id; nil is an empty
// list, as SARIF readers want) and results, indented.
func Write(w io.Writer, tool Tool, rules []Rule, results []Result) error {
	rules = append([]Rule{}, rules...)
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	if results == nil {
		results = []Result{}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": tool.Name, "version": tool.Version, "informationUri": tool.InformationURI, "rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
