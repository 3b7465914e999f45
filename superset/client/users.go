package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrUnknownUser is returned by UserResolver when Superset has no user by
// the id or username given.
var ErrUnknownUser = errors.New("client: no such Superset user")

// UserByID is GET /api/v1/security/users/<id> (FAB's security API); a 404
// is ErrUnknownUser.
func (c *Client) UserByID(ctx context.Context, bearer string, id int) (User, error) {
	var out struct {
		Result User `json:"result"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/security/users/"+strconv.Itoa(id), bearer, nil, &out, nil)
	if StatusCode(err) == http.StatusNotFound {
		return User{}, fmt.Errorf("%w: id %d", ErrUnknownUser, id)
	}
	if err == nil && out.Result.ID == 0 {
		// FAB's show answer leaves id out of result when show_columns
		// omit it; 6.1 lists it, but the id asked for is the id.
		out.Result.ID = id
	}
	return out.Result, err
}

// UserByName finds the user whose username equals name exactly
// (GET /api/v1/security/users/?q=(filters:!((col:username,opr:eq,value:'…')))).
// No match is ErrUnknownUser; more than one is an error (FAB usernames are
// unique, so that is a listing that cannot be trusted).
func (c *Client) UserByName(ctx context.Context, bearer, name string) (User, error) {
	var out struct {
		Count  int    `json:"count"`
		Result []User `json:"result"`
	}
	q := "(filters:!((col:username,opr:eq,value:" + risonString(name) + ")))"
	if err := c.do(ctx, http.MethodGet, "/api/v1/security/users/?q="+url.QueryEscape(q), bearer, nil, &out, nil); err != nil {
		return User{}, err
	}
	var found []User
	for _, u := range out.Result {
		// The filter is the database's comparison (and the Go fake
		// ignores it); the match is ours.
		if u.Username == name {
			found = append(found, u)
		}
	}
	switch {
	case len(found) == 0:
		return User{}, ErrUnknownUser
	case len(found) > 1 || found[0].ID <= 0:
		return User{}, fmt.Errorf("client: users list: %d users named alike", len(found))
	}
	return found[0], nil
}

// risonString quotes s as a Rison string: '…' with ! and ' escaped by !.
func risonString(s string) string {
	r := strings.NewReplacer("!", "!!", "'", "!'")
	return "'" + r.Replace(s) + "'"
}

// UserResolver finds a Superset user by id or username as the service user
// (the identity that resolves dashboard aliases).
type UserResolver struct {
	API      *Client
	Identity *ServiceIdentity
}

// ResolveUser looks ref up: a plain decimal number is a user id, anything
// else a username. ErrUnknownUser when Superset has no such user;
// ErrNoServiceUser when no service user is configured.
func (r UserResolver) ResolveUser(ctx context.Context, ref string) (User, error) {
	bearer, err := r.Identity.Bearer()
	if err != nil {
		return User{}, err
	}
	if id, err := strconv.Atoi(ref); err == nil && id > 0 && strconv.Itoa(id) == ref {
		return r.API.UserByID(ctx, bearer, id)
	}
	return r.API.UserByName(ctx, bearer, ref)
}
