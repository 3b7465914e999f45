package session

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the package wrap at most one of them,
// or store.ErrUnavailable when the store could not answer.
var (
	// ErrNotFound means there is no live session for the id: never
	// created, expired, ended or rotated away. The caller is anonymous.
	ErrNotFound = errors.New("session: not found")
	// ErrRotated means the id was rotated away (a login changed it) within
	// the last RotatedGrace. It wraps ErrNotFound: the caller is
	// anonymous all the same, but the answer must leave the client's
	// cookie alone (see Vault.Authenticate).
	ErrRotated = fmt.Errorf("%w: rotated away", ErrNotFound)
	// ErrRevoked means the session's login is not after its user's or
	// the global invalidation epoch; the vault destroyed it on sight. It
	// wraps ErrNotFound: the caller is anonymous, and its cookie is
	// cleared.
	ErrRevoked = fmt.Errorf("%w: revoked", ErrNotFound)
	// ErrAnonymous means the session is live but nobody is signed in to
	// it. It wraps ErrNotFound: there is no signed-in session.
	ErrAnonymous = fmt.Errorf("%w: not signed in", ErrNotFound)
	// ErrBadCookie means the gateway cookie did not decode under any
	// configured key (forged, truncated, oversized, signed with a retired
	// key). The caller is anonymous.
	ErrBadCookie = errors.New("session: bad cookie")
	// ErrExpired means the record exists but its idle or absolute timeout
	// has passed; the vault deletes it.
	ErrExpired = errors.New("session: expired")
	// ErrNotOwner means a user tried to end a session that is not theirs.
	ErrNotOwner = errors.New("session: not owner")
)
