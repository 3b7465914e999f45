package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// roleID looks a role's id up through FAB's roles API (admin Bearer at).
func roleID(t *testing.T, admin *client, at, name string) int {
	t.Helper()
	var roles struct {
		Result []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"result"`
	}
	r := admin.get("/api/v1/security/roles/?q=(page_size:100)", bearer(at))
	if err := json.Unmarshal(r.body, &roles); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("list roles: %d %v", r.StatusCode, err)
	}
	for _, ro := range roles.Result {
		if ro.Name == name {
			return ro.ID
		}
	}
	t.Fatalf("no role %q in %s", name, r.body)
	return 0
}

// createUser creates an active throw-away user with a unique name and the
// role roleID through the users API (POST → 201 {"id": n}, no CSRF needed
// even with a Bearer) and returns its pk and credentials.
func createUser(t *testing.T, admin *client, at string, roleID int) (string, Credentials) {
	t.Helper()
	name := fmt.Sprintf("conf-%d", time.Now().UnixNano())
	cr := Credentials{Username: name, Password: "pw-" + name}
	r := admin.do(http.MethodPost, "/api/v1/security/users/", map[string]any{
		"first_name": "Conf", "last_name": "User", "username": name, "email": name + "@example.com",
		"password": cr.Password, "active": true, "roles": []int{roleID},
	}, bearer(at))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/v1/security/users/: %d %s, want 201", r.StatusCode, r.body)
	}
	id, _ := r.json(t)["id"].(json.Number)
	if id == "" {
		t.Fatalf("POST /api/v1/security/users/: no numeric id: %s", r.body)
	}
	return id.String(), cr
}

// getUser reads GET /api/v1/security/users/<pk> → 200 {"id", "result"}.
func getUser(t *testing.T, admin *client, at, pk string) map[string]any {
	t.Helper()
	r := admin.get("/api/v1/security/users/"+pk, bearer(at))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/security/users/%s: %d %.200s", pk, r.StatusCode, r.body)
	}
	res, ok := r.json(t)["result"].(map[string]any)
	if !ok {
		t.Fatalf("GET /api/v1/security/users/%s: no result object: %s", pk, r.body)
	}
	return res
}

// hasOnlyRole reports whether a users-API result's roles are exactly
// [{"id": id, "name": name}].
func hasOnlyRole(u map[string]any, id int, name string) bool {
	roles, _ := u["roles"].([]any)
	if len(roles) != 1 {
		return false
	}
	ro, _ := roles[0].(map[string]any)
	n, _ := ro["id"].(json.Number)
	return n.String() == fmt.Sprint(id) && ro["name"] == name
}

func itoa(i int) string { return strconv.Itoa(i) }
