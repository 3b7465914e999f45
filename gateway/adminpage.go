package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
)

// buildAdminPage is the admin HTML page (/-/admin/) over the admin API's
// handler, so the page and the API admit the same people.
func (p *process) buildAdminPage() (http.Handler, error) {
	return p.admin.Page(admin.PageOptions{
		AccessTokens: adminAccessTokens{p.tokens},
		ValidTokenID: accesstoken.ValidID,
	})
}

// adminAccessTokens adapts the access-token manager to admin.AccessTokens;
// admin does not import accesstoken.
type adminAccessTokens struct{ m *accesstoken.Manager }

var _ admin.AccessTokens = adminAccessTokens{}

func (a adminAccessTokens) ListAll(ctx context.Context) ([]admin.AccessToken, error) {
	list, err := a.m.ListAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]admin.AccessToken, len(list))
	for i, in := range list {
		// Field by field: a field added to accesstoken.Info stays off the
		// admin page until someone decides it belongs there.
		out[i] = admin.AccessToken{ID: in.ID, OwnerID: in.OwnerID, OwnerName: in.OwnerName, Name: in.Name,
			Scopes: in.Scopes, CIDRs: in.CIDRs, Created: in.Created, Expires: in.Expires, Revoked: in.Revoked,
			RevokedBy: in.RevokedBy, LastUsed: in.LastUsed, LastUsedIP: in.LastUsedIP, Status: in.Status}
	}
	return out, nil
}

func (a adminAccessTokens) Revoke(ctx context.Context, id, by string) error {
	err := a.m.Revoke(ctx, id, by)
	if errors.Is(err, accesstoken.ErrNotFound) {
		return fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	return err
}
