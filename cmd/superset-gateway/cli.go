package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"

	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/epoch"
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

// do sends method to an admin API path, with body as JSON unless it is
// nil, and returns the answer body. An answer other than 200 is an error
// "admin API: <status>: <the answer's error>".
func (c *adminClient) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+admin.APIPrefix+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
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

const revokeUsage = "revoke: usage: revoke user (ID|USERNAME) --reason TEXT | revoke guest-tokens (--dashboard REF | --all) | revoke token ID"

// revokeFlags are the flags each revoke target takes, besides --url and
// --token-file; any other flag set is refused rather than ignored.
var revokeFlags = map[string][]string{
	"user":         {"reason"},
	"guest-tokens": {"reason", "dashboard", "all"},
	// The admin API's DELETE tokens/{id} reads no body, so a reason would
	// be dropped silently; the audit event names the token and the admin.
	"token": nil,
}

// revoke is `revoke user ID --reason TEXT`,
// `revoke guest-tokens (--dashboard REF | --all) [--reason TEXT]` and
// `revoke token ID`.
func revoke(ctx context.Context, args, env []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(revokeUsage)}
	}
	what, rest := args[0], args[1:]
	allowed, known := revokeFlags[what]
	if !known {
		return usageError{fmt.Errorf("revoke: unknown target %q (user, guest-tokens or token)", what)}
	}
	fs := flag.NewFlagSet("revoke "+what, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why (recorded in the audit log)")
	dashboard := fs.String("dashboard", "", "dashboard id, slug or embed uuid")
	all := fs.Bool("all", false, "every guest token")
	connect := newAdminClient(fs, env)
	var id string
	if (what == "user" || what == "token") && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return err
		}
		return usageError{fmt.Errorf("revoke %s: %w", what, err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("revoke %s: unexpected argument %q", what, fs.Arg(0))}
	}
	var stray string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "url" && f.Name != "token-file" && !slices.Contains(allowed, f.Name) && stray == "" {
			stray = f.Name
		}
	})
	if stray != "" {
		return usageError{fmt.Errorf("revoke %s: --%s does not apply here", what, stray)}
	}
	method, path, body := http.MethodPost, "", any(map[string]string{"reason": *reason})
	switch what {
	case "user":
		// A user id or a username, which the gateway resolves through
		// Superset (admin.ResolveUserRef): unknown users are a 404 from
		// the API, not a revocation of nobody.
		if id == "" || !admin.ValidUserRef(id) || isDigits(id) && !epoch.ValidUserID(id) {
			return usageError{fmt.Errorf("revoke user: %q is not a Superset user id (a number without leading zeros) nor a username", id)}
		}
		if strings.TrimSpace(*reason) == "" {
			return usageError{errors.New("revoke user: --reason is required (it goes to the audit log)")}
		}
		path = "users/" + url.PathEscape(id) + "/revoke"
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
	case "token":
		tid, err := tokenID(id)
		if err != nil {
			return usageError{err}
		}
		method, path, body = http.MethodDelete, "tokens/"+tid, nil
	}
	c, err := connect()
	if err != nil {
		return err
	}
	out, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	return nil
}

// isDigits reports a string of ASCII digits only: a user id, never a
// username, however it is written.
func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// tokenID is the id of an access token given by its id or as the whole
// token (sgw_<id>_<secret>_<crc>, checksum checked). A whole token is a
// secret until revoked: errors never quote an argument that starts like one.
func tokenID(arg string) (string, error) {
	switch {
	case arg == "":
		return "", errors.New("revoke token: usage: revoke token ID (the token's 16-character id, or the whole sgw_… token)")
	case strings.HasPrefix(arg, accesstoken.Prefix):
		id, _, err := accesstoken.Parse(arg)
		if err != nil {
			return "", fmt.Errorf("revoke token: not a well-formed access token (%w)", err)
		}
		return id, nil
	case !accesstoken.ValidID(arg):
		return "", fmt.Errorf("revoke token: %q is not a token id (%d characters a-z and 2-7) nor an sgw_… token", arg, accesstoken.IDLen)
	}
	return arg, nil
}

const tokensUsage = "tokens: usage: tokens list [--user ID] [--status active|expired|revoked] [--json]"

// tokens is `tokens list [--user ID] [--status active|expired|revoked]
// [--json]`: every user's access tokens from the admin API, filtered here,
// as a table sorted by creation or as {"tokens": […]} with each record as
// the API sent it.
func tokens(ctx context.Context, args, env []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError{errors.New(tokensUsage)}
	}
	fs := flag.NewFlagSet("tokens list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.String("user", "", "only the tokens of this Superset user id")
	status := fs.String("status", "", "only tokens in this status: active, expired or revoked")
	asJSON := fs.Bool("json", false, `print {"tokens": […]} instead of a table`)
	connect := newAdminClient(fs, env)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return err
		}
		return usageError{fmt.Errorf("tokens list: %w", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("tokens list: unexpected argument %q", fs.Arg(0))}
	}
	if *user != "" && !epoch.ValidUserID(*user) {
		return usageError{fmt.Errorf("tokens list: --user %q is not a Superset user id", *user)}
	}
	switch *status {
	case "", "active", "expired", "revoked":
	default:
		return usageError{fmt.Errorf("tokens list: --status %q: want active, expired or revoked", *status)}
	}
	c, err := connect()
	if err != nil {
		return err
	}
	out, err := c.do(ctx, http.MethodGet, "tokens", nil)
	if err != nil {
		return err
	}
	var answer struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	if err := json.Unmarshal(out, &answer); err != nil {
		return fmt.Errorf("admin API: GET tokens: unexpected answer: %w", err)
	}
	type entry struct {
		info accesstoken.Info
		raw  json.RawMessage
	}
	list := make([]entry, 0, len(answer.Tokens))
	for _, raw := range answer.Tokens {
		var in accesstoken.Info
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("admin API: GET tokens: unexpected answer: %w", err)
		}
		if (*user == "" || in.OwnerID == *user) && (*status == "" || in.Status == *status) {
			list = append(list, entry{in, raw})
		}
	}
	slices.SortStableFunc(list, func(a, b entry) int {
		return cmp.Or(a.info.Created.Compare(b.info.Created), strings.Compare(a.info.ID, b.info.ID))
	})
	if *asJSON {
		raws := make([]json.RawMessage, len(list))
		for i, e := range list {
			raws[i] = e.raw
		}
		b, err := json.Marshal(map[string]any{"tokens": raws})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tOWNER\tNAME\tSCOPES\tSTATUS\tEXPIRES\tLAST USED")
	for _, e := range list {
		in := e.info
		owner := in.OwnerID
		if in.OwnerName != "" {
			owner = in.OwnerName + " (" + in.OwnerID + ")"
		}
		last := "never"
		if !in.LastUsed.IsZero() {
			last = cliTime(in.LastUsed)
			if in.LastUsedIP != "" {
				last += " from " + in.LastUsedIP
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(in.ID), cell(owner), cell(in.Name),
			cell(strings.Join(in.Scopes, ",")), cell(in.Status), cliTime(in.Expires), cell(last))
	}
	return tw.Flush()
}

// cell makes a table cell of a value from the API: non-printable runes
// (tabs, newlines, terminal escapes) become '?', and empty is "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

func cliTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
