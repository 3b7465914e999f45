package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/gateway"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
)

const storeUsage = "store: usage: store backup [--url URL] [--token-file F] FILE | store backup --config FILE OUT | store restore --config FILE [--no-checksum] BACKUP | store mark-restored --config FILE | store inspect FILE"

// storeCmd is `store backup|restore|mark-restored`: backups of the
// gateway's own state (docs/deploy.md, "Backups").
func storeCmd(ctx context.Context, args, env []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(storeUsage)}
	}
	fs := flag.NewFlagSet("store "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "the gateway's config file (the store it names, opened directly)")
	noChecksum := fs.Bool("no-checksum", false, "restore a backup that has no FILE.sha256 beside it")
	connect := newAdminClient(fs, env)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return err
		}
		return usageError{fmt.Errorf("store %s: %w", args[0], err)}
	}
	if *noChecksum && args[0] != "restore" {
		return usageError{fmt.Errorf("store %s: --no-checksum applies to restore only", args[0])}
	}
	var out any
	var err error
	switch args[0] {
	case "backup":
		if fs.NArg() != 1 {
			return usageError{errors.New(storeUsage)}
		}
		out, err = storeBackup(ctx, *cfgPath, fs.Arg(0), env, connect)
	case "restore":
		if fs.NArg() != 1 || *cfgPath == "" {
			return usageError{errors.New(storeUsage)}
		}
		out, err = storeRestore(ctx, *cfgPath, fs.Arg(0), env, *noChecksum)
	case "inspect":
		if fs.NArg() != 1 {
			return usageError{errors.New(storeUsage)}
		}
		out, err = storeInspect(fs.Arg(0))
	case "mark-restored":
		if fs.NArg() != 0 || *cfgPath == "" {
			return usageError{errors.New(storeUsage)}
		}
		out, err = storeMarkRestored(ctx, *cfgPath, env)
	default:
		return usageError{fmt.Errorf("store: unknown command %q (backup, restore, mark-restored or inspect)", args[0])}
	}
	if err != nil {
		return err
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// backupResult is what `store backup` prints.
type backupResult struct {
	File       string `json:"file"`
	Bytes      int64  `json:"bytes"`
	SHA256     string `json:"sha256,omitempty"`
	Generation string `json:"generation"`
	Keys       int    `json:"keys"`
}

// storeBackup writes a consistent copy of the embedded store to out:
// through the running gateway's admin API (the file is locked while it
// runs), or, with --config, from the file of a stopped gateway. The copy
// is written beside out, checked to be a whole store and only then renamed
// to out, so a failed backup never leaves a file that looks like one.
func storeBackup(ctx context.Context, cfgPath, out string, env []string, connect func() (*adminClient, error)) (backupResult, error) {
	if _, err := os.Lstat(out); err == nil {
		return backupResult{}, usageError{fmt.Errorf("store backup: %s exists; choose a new file name", out)}
	}
	partial := out + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return backupResult{}, usageError{fmt.Errorf("store backup: %w", err)}
	}
	defer os.Remove(partial) // a no-op once renamed
	sum := sha256.New()
	w := io.MultiWriter(f, sum)
	var n int64
	if cfgPath != "" {
		n, err = backupFromFile(ctx, cfgPath, env, w)
	} else {
		n, err = backupThroughGateway(ctx, connect, w)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return backupResult{}, err
	}
	info, err := inspectIsolated(ctx, partial)
	if err != nil {
		return backupResult{}, fmt.Errorf("store backup: the copy is not a whole store: %w", err)
	}
	hexSum := hex.EncodeToString(sum.Sum(nil))
	// sha256sum's format, so that `sha256sum -c FILE.sha256` checks it too.
	line := hexSum + "  " + filepath.Base(out) + "\n"
	if err := os.WriteFile(out+".sha256", []byte(line), 0o600); err != nil {
		return backupResult{}, fmt.Errorf("store backup: %w", err)
	}
	if err := os.Rename(partial, out); err != nil {
		return backupResult{}, fmt.Errorf("store backup: %w", err)
	}
	syncDir(filepath.Dir(out))
	return backupResult{File: out, Bytes: n, SHA256: hexSum, Generation: info.Generation, Keys: info.Keys}, nil
}

func backupFromFile(ctx context.Context, cfgPath string, env []string, w io.Writer) (int64, error) {
	l, err := loadConfig(cfgPath, env)
	if err != nil {
		return 0, err
	}
	path := gateway.EmbeddedPath(l.Config)
	if path == "" {
		return 0, usageError{errors.New("store backup: the store is Redis: back it up with Redis persistence (RDB snapshots or the AOF), see docs/deploy.md")}
	}
	if _, err := os.Stat(path); err != nil {
		return 0, usageError{fmt.Errorf("store backup: %w", err)}
	}
	s, err := bolt.Open(path, bolt.Options{SweepInterval: -1, LockTimeout: 500 * time.Millisecond})
	if errors.Is(err, store.ErrUnavailable) {
		return 0, usageError{fmt.Errorf("store backup: a running gateway holds %s: back it up through it (store backup --url URL FILE, with SG_ADMIN_TOKEN)", path)}
	}
	if err != nil {
		return 0, fmt.Errorf("store backup: %w", err)
	}
	defer s.Close()
	return s.Backup(ctx, w, nil)
}

func backupThroughGateway(ctx context.Context, connect func() (*adminClient, error), w io.Writer) (int64, error) {
	c, err := connect()
	if err != nil {
		return 0, err
	}
	// The admin client's 30s bound is for small JSON answers; a store file
	// of many megabytes gets longer, and a context instead of a timeout
	// that would cut the body.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+admin.APIPrefix+"store/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return 0, fmt.Errorf("admin API: %s: %s", resp.Status, e.Error)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("store backup: reading the copy: %w", err)
	}
	// Content-Length is the store's exact size: fewer bytes is a copy cut
	// short (net/http reports most of those as errors already).
	if want, perr := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); perr != nil || n != want {
		return n, fmt.Errorf("store backup: got %d bytes, the gateway announced %q", n, resp.Header.Get("Content-Length"))
	}
	return n, nil
}

// restoreResult is what `store restore` and `store mark-restored` print.
type restoreResult struct {
	File     string `json:"file,omitempty"`
	Replaced string `json:"replaced,omitempty"`
	gateway.Restored
}

// storeRestore replaces the embedded store of a stopped gateway with a
// backup, keeps the file it replaces, and marks the store restored
// (gateway.MarkRestored): every credential issued before now is refused,
// since the backup cannot know the revocations made after it.
func storeRestore(ctx context.Context, cfgPath, backup string, env []string, noChecksum bool) (restoreResult, error) {
	l, err := loadConfig(cfgPath, env)
	if err != nil {
		return restoreResult{}, err
	}
	live := gateway.EmbeddedPath(l.Config)
	if live == "" {
		return restoreResult{}, usageError{errors.New("store restore: the store is Redis: restore Redis from its RDB or AOF, then run store mark-restored --config FILE")}
	}
	if err := checkSum(backup, noChecksum); err != nil {
		return restoreResult{}, usageError{fmt.Errorf("store restore: %w", err)}
	}
	if _, err := inspectIsolated(ctx, backup); err != nil {
		return restoreResult{}, usageError{fmt.Errorf("store restore: %s: %w", backup, err)}
	}
	var replaced string
	if _, err := os.Stat(live); err == nil {
		// Held by a running gateway: refuse before touching anything. A
		// live file that is corrupt is replaced all the same (that may be
		// why the operator restores).
		if _, err := bolt.Inspect(live, 500*time.Millisecond); errors.Is(err, store.ErrUnavailable) {
			return restoreResult{}, usageError{fmt.Errorf("store restore: a running gateway holds %s: stop it first", live)}
		}
		replaced = live + ".replaced-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(live, replaced); err != nil {
			return restoreResult{}, fmt.Errorf("store restore: %w", err)
		}
	} else if err := os.MkdirAll(filepath.Dir(live), 0o700); err != nil {
		return restoreResult{}, fmt.Errorf("store restore: %w", err)
	}
	if err := copyFile(backup, live); err != nil {
		return restoreResult{}, fmt.Errorf("store restore: %w (the replaced store is kept as %s)", err, replaced)
	}
	s, err := bolt.Open(live, bolt.Options{SweepInterval: -1, LockTimeout: 500 * time.Millisecond})
	if err != nil {
		return restoreResult{}, fmt.Errorf("store restore: %w", err)
	}
	defer s.Close()
	r, err := gateway.MarkRestored(ctx, s, "cli:store-restore", nil, nil)
	if err != nil {
		// The restored file stays in place; a gateway must not start on
		// it unmarked, so say what to run.
		return restoreResult{}, fmt.Errorf("%w; run store mark-restored --config %s before starting the gateway", err, cfgPath)
	}
	return restoreResult{File: live, Replaced: replaced, Restored: r}, nil
}

// storeMarkRestored marks the configured store restored: for Redis after
// loading an RDB or AOF (gateways may run meanwhile: the stamps reach them
// through pub/sub), or for an embedded store put back by hand.
func storeMarkRestored(ctx context.Context, cfgPath string, env []string) (restoreResult, error) {
	l, err := loadConfig(cfgPath, env)
	if err != nil {
		return restoreResult{}, err
	}
	st, err := gateway.OpenStore(ctx, l.Config, nil)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) && l.Config.Store.RedisURL == "" {
			return restoreResult{}, usageError{errors.New("store mark-restored: a running gateway holds the embedded store: stop it first")}
		}
		return restoreResult{}, err
	}
	defer st.Close()
	r, err := gateway.MarkRestored(ctx, st, "cli:store-mark-restored", nil, nil)
	if err != nil {
		return restoreResult{}, err
	}
	return restoreResult{Restored: r}, nil
}

// copyFile copies src to dst (0600) through dst.partial, synced and
// renamed, so dst is either absent or whole.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	partial := dst + ".partial"
	out, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(partial)
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(partial, dst); err != nil {
		return err
	}
	syncDir(filepath.Dir(dst))
	return nil
}

// syncDir makes a rename in dir durable; where directories cannot be
// synced the rename is still atomic, only its durability waits for the
// file system.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// checkSum compares path with the SHA-256 that store backup wrote beside
// it (path.sha256). A backup without one is refused unless noChecksum: the
// checksum is what tells a copy damaged in storage from a good one, since
// bbolt checks only its meta pages.
func checkSum(path string, noChecksum bool) error {
	b, err := os.ReadFile(path + ".sha256")
	if errors.Is(err, os.ErrNotExist) {
		if noChecksum {
			return nil
		}
		return fmt.Errorf("%s.sha256 is missing (store backup writes it; --no-checksum restores without)", path)
	}
	if err != nil {
		return err
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("%s does not match its checksum (%s.sha256): the copy is damaged", path, path)
	}
	return nil
}

// storeInspect is `store inspect FILE`: what a store file holds, read
// read-only. Corrupt files can crash it (see inspectIsolated).
func storeInspect(path string) (bolt.Info, error) {
	info, err := bolt.Inspect(path, 500*time.Millisecond)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return bolt.Info{}, usageError{fmt.Errorf("store inspect: %s is held by a running gateway", path)}
	case err != nil:
		return bolt.Info{}, usageError{fmt.Errorf("store inspect: %w", err)}
	}
	return info, nil
}

// inspectIsolated runs `store inspect` on path in a child process (this
// binary). bbolt trusts its pages: a corrupt one makes it read outside the
// file's mapping, a fault no recover catches, so a file that did not come
// from this process is read where a crash is an answer, not the end of the
// command.
// inspectErrPrefix starts the child's own refusals on stderr.
const inspectErrPrefix = "superset-gateway: store inspect: "

func inspectIsolated(ctx context.Context, path string) (bolt.Info, error) {
	exe, err := os.Executable()
	if err != nil {
		return bolt.Info{}, fmt.Errorf("store: cannot find this program to inspect %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "store", "inspect", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		var info bolt.Info
		if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
			return bolt.Info{}, fmt.Errorf("store inspect answered %q: %w", stdout.String(), err)
		}
		return info, nil
	case ctx.Err() != nil:
		return bolt.Info{}, fmt.Errorf("%w: reading it took longer than 2 minutes", bolt.ErrNotAStore)
	case errors.As(err, &ee) && ee.ExitCode() == exitUsage && strings.HasPrefix(stderr.String(), inspectErrPrefix):
		// The Go runtime's fatal errors (a fault on a bad page) exit 2
		// too; only the child's own refusal starts with its prefix.
		msg := strings.TrimPrefix(strings.TrimSpace(stderr.String()), inspectErrPrefix)
		return bolt.Info{}, fmt.Errorf("%s", msg)
	case errors.As(err, &ee):
		return bolt.Info{}, fmt.Errorf("%w: reading it crashed the store reader (%s): the file is corrupt", bolt.ErrNotAStore, ee.ProcessState)
	}
	return bolt.Info{}, fmt.Errorf("store: inspecting %s: %w", path, err)
}
