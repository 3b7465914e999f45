package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	extaudit "github.com/superset-gateway/superset-gateway/extensions/audit"
	"github.com/superset-gateway/superset-gateway/extensions/osv"
	"github.com/superset-gateway/superset-gateway/extensions/policy"
)

const extensionsUsage = `usage: superset-gateway extensions audit PATH… [--osv DIR|ZIP|FILE]… [--policy FILE]
       [--format text|json|sarif] [--fail-on SEVERITY] [--max-data-age DURATION]
PATH is a .supx bundle or a directory of them (as EXTENSIONS_PATH). Exit 1 when a
finding is at or above --fail-on (info, low, moderate, high, critical; default high).
`

// errFindings is the audit's verdict, not a malfunction: exit 1, no
// further message (the report said it).
var errFindings = errors.New("extensions audit: findings at or above --fail-on")

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func extensionsCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "audit" {
		return usageError{errors.New("usage: superset-gateway extensions audit PATH… (see --help)")}
	}
	fs := flag.NewFlagSet("extensions audit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sources multiFlag
	fs.Var(&sources, "osv", "OSV records: a directory of JSON, an all.zip export or one JSON file (repeatable)")
	policyFile := fs.String("policy", "", "YAML policy: allow, block, min_versions, max_age")
	format := fs.String("format", "text", "text, json or sarif")
	failOn := fs.String("fail-on", "high", "lowest severity that fails the run")
	maxData := fs.Duration("max-data-age", 0, "advisory data older than this is a finding (0: not checked)")
	// Flags may come before, between or after the paths.
	var paths []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, extensionsUsage)
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(paths) == 0 {
		return usageError{errors.New("extensions audit: no PATH given")}
	}
	threshold, err := extaudit.ParseSeverity(*failOn)
	if err != nil {
		return usageError{err}
	}
	if *format != "text" && *format != "json" && *format != "sarif" {
		return usageError{fmt.Errorf("extensions audit: unknown --format %q", *format)}
	}
	var rules policy.Rules
	if *policyFile != "" {
		if rules, err = loadPolicy(*policyFile); err != nil {
			return usageError{err}
		}
	}
	o := extaudit.Options{Policy: rules, Now: time.Now(), MaxData: *maxData}
	if len(sources) > 0 {
		// Unreadable advisory data is an error, never "no advisories".
		if o.OSV, err = osv.Load(sources, osv.Limits{}); err != nil {
			return err
		}
	}
	files, err := extaudit.Expand(paths)
	if err != nil {
		return usageError{err}
	}
	rep := extaudit.Run(files, o)
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
	if m, any := rep.Max(); any && m >= threshold {
		return errFindings
	}
	return nil
}

// loadPolicy reads a policy file strictly: an unknown key is an error.
func loadPolicy(p string) (policy.Rules, error) {
	var r policy.Rules
	data, err := os.ReadFile(p)
	if err != nil {
		return r, fmt.Errorf("extensions audit: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil && !errors.Is(err, io.EOF) {
		return r, fmt.Errorf("extensions audit: policy %s: %w", p, err)
	}
	return r, r.Validate()
}
