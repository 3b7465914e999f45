package gateway

import (
	"net/http"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
)

// buildAdminPage is the admin HTML page (/-/admin/) over the admin API's
// handler, so the page and the API admit the same people.
func (p *process) buildAdminPage() (http.Handler, error) {
	o := admin.PageOptions{
		AccessTokens: p.tokens,
		ValidTokenID: accesstoken.ValidID,
	}
	if e := p.extensions; e != nil {
		o.Extensions = func() admin.Extensions {
			st := e.Status()
			x := admin.Extensions{AdvisoriesOK: st.AdvisoriesOK, AdvisoriesNewest: st.AdvisoriesNewest,
				AdvisoryError: st.AdvisoryError, FailClosed: st.FailClosed}
			for _, v := range st.Verdicts {
				x.Verdicts = append(x.Verdicts, admin.ExtensionVerdict{ID: v.ID, Version: v.Version, Source: v.Source,
					Allowed: v.Allowed, Reasons: v.Reasons, Seen: v.Seen})
			}
			return x
		}
	}
	return p.admin.Page(o)
}
