package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"time"
)

// fixtures is fixtures.json: what the first Start created through the API.
type fixtures struct {
	// AdminID is the admin's Superset user id: the gateway's service user.
	AdminID       int    `json:"admin_id"`
	DashboardID   int    `json:"dashboard_id"`
	DashboardSlug string `json:"dashboard_slug"`
	EmbedUUID     string `json:"embed_uuid"`
	// Data is a database Superset can query, with one dataset and one
	// chart on the dashboard (absent in homes made before it existed).
	Data Data `json:"data"`
}

// Data names the queryable fixtures: a SQLite file registered as a
// Superset database (exposed in SQL Lab), a dataset on its one table and
// a table chart on a dashboard of its own.
type Data struct {
	DatabaseID   int    `json:"database_id"`
	DatabaseName string `json:"database_name"`
	// DashboardID holds the chart. The embedding fixture dashboard stays
	// chartless: Superset's DashboardAccessFilter then hides it from
	// non-owners, which the conformance suite relies on.
	DashboardID int `json:"dashboard_id"`
	DatasetID   int `json:"dataset_id"`
	ChartID     int `json:"chart_id"`
	// Table holds DataRows rows: (id, region, amount).
	Table    string `json:"table"`
	DataRows int    `json:"data_rows"`
}

// ensureFixtures loads fixtures.json or, on a home's first start, creates
// the fixtures through Superset's own API, the way an operator would:
// admin's password is replaced by the home's, alice (Alpha and sql_lab) and
// bob (Gamma) are created, one dashboard gets embedding enabled, and a
// SQLite database with a dataset and a chart is registered (ensureData).
func (s *Superset) ensureFixtures(ctx context.Context, baseURL string) error {
	if b, err := os.ReadFile(s.path("fixtures.json")); err == nil {
		var f fixtures
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("harness: fixtures.json: %w", err)
		}
		if f.Data.DatabaseID == 0 {
			// A home made before the data fixtures existed (a kept demo home).
			a, err := NewAPI(ctx, baseURL, "admin", s.set.AdminPassword)
			if err != nil {
				return err
			}
			if err := a.FetchCSRF(ctx); err != nil {
				return err
			}
			if f.Data, err = s.ensureData(ctx, a); err != nil {
				return err
			}
			if err := a.setRoles(ctx, "alice", "Alpha", "sql_lab"); err != nil {
				return err
			}
			return s.saveFixtures(f)
		}
		s.fixture = &f
		return nil
	}
	t0 := time.Now()
	a, err := NewAPI(ctx, baseURL, "admin", s.set.TemplateAdminPassword)
	if err != nil {
		// A previous, interrupted first start may have changed it already.
		if a, err = NewAPI(ctx, baseURL, "admin", s.set.AdminPassword); err != nil {
			return err
		}
	}
	var me struct {
		Result struct {
			ID int `json:"id"`
		} `json:"result"`
	}
	if err := a.Do(ctx, http.MethodGet, "/api/v1/me/", nil, &me); err != nil {
		return err
	}
	if err := a.Do(ctx, http.MethodPut, fmt.Sprintf("/api/v1/security/users/%d", me.Result.ID),
		map[string]any{"password": s.set.AdminPassword}, nil); err != nil {
		return err
	}
	roleID, err := a.roleIDs(ctx)
	if err != nil {
		return err
	}
	for _, u := range []struct {
		name, first, pw string
		roles           []string
	}{
		{"alice", "Alice", s.set.AlicePassword, []string{"Alpha", "sql_lab"}},
		{"bob", "Bob", s.set.BobPassword, []string{"Gamma"}},
	} {
		var ids []int
		for _, role := range u.roles {
			if roleID[role] == 0 {
				return fmt.Errorf("harness: role %s not found", role)
			}
			ids = append(ids, roleID[role])
		}
		body := map[string]any{
			"username": u.name, "first_name": u.first, "last_name": "Example",
			"email": u.name + "@example.com", "password": u.pw,
			"active": true, "roles": ids,
		}
		if err := a.Do(ctx, http.MethodPost, "/api/v1/security/users/", body, nil); err != nil {
			return err
		}
	}
	// Superset's own APIs want X-CSRFToken plus the session cookie that
	// holds the raw token, even with a Bearer JWT.
	if err := a.FetchCSRF(ctx); err != nil {
		return err
	}
	f := fixtures{DashboardSlug: "gateway-e2e", AdminID: me.Result.ID}
	var dash struct {
		ID int `json:"id"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/dashboard/", map[string]any{
		"dashboard_title": "Gateway E2E", "slug": f.DashboardSlug, "published": true,
	}, &dash); err != nil {
		return err
	}
	f.DashboardID = dash.ID
	var emb struct {
		Result struct {
			UUID string `json:"uuid"`
		} `json:"result"`
	}
	if err := a.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/dashboard/%d/embedded", dash.ID),
		map[string]any{"allowed_domains": []string{}}, &emb); err != nil {
		return err
	}
	f.EmbedUUID = emb.Result.UUID
	if f.DashboardID == 0 || f.EmbedUUID == "" {
		return fmt.Errorf("harness: dashboard fixture incomplete: %+v", f)
	}
	if f.Data, err = s.ensureData(ctx, a); err != nil {
		return err
	}
	if err := s.saveFixtures(f); err != nil {
		return err
	}
	s.logf("fixtures created in %s (dashboard %d, embed %s, database %d, dataset %d, chart %d)",
		time.Since(t0).Round(time.Millisecond), f.DashboardID, f.EmbedUUID, f.Data.DatabaseID, f.Data.DatasetID, f.Data.ChartID)
	return nil
}

func (s *Superset) saveFixtures(f fixtures) error {
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(s.path("fixtures.json"), b, 0o600); err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	s.fixture = &f
	return nil
}

// dataRows is what ensureData writes into the SQLite file's one table.
const dataRows = 12

// ensureData writes a small SQLite file into the home and registers it
// the way an operator would, through the API: a database exposed in SQL
// Lab, a dataset on its table and a table chart on a new dashboard. Superset
// refuses sqlite:// URIs unless PREVENT_UNSAFE_DB_CONNECTIONS is off,
// which superset_config.py does for exactly this.
func (s *Superset) ensureData(ctx context.Context, a *API) (Data, error) {
	d := Data{DatabaseName: "gateway_e2e_data", Table: "orders", DataRows: dataRows}
	file := s.path("data.db")
	const script = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("drop table if exists orders")
c.execute("create table orders (id integer primary key, region text not null, amount real not null)")
regions = ["north", "south", "east", "west"]
c.executemany("insert into orders (id, region, amount) values (?, ?, ?)",
              [(i, regions[i % 4], 10.0 * i) for i in range(1, int(sys.argv[2]) + 1)])
c.commit()
`
	if out, err := runVenv(ctx, s.venv, s.home, "python", "-c", script, file, strconv.Itoa(dataRows)); err != nil {
		return d, fmt.Errorf("harness: data.db: %w\n%s", err, tail(out, 2000))
	}
	var db struct {
		ID int `json:"id"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/database/", map[string]any{
		"database_name": d.DatabaseName, "sqlalchemy_uri": "sqlite:///" + file,
		"expose_in_sqllab": true, "allow_run_async": false, "allow_dml": false,
	}, &db); err != nil {
		return d, err
	}
	d.DatabaseID = db.ID
	var ds struct {
		ID int `json:"id"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/dataset/", map[string]any{
		"database": d.DatabaseID, "table_name": d.Table,
	}, &ds); err != nil {
		return d, err
	}
	d.DatasetID = ds.ID
	var dash struct {
		ID int `json:"id"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/dashboard/", map[string]any{
		"dashboard_title": "Gateway E2E data", "slug": "gateway-e2e-data", "published": true,
	}, &dash); err != nil {
		return d, err
	}
	d.DashboardID = dash.ID
	params, _ := json.Marshal(map[string]any{
		"datasource": fmt.Sprintf("%d__table", ds.ID), "viz_type": "table",
		"query_mode": "raw", "all_columns": []string{"id", "region", "amount"}, "row_limit": 100,
	})
	var ch struct {
		ID int `json:"id"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/chart/", map[string]any{
		"slice_name": "Orders", "viz_type": "table", "datasource_id": ds.ID, "datasource_type": "table",
		"params": string(params), "dashboards": []int{d.DashboardID},
	}, &ch); err != nil {
		return d, err
	}
	d.ChartID = ch.ID
	if d.DatabaseID == 0 || d.DatasetID == 0 || d.ChartID == 0 || d.DashboardID == 0 {
		return d, fmt.Errorf("harness: data fixture incomplete: %+v", d)
	}
	return d, nil
}

// roleIDs maps role names to ids through the roles API.
func (a *API) roleIDs(ctx context.Context) (map[string]int, error) {
	var roles struct {
		Result []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"result"`
	}
	if err := a.Do(ctx, http.MethodGet, "/api/v1/security/roles/?q=(page_size:100)", nil, &roles); err != nil {
		return nil, err
	}
	ids := map[string]int{}
	for _, r := range roles.Result {
		ids[r.Name] = r.ID
	}
	return ids, nil
}

// setRoles replaces a user's roles through the users API.
func (a *API) setRoles(ctx context.Context, username string, roles ...string) error {
	roleID, err := a.roleIDs(ctx)
	if err != nil {
		return err
	}
	var ids []int
	for _, r := range roles {
		if roleID[r] == 0 {
			return fmt.Errorf("harness: role %s not found", r)
		}
		ids = append(ids, roleID[r])
	}
	var us struct {
		Result []struct {
			ID int `json:"id"`
		} `json:"result"`
	}
	q := "/api/v1/security/users/?q=" + url.QueryEscape("(filters:!((col:username,opr:eq,value:"+username+")))")
	if err := a.Do(ctx, http.MethodGet, q, nil, &us); err != nil {
		return err
	}
	if len(us.Result) != 1 {
		return fmt.Errorf("harness: user %s not found", username)
	}
	return a.Do(ctx, http.MethodPut, fmt.Sprintf("/api/v1/security/users/%d", us.Result[0].ID), map[string]any{"roles": ids}, nil)
}

// API is a minimal Superset API client: a Bearer JWT from
// /api/v1/security/login, and a cookie jar for the CSRF session (through
// the gateway, that cookie is the gateway's own).
type API struct {
	base   string
	client *http.Client
	bearer string
	csrf   string
}

// NewAPI signs in to base's API as user; transport nil means the default.
func NewAPI(ctx context.Context, base, user, password string) (*API, error) {
	return NewAPIVia(ctx, base, user, password, nil)
}

// NewAPIVia is NewAPI over transport (an https gateway with a test
// certificate, for instance).
func NewAPIVia(ctx context.Context, base, user, password string, transport http.RoundTripper) (*API, error) {
	jar, _ := cookiejar.New(nil)
	a := &API{base: base, client: &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: transport}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.Do(ctx, http.MethodPost, "/api/v1/security/login", map[string]any{
		"username": user, "password": password, "provider": "db", "refresh": false,
	}, &tok); err != nil {
		return nil, err
	}
	a.bearer = tok.AccessToken
	return a, nil
}

// FetchCSRF gets the CSRF token the CSRF-guarded endpoints want, which
// Do then sends.
func (a *API) FetchCSRF(ctx context.Context) error {
	var r struct {
		Result string `json:"result"`
	}
	if err := a.Do(ctx, http.MethodGet, "/api/v1/security/csrf_token/", nil, &r); err != nil {
		return err
	}
	a.csrf = r.Result
	return nil
}

var errStatus = errors.New("harness: unexpected status")

// Do sends body as JSON and decodes a 2xx answer into out (if not nil).
func (a *API) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("harness: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	if a.csrf != "" {
		req.Header.Set("X-CSRFToken", a.csrf)
		req.Header.Set("Referer", a.base+"/")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("harness: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: %s %s: %d %s", errStatus, method, path, resp.StatusCode, tail(b, 500))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("harness: %s %s: %w", method, path, err)
		}
	}
	return nil
}
