package admin

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/superset-gateway/superset-gateway/epoch"
	"github.com/superset-gateway/superset-gateway/superset/client"
)

// Users resolves what an admin typed into a Superset user;
// client.UserResolver implements it with Superset's users API as the
// service user. ResolveUser answers client.ErrUnknownUser when Superset has
// no such user and client.ErrNoServiceUser when it cannot ask.
type Users interface {
	ResolveUser(ctx context.Context, ref string) (client.User, error)
}

var _ Users = client.UserResolver{}

// maxUserRef is the longest id or username accepted (FAB's username
// column is 64 characters).
const maxUserRef = 64

// UserRef is the user an admin named, resolved: the id to stamp and, when
// Superset was asked, the username.
type UserRef struct {
	ID       string
	Username string
}

// Audit reasons of a user reference that did not resolve.
const (
	ReasonBadUserRef  = "bad_user_ref"
	ReasonUnknownUser = "unknown_user"
)

// ResolveUserRef turns ref, a Superset user id or username typed by an
// admin, into the user to revoke. A plain decimal number is an id (a
// username made of digits only must be given by its id); anything else is
// a username. Before this, "alice" typed as an id was taken as the user id
// "alice": the revocation was reported done and revoked nobody.
//
// Answers: 400 for what cannot be an id or a username, or a username when
// users is nil or has no service user to ask with; 404 when Superset has
// no such user; 503 when Superset cannot be asked. With users nil a
// decimal id is accepted unchecked. Messages are for the admin and quote
// ref (JSON- or HTML-escaped by the writer); reason is the audit reason.
func ResolveUserRef(ctx context.Context, users Users, ref string) (u UserRef, reason string, err error) {
	bad := func(msg string) (UserRef, string, error) {
		return UserRef{}, ReasonBadUserRef, &HTTPError{Code: http.StatusBadRequest, Msg: msg}
	}
	if ref == "" {
		return bad("Give a Superset user id (a number) or username.")
	}
	if !ValidUserRef(ref) {
		return bad("That is neither a Superset user id (a number) nor a username.")
	}
	numeric := epoch.ValidUserID(ref)
	if users == nil {
		if numeric {
			return UserRef{ID: ref}, "", nil
		}
		return bad(strconv.Quote(ref) + " is not a Superset user id (a plain number); usernames are looked up only when superset.service_user_id is set.")
	}
	su, err := users.ResolveUser(ctx, ref)
	switch {
	case errors.Is(err, client.ErrNoServiceUser):
		if numeric {
			return UserRef{ID: ref}, "", nil
		}
		return bad(strconv.Quote(ref) + " is not a Superset user id (a plain number); usernames are looked up only when superset.service_user_id is set.")
	case errors.Is(err, client.ErrUnknownUser):
		what := "username"
		if numeric {
			what = "id"
		}
		return UserRef{}, ReasonUnknownUser, &HTTPError{Code: http.StatusNotFound,
			Msg: "Superset has no user with the " + what + " " + strconv.Quote(ref) + "; nothing was revoked.", Err: err}
	case err != nil:
		return UserRef{}, "superset_unavailable", &HTTPError{Code: http.StatusServiceUnavailable,
			Msg: "Superset could not be asked who " + strconv.Quote(ref) + " is; nothing was revoked. Try again.", Err: err}
	}
	id := strconv.Itoa(su.ID)
	if !epoch.ValidUserID(id) {
		return UserRef{}, "superset_unavailable", &HTTPError{Code: http.StatusServiceUnavailable,
			Msg: "Superset answered with no usable user id; nothing was revoked.", Err: errors.New("admin: user without id")}
	}
	return UserRef{ID: id, Username: su.Username}, "", nil
}

// ValidUserRef reports whether ref can be an id or a username: at most 64
// bytes of valid UTF-8, printable, no spaces at either end. The CLI checks
// it before calling the API.
func ValidUserRef(ref string) bool {
	if len(ref) > maxUserRef || !utf8.ValidString(ref) {
		return false
	}
	for _, r := range ref {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	first, _ := utf8.DecodeRuneInString(ref)
	last, _ := utf8.DecodeLastRuneInString(ref)
	return !unicode.IsSpace(first) && !unicode.IsSpace(last)
}
