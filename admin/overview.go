package admin

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/superset-gateway/superset-gateway/overview"
)

//go:embed templates/overview.html
var overviewFS embed.FS

// OverviewPath is the overview of the last hour (package overview).
const OverviewPath = PagePath + "overview"

// OverviewSource is the in-process record of the last hour;
// *overview.Recorder satisfies it.
type OverviewSource interface {
	Snapshot() overview.Snapshot
}

// overviewData is the overview template's input.
type overviewData struct {
	overview.View
	Admin string
}

func parseOverview() (*template.Template, error) {
	t, err := template.New("overview.html").Funcs(template.FuncMap{
		"utc": func(t time.Time) string { return t.UTC().Format("15:04") },
		"ms": func(v float64) string {
			if math.IsNaN(v) {
				return "n/a"
			}
			return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
		},
	}).ParseFS(overviewFS, "templates/overview.html")
	if err != nil {
		return nil, fmt.Errorf("admin: overview template: %w", err)
	}
	return t, nil
}

// overview serves GET /-/admin/overview to the same admins as the page,
// audited as admin.overview.view. Without a source it is 404.
func (p *page) overview(w http.ResponseWriter, r *http.Request) {
	if p.ov == nil {
		p.message(w, http.StatusNotFound, messageData{Title: "Not found", Text: "There is no such admin page."})
		return
	}
	ev := p.event(r, "admin.overview.view")
	pr, ok := p.admit(w, r, &ev)
	if !ok {
		return
	}
	d := overviewData{View: overview.Draw(p.ov.Snapshot()), Admin: pr.Username}
	if d.Admin == "" {
		d.Admin = "user " + pr.UserID
	}
	var b bytes.Buffer
	err := p.ovTmpl.Execute(&b, d)
	p.settle(r.Context(), &ev, err)
	if err != nil {
		p.fail(w, fmt.Errorf("admin overview: render: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
