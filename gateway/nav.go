package gateway

import (
	"net/http"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/ui"
)

// nav is the gateway navigation of /-/sessions and /-/tokens for the
// caller of r: the admin links (the admin page and its extra pages) only
// when the admin page is mounted and would admit them, by the admin
// handler's own decision.
func (p *process) nav(r *http.Request, current ui.Nav) []ui.Link {
	isAdmin := p.admin != nil && p.adminPage != nil && p.admin.Admits(r)
	return ui.NavLinks(current, isAdmin, p.adminNavExtra()...)
}

// adminNavExtra are the admin-only pages the admin page's navigation adds
// after its own link, the same on every gateway page.
func (p *process) adminNavExtra() []ui.Link {
	if p.overview == nil {
		return nil
	}
	return []ui.Link{{Href: admin.OverviewPath, Label: "Overview"}}
}
