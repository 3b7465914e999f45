package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/store"
)

// TestBackupUnderWrites: a backup taken while writers commit is a store
// file of its own that holds every write acknowledged before the backup
// began, and Inspect accepts it.
func TestBackupUnderWrites(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "gw.db"), Options{SweepInterval: -1})
	if _, _, err := store.EnsureGeneration(ctx, s, time.Now()); err != nil {
		t.Fatal(err)
	}
	const before = 500
	for i := range before {
		if _, err := s.MaxInt64(ctx, fmt.Sprintf("epoch:user:%d", i), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Set(ctx, fmt.Sprintf("during:%d:%d", w, i), bytes.Repeat([]byte("x"), 512), 0); err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		}()
	}
	for written.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	var buf bytes.Buffer
	var announced int64 = -1
	n, err := s.Backup(ctx, &buf, func(sz int64) { announced = sz })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) || announced != n {
		t.Fatalf("Backup wrote %d bytes, buffer %d, announced %d", n, buf.Len(), announced)
	}
	copyPath := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(copyPath, time.Second)
	if err != nil {
		t.Fatalf("Inspect(backup): %v", err)
	}
	if info.Generation == "" || info.Keys < before+1 {
		t.Fatalf("backup info %+v: want the generation marker and at least %d keys", info, before+1)
	}
	c := openT(t, copyPath, Options{SweepInterval: -1})
	for i := range before {
		v, err := c.GetInt64(ctx, fmt.Sprintf("epoch:user:%d", i))
		if err != nil || v != int64(i+1) {
			t.Fatalf("backup lost epoch:user:%d: %d, %v", i, v, err)
		}
	}
}

// TestInspectRefusesWhatIsNotAStore: a restore inspects its file first, so
// a truncated copy, garbage, a directory or a bbolt file of another
// program is refused with a clear error, never a crash.
func TestInspectRefusesWhatIsNotAStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, filepath.Join(dir, "gw.db"), Options{SweepInterval: -1})
	for i := range 2000 {
		if err := s.Set(ctx, fmt.Sprintf("k%d", i), bytes.Repeat([]byte("v"), 256), 0); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf, nil); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"truncated": write("truncated.db", buf.Bytes()[:buf.Len()/2]),
		"garbage":   write("garbage.db", bytes.Repeat([]byte{0xAB}, 64<<10)),
		"empty":     write("empty.db", nil),
		"directory": dir,
	}
	for name, p := range cases {
		if _, err := Inspect(p, 100*time.Millisecond); err == nil {
			t.Errorf("%s: Inspect accepted it", name)
		}
	}
	// The live file is held by s: Inspect says so rather than waiting.
	if _, err := Inspect(filepath.Join(dir, "gw.db"), 100*time.Millisecond); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Inspect of a file a store holds: %v, want ErrUnavailable", err)
	}
}
