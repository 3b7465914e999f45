package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/metrics"
)

var updateDoc = flag.Bool("update", false, "rewrite docs/metrics.md from the running gateway's registry")

const metricsDoc = "../docs/metrics.md"

// TestMetricsDoc builds a whole gateway (embedded store, every credential
// package) and compares docs/metrics.md with the metric families its live
// registry holds. Regenerate with:
//
//	go test ./gateway -run TestMetricsDoc -update
func TestMetricsDoc(t *testing.T) {
	dir := t.TempDir()
	secret := make([]byte, 48)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "superset-secret-key")
	if err := os.WriteFile(key, []byte(hex.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := "listen: 127.0.0.1:0\npublic_url: http://127.0.0.1:8080\nupstreams: [http://127.0.0.1:1]\n" +
		"store:\n  data_dir: " + dir + "\nmetrics:\n  listen: \"\"\nsuperset:\n  service_user_id: 1\n  secret_key_file: " + key + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := config.LoadChecked(cfgPath, nil, accesstoken.MinPepperLen, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops the reconciler
	g, err := gateway.New(ctx, gateway.Options{Config: l})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.CertExpiryObserver() // registered only when TLS is on
	fams, err := g.MetricFamilies()
	if err != nil {
		t.Fatal(err)
	}
	want := metrics.Doc(fams)
	if *updateDoc {
		if err := os.WriteFile(metricsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("docs/metrics.md disagrees with the registry of a running gateway; regenerate with\n\tgo test ./gateway -run TestMetricsDoc -update\n(%d families registered)", strings.Count(want, "\n| `"))
	}
}
