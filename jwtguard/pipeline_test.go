package jwtguard_test

import (
	"net/http"
	"testing"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/jwtguard"
)

// chain is the gateway's request path with the JWT stage alone in front
// of next: the production order, not an assembly of this package's own.
func chain(tb testing.TB, g *jwtguard.Guard, ep gateway.EpochChecker, next http.Handler) http.Handler {
	tb.Helper()
	pl, err := gateway.NewPipeline(gateway.Parts{JWT: g, Epochs: ep, Refusals: gateway.NewRefuser(gateway.RefuserOptions{})})
	if err != nil {
		tb.Fatal(err)
	}
	return pl.Middleware(next)
}
