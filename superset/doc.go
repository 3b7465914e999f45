// Package superset holds what the gateway knows about Apache Superset 6.1's
// HTTP surface that is not a codec: the route table that classifies requests
// (for rate limits, metrics and policy) and recognisers for the requests
// that log in, log out and administer users.
//
// Subpackages: flaskcookie (the Flask session cookie), apijwt (API access and
// refresh JWTs), guestjwt (embedded guest tokens), client (a small API
// client), fakesuperset (an in-process fake of Superset for tests).
package superset
