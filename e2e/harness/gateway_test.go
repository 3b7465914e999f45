package harness

import (
	"testing"

	"github.com/superset-gateway/superset-gateway/config"
)

// TestGatewayConfigParses keeps the generated config in step with the
// gateway's own loader (unknown keys are an error there).
func TestGatewayConfigParses(t *testing.T) {
	s := &Superset{home: "/tmp/home", set: settings{GuestTokenAudience: `aud "x"`}}
	b := gatewayConfig(GatewayOptions{
		Superset:  s,
		Upstreams: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"},
		DataDir:   "/tmp/data dir",
	}, "127.0.0.1:8080", "127.0.0.1:9464")
	c, err := config.Parse(b, nil)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, b)
	}
	if c.Listen != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || len(c.Upstreams) != 2 ||
		c.Store.DataDir != "/tmp/data dir" || c.Superset.GuestTokenAudience != `aud "x"` ||
		c.Superset.SecretKeyFile != "/tmp/home/secret_key" || c.Metrics.Listen != "127.0.0.1:9464" {
		t.Errorf("parsed config %+v", c)
	}
}
