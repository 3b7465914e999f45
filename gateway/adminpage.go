package gateway

import (
	"net/http"
	"strings"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// buildAdminPage is the admin HTML page (/-/admin/) over the admin API's
// handler, so the page and the API admit the same people.
func (p *process) buildAdminPage(cfg *config.Config, keys []config.CookieKeyPair) (http.Handler, error) {
	pairs := make([][2][]byte, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, [2][]byte{k.Hash, k.Block})
	}
	// The message after an admin action, in a cookie signed and encrypted
	// with keys derived from the cookie keys (shared by replicas).
	flashes, err := admin.NewFlashStore(pairs, strings.HasPrefix(cfg.PublicURL, "https://"))
	if err != nil {
		return nil, err
	}
	o := admin.PageOptions{
		Flashes:      flashes,
		AccessTokens: p.tokens,
		ValidTokenID: accesstoken.ValidID,
		// Users and embedded dashboards are listed as the admin, with
		// their own Superset credentials.
		Directory: admin.ClientDirectory{Client: client.Through(currentPool{&p.pool}), Credentials: p.adminCredentials},
		Overview:  p.overview,
	}
	o.Extra = p.adminNavExtra()
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
