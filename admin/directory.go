package admin

import (
	"context"
	"net/http"

	"github.com/superset-gateway/superset-gateway/superset/client"
)

// Directory answers the admin page's questions about Superset's users and
// embedded dashboards with the signed-in admin's own credentials (the
// request's), so Superset itself decides what the admin may list.
type Directory interface {
	// SearchUsers returns up to 100 users whose username contains q.
	SearchUsers(ctx context.Context, r *http.Request, q string) ([]client.User, error)
	// User returns the user with this id (client.ErrUnknownUser if none).
	User(ctx context.Context, r *http.Request, id int) (client.User, error)
	// EmbeddedDashboards lists the dashboards with embedding enabled.
	EmbeddedDashboards(ctx context.Context, r *http.Request) ([]client.EmbeddedDashboardInfo, error)
}

// ClientDirectory is a Directory over Superset's API: Credentials gives
// the admin's upstream credentials (as for MeRolesChecker).
type ClientDirectory struct {
	Client      *client.Client
	Credentials func(r *http.Request) (client.Auth, error)
}

var _ Directory = ClientDirectory{}

// SearchUsers implements Directory.
func (d ClientDirectory) SearchUsers(ctx context.Context, r *http.Request, q string) ([]client.User, error) {
	a, err := d.Credentials(r)
	if err != nil {
		return nil, err
	}
	return d.Client.SearchUsers(ctx, a, q, client.PageSize)
}

// User implements Directory.
func (d ClientDirectory) User(ctx context.Context, r *http.Request, id int) (client.User, error) {
	a, err := d.Credentials(r)
	if err != nil {
		return client.User{}, err
	}
	return d.Client.UserAs(ctx, a, id)
}

// EmbeddedDashboards implements Directory.
func (d ClientDirectory) EmbeddedDashboards(ctx context.Context, r *http.Request) ([]client.EmbeddedDashboardInfo, error) {
	a, err := d.Credentials(r)
	if err != nil {
		return nil, err
	}
	return d.Client.EmbeddedDashboards(ctx, a, client.PageSize)
}
