package deploytest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const unitFile = "../systemd/superset-gateway.service"

// unit is a parsed systemd unit file: section → key → every assignment in
// order (systemd keys may be given several times; an empty assignment
// resets a list).
type unit map[string]map[string][]string

// parseUnit reads the subset of systemd's unit syntax the shipped unit
// uses: [Section] headers, Key=Value lines, # and ; comments. A line of any
// other shape is an error rather than silently skipped.
func parseUnit(text string) (unit, error) {
	u := unit{}
	var section string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				return nil, fmt.Errorf("line %d: not Key=Value inside a section", n)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u, sc.Err()
}

// last is the value in effect: systemd's last assignment wins.
func (u unit) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// checkUnit asserts the sandbox and lifecycle directives issue 17 asks of
// the unit.
func checkUnit(text string) []error {
	u, err := parseUnit(text)
	if err != nil {
		return []error{err}
	}
	var errs []error
	want := func(key, value string) {
		if got, ok := u.last("Service", key); !ok || got != value {
			errs = append(errs, fmt.Errorf("[Service] %s=%q, want %q", key, got, value))
		}
	}
	want("DynamicUser", "yes")
	want("ProtectSystem", "strict")
	want("NoNewPrivileges", "yes")
	want("StateDirectory", "superset-gateway")
	want("WorkingDirectory", "/var/lib/superset-gateway")
	// Present and empty: no capability at all (not absent, which is all).
	want("CapabilityBoundingSet", "")
	want("AmbientCapabilities", "")
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") || slices.Contains(f, "") {
		errs = append(errs, fmt.Errorf("[Service] SystemCallFilter=%q: want @system-service in effect", f))
	}
	if r, _ := u.last("Service", "ExecReload"); !strings.HasSuffix(r, "kill -HUP $MAINPID") {
		errs = append(errs, fmt.Errorf("[Service] ExecReload=%q: want SIGHUP to $MAINPID", r))
	}
	if s, _ := u.last("Service", "ExecStart"); !strings.Contains(s, "/superset-gateway serve --config ") {
		errs = append(errs, fmt.Errorf("[Service] ExecStart=%q: want superset-gateway serve --config FILE", s))
	}
	// Exit 2 is a bad config: a restart loop would only hide it.
	if r, _ := u.last("Service", "RestartPreventExitStatus"); r != "2" {
		errs = append(errs, fmt.Errorf("[Service] RestartPreventExitStatus=%q, want 2", r))
	}
	return errs
}

func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSystemdUnitDirectives(t *testing.T) {
	for _, err := range checkUnit(readUnit(t)) {
		t.Error(err)
	}
}

// unitMutations each weaken the unit in one way that checkUnit or
// systemd-analyze must catch.
var unitMutations = []struct {
	name, old, new string
	analyze        bool // systemd-analyze verify (or security) must refuse it too
}{
	{"no DynamicUser", "DynamicUser=yes\n", "", false},
	{"ProtectSystem full", "ProtectSystem=strict", "ProtectSystem=full", false},
	{"capabilities kept", "CapabilityBoundingSet=\n", "", false},
	{"capability added", "CapabilityBoundingSet=\n", "CapabilityBoundingSet=\nCapabilityBoundingSet=CAP_SYS_ADMIN\n", false},
	{"filter reset", "SystemCallFilter=@system-service\n", "SystemCallFilter=\n", false},
	{"new privileges", "NoNewPrivileges=yes", "NoNewPrivileges=no", false},
	{"reload by restart", "ExecReload=/bin/kill -HUP $MAINPID", "ExecReload=/bin/kill -TERM $MAINPID", false},
	{"no state directory", "StateDirectory=superset-gateway\n", "", false},
	{"misspelt key", "ExecStart=", "ExecStrat=", true},
	{"bad value", "ProtectSystem=strict", "ProtectSystem=stricter", true},
	{"unknown syscall group", "SystemCallFilter=@system-service", "SystemCallFilter=@system-servce", true},
	{"misspelt section", "[Service]", "[Servce]", true},
}

func mutateUnit(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("mutation out of date: the unit no longer holds %q", old)
	}
	return strings.Replace(text, old, new, 1)
}

func TestSystemdUnitDirectivesMutations(t *testing.T) {
	text := readUnit(t)
	for _, m := range unitMutations {
		if m.analyze {
			continue // shapes only systemd itself judges
		}
		t.Run(m.name, func(t *testing.T) {
			if errs := checkUnit(mutateUnit(t, text, m.old, m.new)); len(errs) == 0 {
				t.Error("checkUnit accepted it")
			}
		})
	}
}

// analyze runs systemd-analyze on the unit inside a scratch root that holds
// the unit and an executable at every absolute Exec…= path (verify checks
// they exist; the gateway binary is not installed on the test machine).
// Units it depends on (sysinit.target …) are not in the root:
// --recursive-errors=no keeps verify to this unit's own errors.
func analyze(t *testing.T, text string, args ...string) error {
	t.Helper()
	root := t.TempDir()
	u, err := parseUnit(text)
	if err != nil {
		return err
	}
	for key, values := range u["Service"] {
		if !strings.HasPrefix(key, "Exec") {
			continue
		}
		for _, v := range values {
			bin := strings.Fields(strings.TrimLeft(v, "-@:+!"))
			if len(bin) == 0 || !filepath.IsAbs(bin[0]) {
				continue
			}
			p := filepath.Join(root, bin[0])
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	const dst = "/etc/systemd/system/superset-gateway.service"
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, dst), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("systemd-analyze", append(append(args, "--root="+root), dst)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// systemdAnalyze finds systemd-analyze. .ci/run installs systemd, so in CI
// (CI=true) a missing binary fails the test instead of skipping it.
func systemdAnalyze(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not found; .ci/run installs the systemd package")
		}
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd)")
	}
}

// exposureThreshold is the highest `systemd-analyze security` exposure
// accepted, in its 0–100 scale (the unit scores 12, "1.2 OK"; a unit
// without the sandboxing directives scores above 40).
const exposureThreshold = "20"

func TestSystemdAnalyze(t *testing.T) {
	systemdAnalyze(t)
	text := readUnit(t)
	if err := analyze(t, text, "verify", "--man=no", "--recursive-errors=no"); err != nil {
		t.Errorf("systemd-analyze verify: %v", err)
	}
	if err := analyze(t, text, "security", "--offline=true", "--threshold="+exposureThreshold); err != nil {
		t.Errorf("systemd-analyze security: %v", err)
	}
	for _, m := range unitMutations {
		if !m.analyze {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			if err := analyze(t, mutateUnit(t, text, m.old, m.new), "verify", "--man=no", "--recursive-errors=no"); err == nil {
				t.Error("systemd-analyze verify accepted it")
			}
		})
	}
	// The sandbox as a whole: without it, security's exposure exceeds the
	// threshold.
	bare := text
	for _, k := range []string{"ProtectSystem=strict\n", "PrivateUsers=yes\n", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service\n", "SystemCallFilter=~@privileged\n", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n", "ProtectHome=yes\n", "PrivateDevices=yes\n"} {
		bare = mutateUnit(t, bare, k, "")
	}
	if err := analyze(t, bare, "security", "--offline=true", "--threshold="+exposureThreshold); err == nil {
		t.Error("systemd-analyze security accepted the unit without its sandbox")
	}
}
