package gateway

import (
	"net/http"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
)

// buildAdminPage is the admin HTML page (/-/admin/) over the admin API's
// handler, so the page and the API admit the same people.
func (p *process) buildAdminPage() (http.Handler, error) {
	return p.admin.Page(admin.PageOptions{
		AccessTokens: p.tokens,
		ValidTokenID: accesstoken.ValidID,
		Overview:     p.overview,
	})
}
