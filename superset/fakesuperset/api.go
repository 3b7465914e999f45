package fakesuperset

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

func (f *Fake) csrfToken(r *http.Request, st *reqState) resp {
	return jsonResp(http.StatusOK, map[string]any{"result": f.ensureCSRF(st)})
}

func (f *Fake) me(r *http.Request, st *reqState) resp {
	if u := st.caller(); u != nil {
		return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
			"id": u.ID, "username": u.Username, "email": u.Email, "first_name": u.FirstName,
			"last_name": u.LastName, "is_active": u.Active, "is_anonymous": false, "login_count": u.LoginCount,
		}})
	}
	g := st.guest.User
	return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
		"username": g.Username, "first_name": g.FirstName, "last_name": g.LastName,
		"is_active": true, "is_anonymous": false,
	}})
}

func (f *Fake) meRoles(r *http.Request, st *reqState) resp {
	perms := func(roles []string) map[string]any {
		out := map[string]any{}
		for _, role := range roles {
			ps := [][]string{}
			for _, p := range roleGrantsOf(role) {
				ps = append(ps, []string{p, "fake"})
			}
			out[role] = ps
		}
		return out
	}
	access := map[string]any{"datasource_access": []any{}, "database_access": []any{}}
	if u := st.caller(); u != nil {
		return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
			"username": u.Username, "firstName": u.FirstName, "lastName": u.LastName, "userId": u.ID,
			"isActive": u.Active, "isAnonymous": false, "createdOn": u.CreatedOn.Format("2006-01-02T15:04:05.000000"),
			"email": u.Email, "loginCount": u.LoginCount, "roles": perms(u.Roles), "permissions": access,
		}})
	}
	g := st.guest.User
	return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
		"username": g.Username, "firstName": g.FirstName, "lastName": g.LastName,
		"isActive": true, "isAnonymous": false, "roles": perms([]string{f.opt.GuestRole}), "permissions": access,
	}})
}

// meUpdate is PUT /api/v1/me/: first_name, last_name, password; 6.1 asks
// for no current password and leaves other sessions alone. It answers with
// the updated user, like GET.
func (f *Fake) meUpdate(r *http.Request, st *reqState) resp {
	u := st.caller()
	if u == nil {
		return jsonResp(http.StatusUnauthorized, map[string]any{"message": "Not authorized"})
	}
	if !isJSON(r) {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	if f.opt.Master {
		if res, ok := f.meUpdateMaster(u, body); !ok {
			return res
		}
	}
	errs := map[string]any{}
	for k, v := range body {
		s, isStr := v.(string)
		switch {
		case k != "first_name" && k != "last_name" && k != "password":
			errs[k] = []string{"Unknown field."}
		case !isStr:
			errs[k] = []string{"Not a valid string."}
		case k != "password" && (len(s) < 1 || len(s) > 64):
			errs[k] = []string{"Length must be between 1 and 64."}
		}
	}
	if len(errs) > 0 {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": errs})
	}
	if len(body) == 0 {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "At least one field must be provided."})
	}
	f.mu.Lock()
	cur, ok := f.users[u.ID]
	if ok {
		for k, v := range body {
			switch s := v.(string); k {
			case "first_name":
				cur.FirstName = s
			case "last_name":
				cur.LastName = s
			case "password":
				cur.Password = s
			}
		}
		cur.ChangedBy = cur.ID
		*u = *cur
	}
	f.mu.Unlock()
	if _, pw := body["password"]; ok && pw && f.opt.Master {
		f.afterOwnPasswordChange(st, u.ID)
	}
	return f.me(r, st)
}

func userJSON(u *User) map[string]any {
	roles := []any{}
	for i, name := range u.Roles {
		roles = append(roles, map[string]any{"id": roleID(name, i), "name": name})
	}
	var last any
	if !u.LastLogin.IsZero() {
		last = u.LastLogin.Format("2006-01-02T15:04:05.000000")
	}
	return map[string]any{
		"id": u.ID, "username": u.Username, "first_name": u.FirstName, "last_name": u.LastName,
		"email": u.Email, "active": u.Active, "roles": roles, "login_count": u.LoginCount,
		"fail_login_count": u.FailLoginCount, "last_login": last,
		"created_on": u.CreatedOn.Format("2006-01-02T15:04:05.000000"), "changed_on": u.CreatedOn.Format("2006-01-02T15:04:05.000000"),
	}
}

// Role ids as FAB creates them on a fresh Superset: Admin 1, Public 2,
// Alpha 3, Gamma 4.
func roleID(name string, _ int) int {
	switch name {
	case "Admin":
		return 1
	case "Public":
		return 2
	case "Alpha":
		return 3
	case "Gamma":
		return 4
	}
	return 0
}

func roleName(id int) string {
	for _, n := range []string{"Admin", "Public", "Alpha", "Gamma"} {
		if roleID(n, 0) == id {
			return n
		}
	}
	return ""
}

// listUsers is FAB's ModelRestApi list with rison paging (page,
// page_size, default page_size 20, max 100).
func (f *Fake) listUsers(r *http.Request, st *reqState) resp {
	page, size := 0, 20
	// Rison "(page:0,page_size:100)"; other keys are ignored.
	q := strings.Trim(r.URL.Query().Get("q"), "()")
	for _, kv := range strings.Split(q, ",") {
		k, v, _ := strings.Cut(kv, ":")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			continue
		}
		switch k {
		case "page":
			page = n
		case "page_size":
			size = n
		}
	}
	if size > 100 || size <= 0 {
		size = 100
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]int, 0, len(f.users))
	for id := range f.users {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	count := len(ids)
	lo := min(page*size, count)
	hi := min(lo+size, count)
	result := []any{}
	for _, id := range ids[lo:hi] {
		result = append(result, userJSON(f.users[id]))
	}
	return jsonResp(http.StatusOK, map[string]any{"count": count, "ids": ids[lo:hi], "result": result, "list_title": "List User"})
}

func (f *Fake) getUser(r *http.Request, st *reqState) resp {
	id, err := strconv.Atoi(r.PathValue("pk"))
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if err != nil || !ok {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	return jsonResp(http.StatusOK, map[string]any{"id": id, "result": userJSON(u)})
}

// userInput validates the users API body like FAB's schema.
func userInput(body map[string]any, required bool) (map[string]any, resp, bool) {
	errs := map[string]any{}
	for k, v := range body {
		switch k {
		case "first_name", "last_name", "username", "email", "password":
			if _, ok := v.(string); !ok {
				errs[k] = []string{"Not a valid string."}
			}
		case "active":
			if _, ok := v.(bool); !ok {
				errs[k] = []string{"Not a valid boolean."}
			}
		case "roles", "groups":
			l, ok := v.([]any)
			if !ok {
				errs[k] = []string{"Not a valid list."}
				continue
			}
			for _, x := range l {
				if _, ok := x.(float64); !ok {
					errs[k] = []string{"Not a valid integer."}
				}
			}
		default:
			errs[k] = []string{"Unknown field."}
		}
	}
	if required {
		for _, k := range []string{"first_name", "last_name", "username", "email", "password"} {
			if _, ok := body[k]; !ok {
				errs[k] = []string{"Missing data for required field."}
			}
		}
	}
	if len(errs) > 0 {
		return nil, jsonResp(http.StatusBadRequest, map[string]any{"message": errs}), false
	}
	return body, resp{}, true
}

func rolesOf(v any) ([]string, bool) {
	l, _ := v.([]any)
	out := []string{}
	for _, x := range l {
		n := roleName(int(x.(float64)))
		if n == "" {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

func (f *Fake) createUser(r *http.Request, st *reqState) resp {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	in, bad, ok := userInput(body, true)
	if !ok {
		return bad
	}
	u := User{
		Username: in["username"].(string), Password: in["password"].(string), Email: in["email"].(string),
		FirstName: in["first_name"].(string), LastName: in["last_name"].(string), Active: true, CreatedOn: st.now.UTC(),
	}
	if a, ok := in["active"].(bool); ok {
		u.Active = a
	}
	if v, ok := in["roles"]; ok {
		if u.Roles, ok = rolesOf(v); !ok {
			return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.users {
		if o.Username == u.Username || o.Email == u.Email {
			return jsonResp(http.StatusUnprocessableEntity, map[string]any{"message": "User already exists"})
		}
	}
	return jsonResp(http.StatusCreated, map[string]any{"id": f.addUser(u)})
}

// updateUser is PUT /api/v1/security/users/<pk>: the answer echoes the
// validated input, password included.
func (f *Fake) updateUser(r *http.Request, st *reqState) resp {
	id, err := strconv.Atoi(r.PathValue("pk"))
	var body map[string]any
	if derr := json.NewDecoder(r.Body).Decode(&body); derr != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	in, bad, ok := userInput(body, false)
	if !ok {
		return bad
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, found := f.users[id]
	if err != nil || !found {
		// The real 6.1.0 crashes here (DELETE gives 404).
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	if v, ok := in["roles"]; ok {
		roles, ok := rolesOf(v)
		if !ok {
			// 6.1.0 answers 500 for an unknown role id on PUT.
			return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
		}
		if len(roles) == 0 {
			// FAB: no groups in the fake, so clearing roles is refused.
			return jsonResp(http.StatusBadRequest, map[string]any{"message": cannotClearRoles})
		}
		u.Roles = roles
	}
	for k, v := range in {
		switch k {
		case "first_name":
			u.FirstName = v.(string)
		case "last_name":
			u.LastName = v.(string)
		case "username":
			u.Username = v.(string)
		case "email":
			u.Email = v.(string)
		case "password":
			u.Password = v.(string)
		case "active":
			u.Active = v.(bool)
		}
	}
	if c := st.caller(); c != nil {
		u.ChangedBy = c.ID
	}
	return jsonResp(http.StatusOK, map[string]any{"result": in})
}

func (f *Fake) deleteUser(r *http.Request, st *reqState) resp {
	id, err := strconv.Atoi(r.PathValue("pk"))
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if err != nil || !ok {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	if u.ChangedBy == id {
		// SQLAlchemy cannot order the delete of a row whose changed_by_fk
		// is itself; FAB rolls back and answers 422 (seen on 6.1.0).
		return jsonResp(http.StatusUnprocessableEntity, map[string]any{
			"message": "Database exception occurred: Circular dependency detected. (DeleteState(<User at 0x7f00c0ffee00>))",
		})
	}
	delete(f.users, id)
	return jsonResp(http.StatusOK, map[string]any{"message": "OK"})
}

// guestToken is SecurityRestApi.guest_token: GuestTokenCreateSchema
// (unknown keys ignored), resource check, then the token. A body without
// "user" passes the schema and crashes on body["user"] (500), as in 6.1.0.
func (f *Fake) guestToken(r *http.Request, st *reqState) resp {
	var raw map[string]any
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || raw == nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	errs := map[string]any{}
	list := func(k string) []any {
		v, ok := raw[k]
		if !ok {
			errs[k] = []string{"Missing data for required field."}
			return nil
		}
		l, ok := v.([]any)
		if !ok {
			errs[k] = []string{"Not a valid list."}
		}
		return l
	}
	resources, rls := list("resources"), list("rls")
	res := []guestjwt.Resource{}
	resErrs := map[string]any{}
	for i, x := range resources {
		m, _ := x.(map[string]any)
		e := map[string]any{}
		typ, _ := m["type"].(string)
		if typ != "dashboard" {
			e["type"] = []string{"Must be one of: dashboard."}
		}
		id, isStr := m["id"].(string)
		if _, present := m["id"]; !present {
			e["id"] = []string{"Missing data for required field."}
		} else if !isStr {
			e["id"] = []string{"Not a valid string."}
		}
		if len(e) > 0 {
			resErrs[itoa(i)] = e
			continue
		}
		res = append(res, guestjwt.Resource{Type: typ, ID: id})
	}
	if len(resErrs) > 0 {
		errs["resources"] = resErrs
	}
	rules := []guestjwt.RLSRule{}
	rlsErrs := map[string]any{}
	for i, x := range rls {
		m, _ := x.(map[string]any)
		clause, ok := m["clause"].(string)
		if !ok {
			rlsErrs[itoa(i)] = map[string]any{"clause": []string{"Missing data for required field."}}
			continue
		}
		rule := guestjwt.RLSRule{Clause: clause}
		if d, ok := m["dataset"].(float64); ok {
			n := int64(d)
			rule.Dataset = &n
		}
		rules = append(rules, rule)
	}
	if len(rlsErrs) > 0 {
		errs["rls"] = rlsErrs
	}
	if len(errs) > 0 {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": errs})
	}
	for _, x := range res {
		if x.ID != itoa(f.dashboard.ID) && x.ID != f.dashboard.Slug && x.ID != f.dashboard.EmbedUUID {
			return jsonResp(http.StatusBadRequest, map[string]any{"message": "EmbeddedDashboard not found."})
		}
	}
	u, ok := raw["user"].(map[string]any)
	if !ok {
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	user := guestjwt.User{}
	user.Username, _ = u["username"].(string)
	user.FirstName, _ = u["first_name"].(string)
	user.LastName, _ = u["last_name"].(string)
	tok, err := guestjwt.Mint([]byte(f.opt.GuestSecret), guestjwt.MintOptions{
		User: user, Resources: res, RLSRules: rules, Audience: f.opt.GuestAudience, Now: st.now, TTL: 300 * time.Second,
		Rev: f.guestRev(),
	})
	if err != nil {
		return jsonResp(http.StatusInternalServerError, map[string]any{"message": "Fatal error"})
	}
	return jsonResp(http.StatusOK, map[string]any{"token": tok})
}

// dashboardFor resolves id or slug; a guest may read it when a token
// resource names the dashboard's id or embed uuid.
func (f *Fake) dashboardFor(r *http.Request, st *reqState) (resp, bool) {
	key := r.PathValue("idOrSlug")
	f.mu.Lock()
	_, extra := f.extra[atoi(key)]
	f.mu.Unlock()
	if extra && st.guest == nil {
		return resp{}, true
	}
	if key != itoa(f.dashboard.ID) && key != f.dashboard.Slug {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"}), false
	}
	if u := st.caller(); u != nil && !slices.Contains(u.Roles, "Admin") {
		// DashboardAccessFilter: a dashboard without charts is visible to
		// its owners (admin) and admins only; 6.1.0 answers 404.
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"}), false
	}
	if st.caller() == nil && st.guest != nil {
		ok := slices.ContainsFunc(st.guest.Resources, func(res guestjwt.Resource) bool {
			return res.Type == "dashboard" && (res.ID == itoa(f.dashboard.ID) || res.ID == f.dashboard.EmbedUUID)
		})
		if !ok {
			return jsonResp(http.StatusForbidden, map[string]any{"message": "Forbidden"}), false
		}
	}
	return resp{}, true
}

func (f *Fake) getDashboard(r *http.Request, st *reqState) resp {
	if res, ok := f.dashboardFor(r, st); !ok {
		return res
	}
	d := f.dashboard
	f.mu.Lock()
	if title, ok := f.extra[atoi(r.PathValue("idOrSlug"))]; ok {
		d = Dashboard{ID: atoi(r.PathValue("idOrSlug")), Slug: "", Title: title}
	}
	f.mu.Unlock()
	return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
		"id": d.ID, "slug": d.Slug, "dashboard_title": d.Title, "published": true,
		"url": "/superset/dashboard/" + d.Slug + "/", "owners": []any{}, "roles": []any{},
		"charts": []any{}, "tags": []any{}, "css": nil, "json_metadata": "", "position_json": nil,
		"certified_by": nil, "certification_details": nil, "is_managed_externally": false,
	}})
}

func (f *Fake) getEmbedded(r *http.Request, st *reqState) resp {
	if res, ok := f.dashboardFor(r, st); !ok {
		return res
	}
	if k := r.PathValue("idOrSlug"); k != itoa(f.dashboard.ID) && k != f.dashboard.Slug {
		return jsonResp(http.StatusNotFound, map[string]any{"message": "Not found"})
	}
	domains := f.opt.AllowedDomains
	if domains == nil {
		domains = []string{}
	}
	return jsonResp(http.StatusOK, map[string]any{"result": map[string]any{
		"allowed_domains": domains, "dashboard_id": itoa(f.dashboard.ID), "uuid": f.dashboard.EmbedUUID,
		"changed_by": map[string]any{"id": 1, "username": "admin", "first_name": "Ada", "last_name": "Admin"},
		"changed_on": f.created.Format("2006-01-02T15:04:05.000000"),
	}})
}

// listRoles is FAB's role list (ids as on a fresh Superset).
func (f *Fake) listRoles(r *http.Request, st *reqState) resp {
	result := []any{}
	ids := []int{}
	for _, n := range []string{"Admin", "Public", "Alpha", "Gamma"} {
		result = append(result, map[string]any{"id": roleID(n, 0), "name": n})
		ids = append(ids, roleID(n, 0))
	}
	return jsonResp(http.StatusOK, map[string]any{"count": len(ids), "ids": ids, "result": result})
}

// createDashboard accepts POST /api/v1/dashboard/ (a Superset API: CSRF
// applies even with a Bearer). Created dashboards are readable by id only
// and cannot be embedded.
func (f *Fake) createDashboard(r *http.Request, st *reqState) resp {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return jsonResp(http.StatusBadRequest, map[string]any{"message": "Request is not JSON"})
	}
	title, _ := body["dashboard_title"].(string)
	f.mu.Lock()
	id := f.dashboard.ID + 1 + len(f.extra)
	f.extra[id] = title
	f.mu.Unlock()
	return jsonResp(http.StatusCreated, map[string]any{"id": id, "result": body})
}

// cannotClearRoles is FAB 5.0.2's message verbatim, the source's line
// continuation spaces included.
const cannotClearRoles = "Cannot clear all roles unless at least one group is                              assigned!"
