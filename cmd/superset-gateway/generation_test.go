package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
)

// stampsOf returns the global epoch.stamp audit lines of a gateway's stdout.
func stampsOf(g *runningGateway) string {
	return grepLines(g.stdout.String(), `"event":"epoch.stamp"`)
}

func stop(g *runningGateway) {
	g.cancel()
	code := <-g.done
	g.done <- code // for the cleanup
}

// Issue 19: the first start on a brand-new store is not reported as a
// wipe, but a store lost under a data_dir that saw it still is; both stamp
// the global epoch. Before the fix every first start said store_wiped.
func TestFreshStoreNewVersusWipedEmbedded(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	y := baseYAML(t, freePort(t), "", backend(t, "a").URL, data)

	g := startGateway(t, dir, y, nil)
	first := stampsOf(g)
	if !strings.Contains(first, `"reason":"store_created"`) || strings.Contains(first, "store_wiped") {
		t.Fatalf("first start on a new store: want one store_created stamp, got %q", first)
	}
	if strings.Contains(g.stderr.String(), "was wiped") {
		t.Fatalf("first start logs a wipe: %s", grepLines(g.stderr.String(), "wiped"))
	}
	stop(g)

	g = startGateway(t, dir, y, nil)
	if s := stampsOf(g); s != "" {
		t.Fatalf("second start on the same store stamped: %q", s)
	}
	stop(g)

	// The store file is lost, data_dir (and its memory) is not.
	if err := os.Remove(filepath.Join(data, gateway.BoltFileName)); err != nil {
		t.Fatal(err)
	}
	g = startGateway(t, dir, y, nil)
	s := stampsOf(g)
	if !strings.Contains(s, `"reason":"store_wiped"`) || strings.Contains(s, "store_created") {
		t.Fatalf("start after the store file was deleted: want store_wiped, got %q", s)
	}
	if !strings.Contains(g.stderr.String(), "the store was wiped") {
		t.Fatalf("no wipe warning: %s", g.stderr.String())
	}
}

func TestFreshStoreNewVersusWipedRedis(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	dir := t.TempDir()
	y := baseYAML(t, freePort(t), "", backend(t, "a").URL, filepath.Join(dir, "data"))
	env := []string{"SG_STORE_REDIS_URL=" + rs.URL()}

	g := startGateway(t, dir, y, env)
	if s := stampsOf(g); !strings.Contains(s, `"reason":"store_created"`) || strings.Contains(s, "store_wiped") {
		t.Fatalf("first start on an empty Redis: want store_created, got %q", s)
	}
	stop(g)
	if _, err := rs.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	g = startGateway(t, dir, y, env)
	if s := stampsOf(g); !strings.Contains(s, `"reason":"store_wiped"`) {
		t.Fatalf("start after FLUSHALL while stopped: want store_wiped, got %q", s)
	}
	if v, err := rs.Do("GET", "epoch:global"); err != nil || v == "" {
		t.Fatalf("global epoch not stamped after the wipe: %q %v", v, err)
	}
}
