package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	e2esuperset "github.com/superset-gateway/superset-gateway/e2e/superset"
)

// templateFormat changes when what the template holds changes, so stale
// caches are rebuilt rather than reused.
const templateFormat = "1"

// ensureTemplate returns a directory holding superset.db after `superset db
// upgrade`, `superset fab create-admin` and `superset init` (about 30 s on
// two cores), building it on first use. Those steps are the slow part of a
// bootstrap and give the same result every time, so the DB is cached next to
// the venv, keyed by the Superset version, the installed dependency set and
// the config file; each run copies it.
//
// Nothing in the template depends on the SECRET_KEY it was built with: FAB
// password hashes (scrypt) are unkeyed, and the template is checked to hold
// no rows in the tables whose columns are encrypted with the key (database
// connections, SSH tunnels, OAuth2 tokens) or signed with it (key_value).
// The admin password it was built with is replaced by the first Start.
func ensureTemplate(ctx context.Context, venv string, logw io.Writer) (string, error) {
	stamp, err := os.ReadFile(filepath.Join(venv, ".complete"))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoVenv, err)
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(Version), stamp, e2esuperset.Config(), []byte(templateFormat)} {
		h.Write(part)
		h.Write([]byte{0})
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(filepath.Dir(filepath.Clean(venv)), "template-"+key)
	if _, err := os.Stat(filepath.Join(dir, "superset.db")); err == nil {
		return dir, nil
	}

	start := time.Now()
	fmt.Fprintf(logw, "harness: building the Superset metadata template %s (once per install, ~30s)\n", dir)
	// Build next to the final place and rename: a crash or a concurrent
	// builder never leaves a half-made template under the final name.
	work, err := os.MkdirTemp(filepath.Dir(dir), "template-build-")
	if err != nil {
		return "", fmt.Errorf("harness: template: %w", err)
	}
	defer os.RemoveAll(work)
	set := settings{
		SecretKey:          randomString(32),
		GuestTokenSecret:   randomString(32),
		GuestTokenAudience: "template",
		CSRF:               true,
	}
	b, _ := json.Marshal(set)
	if err := os.WriteFile(filepath.Join(work, "settings.json"), b, 0o600); err != nil {
		return "", fmt.Errorf("harness: template: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, "superset_config.py"), e2esuperset.Config(), 0o600); err != nil {
		return "", fmt.Errorf("harness: template: %w", err)
	}
	// The admin's template password is kept beside the DB: the first Start
	// of each home signs in with it and replaces it with the home's own.
	adminPW := randomString(12)
	if err := os.WriteFile(filepath.Join(work, "admin_password"), []byte(adminPW), 0o600); err != nil {
		return "", fmt.Errorf("harness: template: %w", err)
	}
	steps := [][]string{
		{"superset", "db", "upgrade"},
		{"superset", "fab", "create-admin", "--username", "admin", "--firstname", "Ada",
			"--lastname", "Admin", "--email", "admin@example.com", "--password", adminPW},
		{"superset", "init"},
	}
	for _, argv := range steps {
		t0 := time.Now()
		name := strings.Join(argv[:min(3, len(argv))], " ") // never the password
		if out, err := runVenv(ctx, venv, work, argv...); err != nil {
			return "", fmt.Errorf("harness: %s: %w\n%s", name, err, tail(out, 4000))
		}
		fmt.Fprintf(logw, "harness:   %s: %s\n", name, time.Since(t0).Round(time.Millisecond))
	}
	if err := checkTemplate(ctx, venv, work); err != nil {
		return "", err
	}
	if err := os.Rename(work, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "superset.db")); statErr == nil {
			return dir, nil // another process finished first
		}
		return "", fmt.Errorf("harness: template: %w", err)
	}
	fmt.Fprintf(logw, "harness: template built in %s\n", time.Since(start).Round(time.Millisecond))
	return dir, nil
}

// checkTemplate refuses a template with rows whose meaning depends on the
// SECRET_KEY the template was built with.
func checkTemplate(ctx context.Context, venv, dir string) error {
	const script = `
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
have = {r[0] for r in c.execute("select name from sqlite_master where type='table'")}
bad = []
for t in ("dbs", "ssh_tunnels", "database_user_oauth2_tokens", "key_value"):
    if t in have and c.execute(f'select count(*) from "{t}"').fetchone()[0]:
        bad.append(t)
print(",".join(bad))
`
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), "-c", script, filepath.Join(dir, "superset.db"))
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("harness: template check: %w", err)
	}
	if bad := strings.TrimSpace(string(out)); bad != "" {
		return fmt.Errorf("harness: template holds key-dependent rows in %s", bad)
	}
	return nil
}

// runVenv runs one of the venv's commands with home as SUPERSET_HOME and its
// superset_config.py as the config.
func runVenv(ctx context.Context, venv, home string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", argv[0]), argv[1:]...)
	cmd.Dir = home
	cmd.Env = supersetEnv(venv, home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func supersetEnv(venv, home string) []string {
	env := []string{}
	for _, kv := range os.Environ() {
		// Our own settings win; a developer's SUPERSET_* must not leak in.
		if strings.HasPrefix(kv, "SUPERSET_") || strings.HasPrefix(kv, "FLASK_") ||
			strings.HasPrefix(kv, "PYTHON") || strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"SUPERSET_HOME="+home,
		"SUPERSET_CONFIG_PATH="+filepath.Join(home, "superset_config.py"),
		"VIRTUAL_ENV="+venv,
		"PATH="+filepath.Join(venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PYTHONUNBUFFERED=1",
	)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
