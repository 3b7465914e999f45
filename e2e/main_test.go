//go:build e2e

// Package e2e runs the gateway's end-to-end tests against a real Apache
// Superset 6.1.0 (installed by make superset-env), real Redis and Chromium.
package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/e2e/harness"
)

// env is the Superset shared by every test of the package: bootstrapped once
// by TestMain, since tests that only read (or mutate only what they create)
// do not interfere and a start costs seconds.
type env struct {
	s *harness.Superset
	c *harness.Cluster
}

// sharedEnv bootstraps on first call; TestMain calls it before any test so a
// Superset that cannot start fails the run at once, never skips it.
var sharedEnv = sync.OnceValues(func() (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	s, err := harness.Bootstrap(ctx, harness.Options{Venv: os.Getenv("SUPERSET_VENV"), Log: os.Stderr})
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	// Two nodes on one metadata DB, for the tests that balance across them.
	c, err := s.Start(ctx, 2)
	if err != nil {
		s.Close()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e: shared Superset: bootstrap %s, start (2 nodes + fixtures) %s\n",
		t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	return &env{s: s, c: c}, nil
})

func TestMain(m *testing.M) {
	e, err := sharedEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot bootstrap Superset %s: %v\n", harness.Version, err)
		os.Exit(1)
	}
	code := m.Run()
	fmt.Fprintf(os.Stderr, "e2e: the Superset pool started %d Supersets besides the shared one\n", pool.close())
	stopSharedLDAP()
	e.c.Stop()
	e.s.Close()
	os.Exit(code)
}

// shared returns the shared Superset and prints its logs if t fails.
func shared(t *testing.T) *env {
	t.Helper()
	e, err := sharedEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.c.Logs())
		}
	})
	return e
}
