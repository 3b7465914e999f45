package deploytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/deploy/image"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

const composeDir = "../compose"

// loadCompose loads dir/compose.yaml the way `docker compose` does (schema
// validation, interpolation, consistency of the referenced secrets,
// configs, networks and volumes) with an empty environment, so the result
// does not depend on the machine running the test.
func loadCompose(ctx context.Context, dir string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv(nil), cli.WithConsistency(true))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}

// checkCompose returns every problem found in the compose deployment in
// dir, whose secrets must already be generated.
func checkCompose(ctx context.Context, dir string) []error {
	p, err := loadCompose(ctx, dir)
	if err != nil {
		return []error{fmt.Errorf("compose-go: %w", err)}
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	abs := func(path string) string {
		if filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(dir, path)
	}
	exists := func(what, path string) {
		if _, err := os.Stat(abs(path)); err != nil {
			bad("%s: %v", what, err)
		}
	}

	// Every file the deployment names exists.
	for name, s := range p.Secrets {
		exists("secret "+name, s.File)
	}
	for name, c := range p.Configs {
		exists("config "+name, c.File)
	}
	for name, s := range p.Services {
		if b := s.Build; b != nil {
			exists("service "+name+" build context", b.Context)
			exists("service "+name+" dockerfile", filepath.Join(abs(b.Context), b.Dockerfile))
		}
		for _, e := range s.EnvFiles {
			exists("service "+name+" env_file", e.Path)
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				exists("service "+name+" bind mount", v.Source)
			}
		}
		// Every service is bounded: one runaway container must not starve
		// the gateway (or Superset) of the host.
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil ||
			s.Deploy.Resources.Limits.NanoCPUs <= 0 || s.Deploy.Resources.Limits.MemoryBytes <= 0 {
			bad("service %s: no deploy.resources.limits with cpus and memory", name)
		}
	}

	gw, ok := p.Services["gateway"]
	if !ok {
		return append(errs, errors.New("no gateway service"))
	}
	errs = append(errs, checkGatewayService(p, gw, dir)...)
	return errs
}

// checkGatewayService checks the gateway service's hardening and runs its
// config, with the secrets compose gives it, through check-config's checks.
func checkGatewayService(p *types.Project, gw types.ServiceConfig, dir string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if gw.Deploy == nil || gw.Deploy.Replicas == nil || *gw.Deploy.Replicas < 2 {
		bad("gateway: want at least 2 replicas")
	}
	if !gw.ReadOnly {
		bad("gateway: root filesystem not read_only")
	}
	if gw.User != image.User {
		bad("gateway: user %q, want %s (the image's non-root user)", gw.User, image.User)
	}
	if !slices.Contains(gw.CapDrop, "ALL") {
		bad("gateway: cap_drop lacks ALL")
	}
	// The image has no shell: the check must exec the binary itself.
	if hc := gw.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 3 || hc.Test[0] != "CMD" ||
		hc.Test[1] != image.BinaryPath || hc.Test[2] != "probe" || !strings.HasSuffix(hc.Test[len(hc.Test)-1], "/-/readyz") {
		bad("gateway: no health check running %s probe …/-/readyz", image.BinaryPath)
	}

	// The config the command names is one compose mounts.
	i := slices.Index(gw.Command, "--config")
	if i < 0 || i+1 >= len(gw.Command) {
		return append(errs, fmt.Errorf("gateway: command %q has no --config FILE", gw.Command))
	}
	target := gw.Command[i+1]
	var source string
	for _, c := range gw.Configs {
		if c.Target == target {
			source = p.Configs[c.Source].File
		}
	}
	if source == "" {
		return append(errs, fmt.Errorf("gateway: --config %s is not a config compose mounts", target))
	}
	if !filepath.IsAbs(source) {
		source = filepath.Join(dir, source)
	}
	text, err := os.ReadFile(source)
	if err != nil {
		return append(errs, fmt.Errorf("gateway config: %w", err))
	}

	// Where the container sees /run/secrets/<x>, the test reads the file
	// compose would mount there. A path to a secret the service is not
	// given would be missing in the container: refused.
	granted := map[string]string{} // secret name → the file the test reads for it
	cfgText := string(text)
	for _, s := range gw.Secrets {
		t := s.Target
		if t == "" {
			t = s.Source
		}
		if !strings.HasPrefix(t, "/") {
			t = "/run/secrets/" + t
		}
		src := p.Secrets[s.Source].File
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		granted[s.Source] = src
		cfgText = strings.ReplaceAll(cfgText, t+"\n", src+"\n")
	}
	for _, m := range regexp.MustCompile(`/run/secrets/[A-Za-z0-9_.-]+`).FindAllString(cfgText, -1) {
		bad("gateway config names %s, a secret the gateway service is not given", m)
	}
	tmp := filepath.Join(os.TempDir(), fmt.Sprintf("sgw-compose-%d.yaml", os.Getpid()))
	defer os.Remove(tmp)
	if err := os.WriteFile(tmp, []byte(cfgText), 0o600); err != nil {
		return append(errs, err)
	}
	var env []string
	for k, v := range gw.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	l, err := config.LoadChecked(tmp, env, accesstoken.MinPepperLen, func(c *config.Config) error {
		if u := c.Store.RedisURL; u != "" {
			if _, err := redis.ParseURL(u); err != nil {
				return fmt.Errorf("config: store.redis_url: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return append(errs, fmt.Errorf("gateway check-config: %w", err))
	}
	if err := gateway.Check(l.Config); err != nil {
		return append(errs, fmt.Errorf("gateway check-config: %w", err))
	}
	cfg := l.Config

	// Several replicas need one store and one set of cookie keys: keys
	// generated per replica into data_dir would make every replica refuse
	// the others' cookies.
	if cfg.Session.CookieKeysFile == "" {
		bad("gateway: replicas share no session.cookie_keys_file")
	}
	if cfg.Store.RedisURL == "" {
		bad("gateway: replicas share no store.redis_url")
	} else if u, err := url.Parse(cfg.Store.RedisURL); err == nil {
		r, ok := p.Services[u.Hostname()]
		switch {
		case !ok:
			bad("gateway: store.redis_url host %q is no compose service", u.Hostname())
		case !strings.Contains(strings.Join(r.Command, " "), "--appendonly yes --appendfsync always"):
			bad("gateway store %s: not AOF with appendfsync always (a revocation could be lost in a crash)", u.Hostname())
		case !shareNetwork(gw, r):
			bad("gateway store %s: on no network of the gateway", u.Hostname())
		}
	}
	// Prometheus scrapes the gateways where they serve metrics.
	if err := checkRules(p, dir); err != nil {
		bad("%v", err)
	}
	if err := checkScrape(p, cfg.Metrics.Listen, dir); err != nil {
		errs = append(errs, err)
	}
	// Superset is reached only through the gateway, and reads the same
	// SECRET_KEY file the gateway verifies its cookies with.
	for _, up := range cfg.Upstreams {
		u, err := url.Parse(up)
		if err != nil {
			continue
		}
		s, ok := p.Services[u.Hostname()]
		if !ok {
			bad("gateway upstream %q is no compose service", u.Hostname())
			continue
		}
		if len(s.Ports) > 0 {
			bad("upstream %s publishes ports: clients could go around the gateway", u.Hostname())
		}
		if !shareNetwork(gw, s) {
			bad("upstream %s: on no network of the gateway", u.Hostname())
		}
		for name, src := range granted {
			if src == cfg.Superset.SecretKeyFile && !slices.ContainsFunc(s.Secrets, func(x types.ServiceSecretConfig) bool { return x.Source == name }) {
				bad("upstream %s is not given secret %s, the gateway's superset.secret_key_file", u.Hostname(), name)
			}
		}
	}
	return errs
}

// checkRules: the prometheus service loads a rule file that compose mounts
// for it and that is the shipped, promtool-tested deploy/prometheus/alerts.yml.
func checkRules(p *types.Project, dir string) error {
	prom, ok := p.Services["prometheus"]
	if !ok {
		return errors.New("no prometheus service")
	}
	mounted := map[string]string{} // target → host file
	for _, c := range prom.Configs {
		src := p.Configs[c.Source].File
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		mounted[c.Target] = src
	}
	main, ok := mounted["/etc/prometheus/prometheus.yml"]
	if !ok {
		return errors.New("prometheus: no /etc/prometheus/prometheus.yml mounted")
	}
	b, err := os.ReadFile(main)
	if err != nil {
		return err
	}
	var pc struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(b, &pc); err != nil {
		return fmt.Errorf("prometheus config: %w", err)
	}
	shipped, err := os.ReadFile(shippedAlerts)
	if err != nil {
		return err
	}
	if len(pc.RuleFiles) == 0 {
		return errors.New("prometheus loads no rule file (rule_files)")
	}
	for _, rf := range pc.RuleFiles {
		src, ok := mounted[rf]
		if !ok {
			return fmt.Errorf("prometheus rule file %s is not mounted into the prometheus service", rf)
		}
		if got, err := os.ReadFile(src); err != nil || string(got) != string(shipped) {
			return fmt.Errorf("prometheus rule file %s is not the shipped %s (%v)", rf, shippedAlerts, err)
		}
	}
	return nil
}

// checkScrape finds the scrape job of the prometheus service's config that
// resolves the gateway service's name, and checks its port is the one
// metrics.listen binds.
func checkScrape(p *types.Project, metricsListen, dir string) error {
	prom, ok := p.Services["prometheus"]
	if !ok {
		return errors.New("no prometheus service")
	}
	_, port, err := net.SplitHostPort(metricsListen)
	if err != nil || strings.HasPrefix(metricsListen, "127.") || strings.HasPrefix(metricsListen, "localhost:") {
		return fmt.Errorf("gateway metrics.listen %q: not reachable from the prometheus service", metricsListen)
	}
	for _, c := range prom.Configs {
		src := p.Configs[c.Source].File
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		var pc struct {
			ScrapeConfigs []struct {
				DNSSD []struct {
					Names []string `yaml:"names"`
					Port  int      `yaml:"port"`
				} `yaml:"dns_sd_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := yaml.Unmarshal(b, &pc); err != nil {
			return fmt.Errorf("prometheus config: %w", err)
		}
		for _, sc := range pc.ScrapeConfigs {
			for _, d := range sc.DNSSD {
				if slices.Contains(d.Names, "gateway") && strconv.Itoa(d.Port) == port {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("prometheus scrapes no gateway:%s (metrics.listen)", port)
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if rel == "secrets/.gitignore" || !strings.HasPrefix(rel, "secrets/") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			info, _ := d.Info()
			return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
		}
		return nil // an operator's own generated secrets are not copied
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// genSecrets runs the deployment's own gen-secrets.sh, so the secrets it
// writes are the ones judged by the gateway's secret policy.
func genSecrets(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(dir, "gen-secrets.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("gen-secrets.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "admin API token") {
		t.Errorf("gen-secrets.sh printed no admin API token:\n%s", out)
	}
}

func TestComposeDeployment(t *testing.T) {
	dir := copyDir(t, composeDir)
	genSecrets(t, dir)
	for _, err := range checkCompose(t.Context(), dir) {
		t.Error(err)
	}
	// The generated secrets are private on the host.
	if info, err := os.Stat(filepath.Join(dir, "secrets")); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("secrets directory: %v, mode %v; want 0700", err, info.Mode().Perm())
	}
}

// TestComposeDeploymentMutations breaks a fresh copy of the deployment in
// one way each; checkCompose must report it.
func TestComposeDeploymentMutations(t *testing.T) {
	type edit struct{ file, old, new string }
	for _, tc := range []struct {
		name  string
		edits []edit
		rm    string
		want  string
	}{
		{name: "compose schema", edits: []edit{{"compose.yaml", "replicas: 2", "replicas: two"}}, want: "compose-go"},
		{name: "unknown compose key", edits: []edit{{"compose.yaml", "    read_only: true", "    readonly: true"}}, want: "compose-go"},
		{name: "undefined secret", edits: []edit{{"compose.yaml", "      - gateway_admin_tokens\n", "      - gateway_admin_token\n"}}, want: "compose-go"},
		{name: "missing config file", rm: "superset/init.sh", want: "config superset_init"},
		{name: "missing dockerfile", rm: "superset/Dockerfile", want: "dockerfile"},
		{name: "secret not given to the gateway", edits: []edit{{"compose.yaml", "      - gateway_cookie_keys\n", ""}}, want: "/run/secrets/gateway_cookie_keys, a secret the gateway service is not given"},
		{name: "unknown gateway key", edits: []edit{{"gateway/gateway.yaml", "audit:\n", "audt:\n"}}, want: "gateway check-config"},
		{name: "weak Superset key", edits: []edit{{"gen-secrets.sh", `put superset_secret_key "$(rand 48)"`, `put superset_secret_key changeme`}}, want: "superset.secret_key_file"},
		{name: "bad redis URL", edits: []edit{{"gateway/gateway.yaml", "redis://gateway-redis:6379/0", "redis://gateway-redis:port/0"}}, want: "store.redis_url"},
		{name: "one replica", edits: []edit{{"compose.yaml", "replicas: 2", "replicas: 1"}}, want: "2 replicas"},
		{name: "store without fsync", edits: []edit{{"compose.yaml", `"--appendfsync", "always"`, `"--appendfsync", "everysec"`}}, want: "appendfsync always"},
		{name: "keys per replica", edits: []edit{{"gateway/gateway.yaml", "  cookie_keys_file: /run/secrets/gateway_cookie_keys\n", ""}}, want: "cookie_keys_file"},
		{name: "superset published", edits: []edit{{"compose.yaml", "      start_period: 60s\n", "      start_period: 60s\n    ports: [\"8088:8088\"]\n"}}, want: "go around the gateway"},
		{name: "superset without the shared key", edits: []edit{{"compose.yaml", "  secrets: [superset_secret_key, superset_guest_token_secret, postgres_password]\n", "  secrets: [superset_guest_token_secret, postgres_password]\n"}}, want: "superset.secret_key_file"},
		{name: "no limits", edits: []edit{{"compose.yaml", "        limits: {cpus: \"0.25\", memory: 512M}\n", "        reservations: {cpus: \"0.25\"}\n"}}, want: "superset-beat: no deploy.resources.limits"},
		{name: "root user", edits: []edit{{"compose.yaml", `user: "65532:65532"`, `user: "0:0"`}}, want: "65532"},
		{name: "no readiness check", edits: []edit{{"compose.yaml", "http://127.0.0.1:8080/-/readyz", "http://127.0.0.1:8080/"}}, want: "/-/readyz"},
		{name: "metrics on loopback", edits: []edit{{"gateway/gateway.yaml", "listen: 0.0.0.0:9464", "listen: 127.0.0.1:9464"}}, want: "not reachable from the prometheus service"},
		{name: "no alert rules", edits: []edit{{"prometheus/prometheus.yml", "rule_files: [/etc/prometheus/alerts.yml]\n", ""}}, want: "prometheus loads no rule file"},
		{name: "rules not mounted", edits: []edit{{"compose.yaml", "        target: /etc/prometheus/alerts.yml\n", "        target: /etc/prometheus/rules.yml\n"}}, want: "not mounted into the prometheus service"},
		{name: "stale rules", edits: []edit{{"prometheus/alerts.yml", "severity: critical", "severity: page"}}, want: "is not the shipped"},
		{name: "scrape port", edits: []edit{{"prometheus/prometheus.yml", "port: 9464", "port: 9090"}}, want: "prometheus scrapes no gateway:9464"},
		{name: "shell health check", edits: []edit{{"compose.yaml", `["CMD", "/superset-gateway", "probe", "http://127.0.0.1:8080/-/readyz"]`, `["CMD-SHELL", "wget -qO- http://127.0.0.1:8080/-/readyz"]`}}, want: "/-/readyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, composeDir)
			for _, e := range tc.edits {
				path := filepath.Join(dir, e.file)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), e.old) {
					t.Fatalf("mutation out of date: %s no longer holds %q", e.file, e.old)
				}
				if err := os.WriteFile(path, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if tc.rm != "" {
				if err := os.Remove(filepath.Join(dir, tc.rm)); err != nil {
					t.Fatal(err)
				}
			}
			genSecrets(t, dir)
			errs := checkCompose(t.Context(), dir)
			joined := errors.Join(errs...)
			if joined == nil || !strings.Contains(joined.Error(), tc.want) {
				t.Errorf("checkCompose: %v; want an error containing %q", joined, tc.want)
			}
		})
	}
}
