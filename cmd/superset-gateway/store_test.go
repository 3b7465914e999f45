package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/admin"
	"github.com/superset-gateway/superset-gateway/internal/redistest"
	"github.com/superset-gateway/superset-gateway/superset/apijwt"
)

// mintJWT is a Superset access JWT for user id, issued now.
func mintJWT(t *testing.T, id string) string {
	t.Helper()
	tok, err := apijwt.Mint([]byte(fakeSecret), apijwt.MintOptions{Subject: id, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// waitStatus polls until jwt gets want through base.
func waitStatus(t *testing.T, base, jwt string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for bearerStatus(t, base, jwt) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not %d within 3s", what, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextSecond waits for the next whole second: JWT iat has second
// precision, so a token must be minted a second after a stamp to be newer.
func nextSecond() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }

// TestStoreBackupRestoreKeepsRevocations: a backup taken through the
// running gateway under load, restored after more revocations were made,
// must not bring back a credential revoked after the backup. A plain copy
// of the file would (the control below shows it); the restore's mark is
// what refuses it.
func TestStoreBackupRestoreKeepsRevocations(t *testing.T) {
	dir, yaml, token := adminGatewayConfig(t)
	g := startGateway(t, dir, yaml, nil)
	env := []string{"SG_ADMIN_TOKEN=" + token, "SG_ADMIN_URL=" + g.base}
	ctx := context.Background()
	nextSecond()
	alice, bob := mintJWT(t, "2"), mintJWT(t, "3")
	if bearerStatus(t, g.base, alice) != http.StatusOK || bearerStatus(t, g.base, bob) != http.StatusOK {
		t.Fatal("fresh JWTs refused before any revocation")
	}
	if code, _, errOut := runCmd(t, ctx, env, "revoke", "user", "2", "--reason", "before the backup"); code != exitOK {
		t.Fatalf("revoke alice: %s", errOut)
	}
	waitStatus(t, g.base, alice, http.StatusUnauthorized, "alice revoked before the backup")

	// Load while the backup is taken: revocations (store writes) and
	// proxied requests.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, g.base+admin.APIPrefix+"users/2/revoke", strings.NewReader(`{"reason":"load"}`))
				req.Header.Set("Authorization", "Bearer "+token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
				bearerStatus(t, g.base, bob)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	backup := filepath.Join(t.TempDir(), "gw-backup.db")
	code, out, errOut := runCmd(t, ctx, env, "store", "backup", backup)
	close(stop)
	wg.Wait()
	if code != exitOK {
		t.Fatalf("store backup: exit %d: %s", code, errOut)
	}
	var br backupResult
	if err := json.Unmarshal([]byte(out), &br); err != nil || br.Bytes == 0 || br.Generation == "" || br.Keys == 0 {
		t.Fatalf("store backup printed %q (%v)", out, err)
	}
	if fi, err := os.Stat(backup); err != nil || fi.Size() != br.Bytes || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := os.Stat(backup + ".partial"); !os.IsNotExist(err) {
		t.Fatalf("the partial file was left behind: %v", err)
	}

	// Refusals while the gateway runs.
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"existing file", []string{"store", "backup", backup}, "exists"},
		{"offline backup of a held file", []string{"store", "backup", "--config", g.cfg, backup + "2"}, "--url"},
		{"restore under a running gateway", []string{"store", "restore", "--config", g.cfg, backup}, "stop it first"},
		{"restore of what is not a store", []string{"store", "restore", "--config", g.cfg, writeFile(t, dir, "junk.db", strings.Repeat("x", 9000))}, ".sha256 is missing"},
		{"mark-restored under a running gateway", []string{"store", "mark-restored", "--config", g.cfg}, "stop it first"},
		{"unknown", []string{"store", "copy"}, "unknown command"},
	} {
		if code, _, errOut := runCmd(t, ctx, env, c.args...); code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d %q; want 2 and %q", c.name, code, errOut, c.want)
		}
	}

	// After the backup: bob is revoked; the backup does not know it.
	if code, _, errOut := runCmd(t, ctx, env, "revoke", "user", "3", "--reason", "after the backup"); code != exitOK {
		t.Fatalf("revoke bob: %s", errOut)
	}
	waitStatus(t, g.base, bob, http.StatusUnauthorized, "bob revoked after the backup")
	g.stop(t)
	live := filepath.Join(dir, "data", "gateway.db")

	// Control: the backup copied in place by hand forgets bob's
	// revocation. This is what the restore must prevent.
	saved := live + ".saved"
	if err := os.Rename(live, saved); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(backup, live); err != nil {
		t.Fatal(err)
	}
	g = startGateway(t, dir, yaml, nil)
	if code := bearerStatus(t, g.base, bob); code != http.StatusOK {
		t.Fatalf("control: a plain copy of the backup refused bob's JWT (%d); the test proves nothing", code)
	}
	g.stop(t)
	if err := os.Rename(saved, live); err != nil {
		t.Fatal(err)
	}

	restoredAt := time.Now()
	code, out, errOut = runCmd(t, ctx, env, "store", "restore", "--config", g.cfg, backup)
	if code != exitOK {
		t.Fatalf("store restore: exit %d: %s", code, errOut)
	}
	var rr restoreResult
	if err := json.Unmarshal([]byte(out), &rr); err != nil || rr.Replaced == "" || rr.Generation == "" || rr.Generation == br.Generation ||
		time.UnixMilli(rr.Epoch).Before(restoredAt.Truncate(time.Millisecond)) || rr.GuestRevokedBefore.Before(restoredAt.Truncate(time.Millisecond)) {
		t.Fatalf("store restore printed %q (%v)", out, err)
	}
	if _, err := os.Stat(rr.Replaced); err != nil {
		t.Fatalf("the replaced store was not kept: %v", err)
	}
	g = startGateway(t, dir, yaml, nil)
	for name, jwt := range map[string]string{"alice (revoked before the backup)": alice, "bob (revoked after the backup)": bob} {
		if code := bearerStatus(t, g.base, jwt); code != http.StatusUnauthorized {
			t.Errorf("after the restore, %s: %d, want 401", name, code)
		}
	}
	nextSecond()
	if code := bearerStatus(t, g.base, mintJWT(t, "3")); code != http.StatusOK {
		t.Errorf("a JWT issued after the restore: %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodGet, g.base+admin.APIPrefix+"revocations", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var revs struct {
		Revocations []struct{ Trigger, Subject string } `json:"revocations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&revs); err != nil || len(revs.Revocations) == 0 ||
		revs.Revocations[0].Trigger != "store_restored" || revs.Revocations[0].Subject != "global" {
		t.Errorf("newest revocation after the restore: %+v (%v); want the global store_restored stamp", revs.Revocations, err)
	}
}

// TestStoreBackupOfRedisSaysUseRedisPersistence: Redis is backed up by its own
// persistence; the admin route and the CLI say so instead of copying.
func TestStoreBackupOfRedisSaysUseRedisPersistence(t *testing.T) {
	dir, yaml, _ := adminGatewayConfig(t)
	yaml = strings.Replace(yaml, "store: {data_dir:", "store: {redis_url: \"redis://127.0.0.1:1/0\", data_dir:", 1)
	cfg := writeFile(t, dir, "redis.yaml", yaml)
	for _, args := range [][]string{
		{"store", "backup", "--config", cfg, filepath.Join(dir, "out.db")},
		{"store", "restore", "--config", cfg, filepath.Join(dir, "out.db")},
	} {
		if code, _, errOut := runCmd(t, context.Background(), nil, args...); code != exitUsage || !strings.Contains(errOut, "Redis") {
			t.Errorf("%v: exit %d %q; want 2 naming Redis persistence", args, code, errOut)
		}
	}
}

// TestMarkRestoredOnRedisReachesRunningGateways: after Redis is restored
// from an RDB or AOF under running gateways, `store mark-restored` refuses
// every credential issued before it on them at once (the stamps are
// published), not after a restart.
func TestMarkRestoredOnRedisReachesRunningGateways(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{AppendOnly: true})
	dir, yaml, _ := adminGatewayConfig(t)
	env := []string{"SG_STORE_REDIS_URL=" + rs.URL()}
	g := startGateway(t, dir, yaml, env)
	nextSecond()
	bob := mintJWT(t, "3")
	if code := bearerStatus(t, g.base, bob); code != http.StatusOK {
		t.Fatalf("bob before the mark: %d", code)
	}
	before, _ := rs.Do("GET", "meta:generation")
	code, out, errOut := runCmd(t, context.Background(), env, "store", "mark-restored", "--config", g.cfg)
	if code != exitOK {
		t.Fatalf("store mark-restored: exit %d: %s", code, errOut)
	}
	waitStatus(t, g.base, bob, http.StatusUnauthorized, "a JWT issued before the mark, on a running gateway")
	if gen, _ := rs.Do("GET", "meta:generation"); gen == before || !strings.Contains(out, gen) {
		t.Errorf("generation %q after the mark (was %q; printed %s)", gen, before, out)
	}
	if v, err := rs.Do("GET", "guest:revoked_before:global"); err != nil || v == "" || v == "1" {
		t.Errorf("global guest-token stamp after the mark: %q %v", v, err)
	}
	nextSecond()
	if code := bearerStatus(t, g.base, mintJWT(t, "3")); code != http.StatusOK {
		t.Errorf("a JWT issued after the mark: %d, want 200", code)
	}
}

// TestStoreRestoreRefusesDamagedBackups: a backup damaged in storage is
// refused before it replaces anything: by its checksum, or, when the
// checksum was rewritten to match, by reading it in a child process. The
// corrupt page in testdata made bbolt fault outside its mapping in a
// fuzzing run, which no recover catches and which would end the command.
func TestStoreRestoreRefusesDamagedBackups(t *testing.T) {
	dir, yaml, _ := adminGatewayConfig(t)
	cfg := writeFile(t, dir, "gw.yaml", yaml)
	g := startGateway(t, dir, yaml, nil)
	g.stop(t)
	live := filepath.Join(dir, "data", "gateway.db")
	good := filepath.Join(t.TempDir(), "good.db")
	if code, _, errOut := runCmd(t, context.Background(), nil, "store", "backup", "--config", cfg, good); code != exitOK {
		t.Fatalf("offline backup: %s", errOut)
	}
	sum, err := os.ReadFile(good + ".sha256")
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(sum)), "  good.db") {
		t.Fatalf("checksum file %q %v", sum, err)
	}
	corrupt := gunzipFile(t, "testdata/corrupt-store.db.gz")
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	b, _ := os.ReadFile(good)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged+".sha256", sum, 0o600); err != nil {
		t.Fatal(err)
	}
	matching := filepath.Join(t.TempDir(), "corrupt.db")
	if err := os.WriteFile(matching, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(corrupt)
	if err := os.WriteFile(matching+".sha256", []byte(hex.EncodeToString(h[:])+"  corrupt.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nosum := filepath.Join(t.TempDir(), "nosum.db")
	if err := os.WriteFile(nosum, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(live)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"flipped byte", []string{damaged}, "does not match its checksum"},
		{"no checksum", []string{nosum}, ".sha256 is missing"},
		// bbolt's page check catches this page, or bbolt faults on it,
		// depending on what the process has mapped after the file.
		{"corrupt page, matching checksum", []string{matching}, "not a gateway store file"},
		{"corrupt page, no checksum check", []string{"--no-checksum", nosum}, "not a gateway store file"},
	} {
		args := append([]string{"store", "restore", "--config", cfg}, c.args...)
		if code, _, errOut := runCmd(t, context.Background(), nil, args...); code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d %q; want 2 and %q", c.name, code, errOut, c.want)
		}
	}
	// A reader that dies on the file (the fault above, made certain
	// here: the child kills itself) is a refusal, not the command's end.
	t.Setenv(inspectFaultEnv, "1")
	if code, _, errOut := runCmd(t, context.Background(), nil, "store", "restore", "--config", cfg, good); code != exitUsage ||
		!strings.Contains(errOut, "crashed the store reader") {
		t.Errorf("a reader killed by the file: exit %d %q; want 2, crashed the store reader", code, errOut)
	}
	t.Setenv(inspectFaultEnv, "")
	if after, _ := os.ReadFile(live); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the live store")
	}
	if code, out, errOut := runCmd(t, context.Background(), nil, "store", "restore", "--config", cfg, good); code != exitOK {
		t.Fatalf("restore of the good backup: exit %d %s %s", code, out, errOut)
	}
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
