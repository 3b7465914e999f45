// Command superset-gateway is a reverse proxy in front of Apache Superset
// that adds session and token lifecycle, hardening and observability.
//
//	superset-gateway serve --config FILE          run the gateway
//	superset-gateway check-config --config FILE   validate a config, print OK
//	superset-gateway admin-token create NAME       new admin API token + tokens_file line
//	superset-gateway revoke user ID --reason TEXT  end every credential of a user
//	superset-gateway revoke guest-tokens --dashboard REF | --all
//	superset-gateway revoke token ID               revoke one access token (id or whole sgw_… token)
//	superset-gateway tokens list [--user ID] [--status S] [--json]
//	superset-gateway audit --url URL [--guest-token T] [--wordlist FILE] [--format text|json|sarif] [--probe-rate-limit]
//	superset-gateway probe URL                    GET URL, exit 0 on 2xx (container health checks)
//	superset-gateway version                      print the build version
//	superset-gateway help                         print usage
//
// Exit codes: 0 success, 1 a runtime failure (store unreachable, listener
// could not bind, audit target unreachable), 2 bad usage or bad
// configuration (one line naming the key), 3 audit found a critical problem.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitCritical: `audit` found a critical problem (its report is on
	// stdout), so a CI pipeline can stop on it.
	exitCritical = 3
)

func main() {
	// SIGTERM and SIGINT cancel ctx: serve stops accepting and drains.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: superset-gateway <command> [flags]

commands:
  serve --config FILE          run the gateway (SIGHUP reloads, SIGTERM drains and stops)
  check-config --config FILE   load and validate FILE (and SG_… variables), print OK
  admin-token create NAME      print a new admin API token (once) and its admin.tokens_file line
  revoke user ID --reason TEXT
                               refuse every credential of user ID issued until now
  revoke guest-tokens (--dashboard REF | --all) [--reason TEXT]
                               refuse guest tokens of a dashboard (id, slug or embed uuid) or all
  revoke token ID              revoke one access token; ID is its 16-character id (the part after
                               sgw_) or the whole sgw_… token
  tokens list [--user ID] [--status active|expired|revoked] [--json]
                               every user's access tokens as a table, or as {"tokens": […]}
  store backup FILE            a consistent copy of the embedded store, taken through the running
                               gateway; with --config CONFIG, from the file of a stopped one
  store restore --config CONFIG BACKUP
                               put BACKUP in place of a stopped gateway's embedded store and mark it
                               restored: credentials issued before now are refused (docs/deploy.md)
  store mark-restored --config CONFIG
                               the same mark after restoring Redis from an RDB or AOF
      revoke, tokens and store backup take --url URL (or SG_ADMIN_URL, default
      http://127.0.0.1:8080) and the admin token from SG_ADMIN_TOKEN or --token-file FILE
  audit --url URL [--guest-token T] [--wordlist FILE] [--format text|json|sarif] [--probe-rate-limit]
                               read-only production-readiness check of a deployment (Superset or the
                               gateway); exit 3 on a critical finding (docs/audit.md)
  probe URL                    GET URL; exit 0 on a 2xx answer, 1 otherwise (health checks
                               of the container image, which has no shell or curl)
  extensions audit PATH… [--osv SRC]… [--policy FILE] [--format text|json|sarif] [--fail-on SEV]
                               check .supx bundles against OSV advisories and a version policy
                               (docs/extensions.md); exit 1 on a finding at or above --fail-on
  version                      print the version
  help                         print this help

Every config key can be overridden by SG_<KEY_PATH> (e.g. SG_STORE_REDIS_URL);
see docs/configuration.md.
`

// usageError is bad input from the operator (flags, config, weak secrets):
// exit code 2 and one line, never a stack of wrapped causes over lines.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run is main without the process: it takes the arguments (without the
// program name), the environment as os.Environ returns it and the output
// streams, and returns the exit code. Cancelling ctx stops a running serve
// gracefully.
func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		fmt.Fprintln(stdout, "superset-gateway", versionString())
		return exitOK
	case "check-config":
		var path string
		if path, err = parseConfigFlag(cmd, rest, stdout); err == nil {
			if err = checkConfig(path, env); err == nil {
				fmt.Fprintln(stdout, "OK")
			}
		}
	case "admin-token":
		err = adminTokenCreate(rest, stdout)
	case "revoke":
		err = revoke(ctx, rest, env, stdout)
	case "tokens":
		err = tokens(ctx, rest, env, stdout)
	case "probe":
		err = probe(ctx, rest, stdout)
	case "store":
		err = storeCmd(ctx, rest, env, stdout)
	case "audit":
		err = audit(ctx, rest, env, stdout)
	case "extensions":
		err = extensionsCmd(rest, stdout)
	case "serve":
		var path string
		if path, err = parseConfigFlag(cmd, rest, stdout); err == nil {
			err = serve(ctx, path, env, stdout, stderr)
		}
	default:
		err = usageError{fmt.Errorf("unknown command %q (try: superset-gateway help)", cmd)}
	}
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if errors.Is(err, errCritical) {
		// The report said it all, on stdout.
		return exitCritical
	}
	fmt.Fprintln(stderr, "superset-gateway:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// parseConfigFlag parses "--config FILE" and refuses anything else.
func parseConfigFlag(cmd string, args []string, stdout io.Writer) (string, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	// The flag package's own multi-line complaint is silenced: the caller
	// prints one line.
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "path to the YAML config file (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return "", err
		}
		return "", usageError{fmt.Errorf("%s: %w", cmd, err)}
	}
	if fs.NArg() > 0 {
		return "", usageError{fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	if *path == "" {
		return "", usageError{fmt.Errorf("%s: --config FILE is required", cmd)}
	}
	return *path, nil
}

// versionString reports the module version and VCS revision embedded by the
// Go toolchain, so no linker flag (and no mutable package variable) is
// needed.
func versionString() string {
	v, rev := buildVersion()
	if rev == "" {
		return v
	}
	return v + " (" + rev + ")"
}

func buildVersion() (version, revision string) {
	version = "(devel)"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, ""
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
			if len(revision) > 12 {
				revision = revision[:12]
			}
		}
	}
	return version, revision
}
