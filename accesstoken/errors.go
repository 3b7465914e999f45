package accesstoken

import "errors"

// Sentinel errors of the management API. Store failures wrap
// store.ErrUnavailable as well as ErrUnavailable.
var (
	// ErrNotFound: no such token (or not the caller's).
	ErrNotFound = errors.New("accesstoken: not found")
	// ErrInvalid: a Create argument is out of policy (name, scope, expiry,
	// CIDR); the message says which, and is safe to show the user.
	ErrInvalid = errors.New("accesstoken: invalid request")
	// ErrTooMany: the owner already holds Policy.MaxPerUser live tokens.
	ErrTooMany = errors.New("accesstoken: too many tokens")
	// ErrUnavailable: the store could not answer.
	ErrUnavailable = errors.New("accesstoken: store unavailable")
	// ErrConfig reports invalid options.
	ErrConfig = errors.New("accesstoken: invalid options")
	// ErrSeal: sealed upstream credentials did not open under any key.
	ErrSeal = errors.New("accesstoken: cannot open sealed value")
)
