package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/superset-gateway/superset-gateway/deployaudit"
)

// errCritical makes run exit with exitCritical after audit printed its
// report, so that a CI pipeline stops on a critical finding.
var errCritical = errors.New("audit: critical findings")

// audit runs `superset-gateway audit --url URL [--guest-token T]
// [--wordlist FILE] [--format text|json|sarif] [--probe-rate-limit]`. The
// guest token may also come from SG_AUDIT_GUEST_TOKEN, so it need not sit
// in the shell history.
func audit(ctx context.Context, args, env []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stdout)
	u := fs.String("url", "", "base URL of Superset or of the gateway in front of it (required)")
	guest := fs.String("guest-token", lookupEnv(env, "SG_AUDIT_GUEST_TOKEN"), "a guest token the deployment issued, to test GUEST_TOKEN_JWT_SECRET (or SG_AUDIT_GUEST_TOKEN)")
	wordlist := fs.String("wordlist", "", "file of candidate secrets, one a line, tried after the built-in list")
	format := fs.String("format", "text", "text, json or sarif")
	probe := fs.Bool("probe-rate-limit", false, "make up to 12 failed sign-ins of a made-up user to see whether they are rate limited")
	timeout := fs.Duration("timeout", deployaudit.DefaultTimeout, "bound on each request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *u == "" || fs.NArg() > 0 {
		return usageError{errors.New("audit: --url URL is required (and takes no arguments)")}
	}
	switch *format {
	case "text", "json", "sarif":
	default:
		return usageError{fmt.Errorf("audit: --format %q: want text, json or sarif", *format)}
	}
	o := deployaudit.Options{URL: *u, GuestToken: *guest, ProbeRateLimit: *probe, Timeout: *timeout}
	if *wordlist != "" {
		if _, err := os.Stat(*wordlist); err != nil {
			return usageError{fmt.Errorf("audit: --wordlist: %w", err)}
		}
		p := *wordlist
		o.Wordlist = func() (io.ReadCloser, error) { return os.Open(p) }
	}
	rep, err := deployaudit.Run(ctx, o)
	if err != nil {
		if errors.Is(err, deployaudit.ErrBadURL) {
			return usageError{err}
		}
		return err
	}
	switch *format {
	case "json":
		err = rep.WriteJSON(stdout)
	case "sarif":
		err = rep.WriteSARIF(stdout, versionString())
	default:
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if rep.Critical() {
		return errCritical
	}
	return nil
}

func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
