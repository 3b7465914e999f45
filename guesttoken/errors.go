package guesttoken

import "errors"

// Sentinel errors. Expected outcomes of a check are Decisions, not errors;
// these are for the callers of Revoker and for failures that are not the
// token's fault.
var (
	// ErrUnavailable means the store could not answer. The request fails
	// closed (503); it wraps store.ErrUnavailable when that was the cause.
	ErrUnavailable = errors.New("guesttoken: store unavailable")
	// ErrResolve means the dashboard's aliases could not be resolved; no
	// stamp was written.
	ErrResolve = errors.New("guesttoken: cannot resolve dashboard")
	// ErrNoResolver means RevokeDashboardRef was called on a Revoker built
	// without a Resolver.
	ErrNoResolver = errors.New("guesttoken: no resolver configured")
	// ErrBadAlias means an alias is empty, too long or holds characters a
	// dashboard id, slug or uuid never has.
	ErrBadAlias = errors.New("guesttoken: bad dashboard alias")
	// ErrConfig reports invalid Options.
	ErrConfig = errors.New("guesttoken: invalid options")
)
