package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// SearchUsers is GET /api/v1/security/users/ filtered to usernames
// containing q (FAB's "ct" filter; SupersetUserApi lists username among
// its search_columns), as the caller a: the admin's own credentials, so
// Superset decides whether they may list users. At most limit users
// (1–100), ordered by username.
func (c *Client) SearchUsers(ctx context.Context, a Auth, q string, limit int) ([]User, error) {
	if limit <= 0 || limit > PageSize {
		limit = PageSize
	}
	var out struct {
		Result []User `json:"result"`
	}
	rison := "(filters:!((col:username,opr:ct,value:" + risonString(q) + ")),order_column:username,order_direction:asc,page:0,page_size:" + strconv.Itoa(limit) + ")"
	if err := c.doAuth(ctx, http.MethodGet, "/api/v1/security/users/?q="+url.QueryEscape(rison), a, nil, &out); err != nil {
		return nil, err
	}
	return out.Result, nil
}

// EmbeddedDashboardInfo is a dashboard with embedding enabled.
type EmbeddedDashboardInfo struct {
	Dashboard
	UUID string
}

// EmbeddedDashboards lists the dashboards (up to max, ordered by title)
// that have embedding enabled, as the caller a: Superset has no list of
// embedded dashboards, so each dashboard's GET …/embedded is asked (404:
// not embedded).
func (c *Client) EmbeddedDashboards(ctx context.Context, a Auth, maxDashboards int) ([]EmbeddedDashboardInfo, error) {
	if maxDashboards <= 0 || maxDashboards > PageSize {
		maxDashboards = PageSize
	}
	var list struct {
		Result []Dashboard `json:"result"`
	}
	rison := "(columns:!(id,dashboard_title,slug),order_column:dashboard_title,order_direction:asc,page:0,page_size:" + strconv.Itoa(maxDashboards) + ")"
	if err := c.doAuth(ctx, http.MethodGet, "/api/v1/dashboard/?q="+url.QueryEscape(rison), a, nil, &list); err != nil {
		return nil, err
	}
	var out []EmbeddedDashboardInfo
	for _, d := range list.Result {
		var e struct {
			Result Embedded `json:"result"`
		}
		err := c.doAuth(ctx, http.MethodGet, "/api/v1/dashboard/"+strconv.Itoa(d.ID)+"/embedded", a, nil, &e)
		if StatusCode(err) == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: embedded config of dashboard %d: %w", d.ID, err)
		}
		if e.Result.UUID == "" {
			return nil, errors.New("client: embedded config without uuid")
		}
		out = append(out, EmbeddedDashboardInfo{Dashboard: d, UUID: e.Result.UUID})
	}
	return out, nil
}

// UserAs is GET /api/v1/security/users/<id> as the caller a; a 404 is
// ErrUnknownUser.
func (c *Client) UserAs(ctx context.Context, a Auth, id int) (User, error) {
	var out struct {
		Result User `json:"result"`
	}
	err := c.doAuth(ctx, http.MethodGet, "/api/v1/security/users/"+strconv.Itoa(id), a, nil, &out)
	if StatusCode(err) == http.StatusNotFound {
		return User{}, fmt.Errorf("%w: id %d", ErrUnknownUser, id)
	}
	if err == nil && out.Result.ID == 0 {
		out.Result.ID = id
	}
	return out.Result, err
}
