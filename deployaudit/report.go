package deployaudit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/superset-gateway/superset-gateway/internal/sarif"
)

// WriteText writes the report for people: problems first, then what passed.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "superset-gateway audit of %s (%s, %s)\n", r.Target, r.Started.UTC().Format("2006-01-02 15:04:05Z"), r.Elapsed.Round(1e6))
	if r.Version != "" {
		fmt.Fprintf(&b, "Superset %s\n", r.Version)
	}
	counts := map[Severity]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	var sum []string
	for _, s := range severityOrder {
		sum = append(sum, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintf(&b, "%s\n\n", strings.Join(sum, ", "))
	for _, f := range r.Findings {
		if f.Severity == Pass {
			continue
		}
		fmt.Fprintf(&b, "[%s] %s\n  id: %s\n  checklist: %s\n", strings.ToUpper(string(f.Severity)), f.Title, f.ID, f.Checklist)
		if f.Detail != "" {
			fmt.Fprintf(&b, "  detail: %s\n", f.Detail)
		}
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Fix)
		}
		b.WriteString("\n")
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "passed:")
	for _, f := range r.Findings {
		if f.Severity == Pass {
			fmt.Fprintf(tw, "  %s\t%s\n", f.ID, f.Title)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteSARIF writes SARIF 2.1.0, one rule per finding id, one result per
// finding that is not a pass, located at the audited URL.
func (r *Report) WriteSARIF(w io.Writer, version string) error {
	var rules []sarif.Rule
	var results []sarif.Result
	index := map[string]bool{}
	for _, f := range r.Findings {
		if f.Severity == Pass {
			continue
		}
		if !index[f.ID] {
			index[f.ID] = true
			rules = append(rules, sarif.Rule{ID: f.ID, ShortDescription: sarif.Message{Text: f.Title}, Help: &sarif.Message{Text: f.Fix},
				Properties: map[string]any{"checklist": f.Checklist, "security-severity": securitySeverity(f.Severity), "tags": []string{"security"}}})
		}
		text := f.Title
		if f.Detail != "" {
			text += ": " + f.Detail
		}
		results = append(results, sarif.Result{RuleID: f.ID, Level: sarifLevel(f.Severity), Message: sarif.Message{Text: text}, Locations: sarif.At(r.Target)})
	}
	return sarif.Write(w, sarif.Tool{Name: "superset-gateway audit", Version: version,
		InformationURI: "https://github.com/superset-gateway/superset-gateway/blob/main/docs/audit.md"}, rules, results)
}

func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium, Low:
		return "warning"
	}
	return "note"
}

// securitySeverity is GitHub code scanning's 0–10 score property.
func securitySeverity(s Severity) string {
	switch s {
	case Critical:
		return "9.5"
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	case Low:
		return "3.0"
	}
	return "0.0"
}
