package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
)

// adminTokenCreate prints a new admin API token once, and the line to add
// to admin.tokens_file (the gateway keeps only its SHA-256).
func adminTokenCreate(args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "create" || strings.HasPrefix(args[1], "-") {
		return usageError{errors.New("admin-token: usage: admin-token create NAME")}
	}
	name := args[1]
	if strings.ContainsAny(name, " \t\r\n#") {
		return usageError{fmt.Errorf("admin-token: name %q: no spaces or '#'", name)}
	}
	tok, sum, err := admin.NewToken()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token (shown once; give it to the operator or CI as SG_ADMIN_TOKEN):\n  %s\nline for admin.tokens_file:\n  %s %s\n", tok, name, sum)
	return nil
}

// adminClient calls the admin API of a running gateway. The token comes
// from SG_ADMIN_TOKEN or --token-file, never from the command line, where
// other users of the machine could read it.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(fs *flag.FlagSet, env []string) func() (*adminClient, error) {
	u := fs.String("url", envOr(env, "SG_ADMIN_URL", "http://127.0.0.1:8080"), "gateway URL (or SG_ADMIN_URL)")
	tf := fs.String("token-file", "", "file holding the admin API token (default: SG_ADMIN_TOKEN)")
	return func() (*adminClient, error) {
		tok := envOr(env, "SG_ADMIN_TOKEN", "")
		if *tf != "" {
			b, err := os.ReadFile(*tf)
			if err != nil {
				return nil, usageError{fmt.Errorf("--token-file: %w", err)}
			}
			tok = strings.TrimSpace(string(b))
		}
		if tok == "" {
			return nil, usageError{errors.New("no admin token: set SG_ADMIN_TOKEN or --token-file")}
		}
		base, err := url.Parse(*u)
		if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
			return nil, usageError{fmt.Errorf("--url %q is not an http(s) URL", *u)}
		}
		return &adminClient{base: strings.TrimSuffix(base.String(), "/"), token: tok, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
}

func envOr(env []string, key, def string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return def
}

// post sends a JSON body to an admin API path and returns the answer body.
func (c *adminClient) post(ctx context.Context, path string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+admin.APIPrefix+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(out, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(out))
		}
		return nil, fmt.Errorf("admin API: %s: %s", resp.Status, e.Error)
	}
	return out, nil
}

// revoke is `revoke user ID --reason TEXT` and
// `revoke guest-tokens (--dashboard REF | --all) [--reason TEXT]`.
func revoke(ctx context.Context, args, env []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("revoke: usage: revoke user ID --reason TEXT | revoke guest-tokens (--dashboard REF | --all)")}
	}
	what, rest := args[0], args[1:]
	fs := flag.NewFlagSet("revoke "+what, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why (recorded in the audit log)")
	dashboard := fs.String("dashboard", "", "dashboard id, slug or embed uuid")
	all := fs.Bool("all", false, "every guest token")
	connect := newAdminClient(fs, env)
	var id string
	if what == "user" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{fmt.Errorf("revoke %s: %w", what, err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("revoke %s: unexpected argument %q", what, fs.Arg(0))}
	}
	var path string
	switch what {
	case "user":
		if _, err := strconv.ParseUint(id, 10, 63); err != nil || id == "" || (id[0] == '0' && id != "0") {
			return usageError{fmt.Errorf("revoke user: %q is not a Superset user id", id)}
		}
		if strings.TrimSpace(*reason) == "" {
			return usageError{errors.New("revoke user: --reason is required (it goes to the audit log)")}
		}
		path = "users/" + id + "/revoke"
	case "guest-tokens":
		switch {
		case *all && *dashboard != "":
			return usageError{errors.New("revoke guest-tokens: --dashboard and --all exclude each other")}
		case *all:
			path = "guest-tokens/revoke"
		case *dashboard != "":
			path = "dashboards/" + url.PathEscape(*dashboard) + "/guest-tokens/revoke"
		default:
			return usageError{errors.New("revoke guest-tokens: --dashboard REF or --all is required")}
		}
	default:
		return usageError{fmt.Errorf("revoke: unknown target %q (user or guest-tokens)", what)}
	}
	c, err := connect()
	if err != nil {
		return err
	}
	out, err := c.post(ctx, path, map[string]string{"reason": *reason})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	return nil
}
