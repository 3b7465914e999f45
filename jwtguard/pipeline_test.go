package jwtguard_test

import (
	"net/http"
	"testing"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/gateway/gatewaytest"
	"github.com/superset-gateway/superset-gateway/jwtguard"
)

// chain is the gateway's request path with the JWT stage alone in front
// of next: the production order, not an assembly of this package's own.
func chain(tb testing.TB, g *jwtguard.Guard, ep gateway.EpochChecker, next http.Handler) http.Handler {
	tb.Helper()
	return gatewaytest.Pipeline(tb, gateway.Parts{JWT: g, Epochs: ep}).Middleware(next)
}
