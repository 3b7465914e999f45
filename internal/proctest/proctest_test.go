package proctest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/superset-gateway/superset-gateway/internal/proctest"
)

func spec(t *testing.T, script string, ready func() error) proctest.Spec {
	return proctest.Spec{Bin: "/bin/sh", Args: []string{"-c", script}, Dir: t.TempDir(),
		Log: filepath.Join(t.TempDir(), "out.log"), Ready: ready, Timeout: 2 * time.Second, Poll: 10 * time.Millisecond}
}

// TestStartWaitsForReady: Start returns once the probe answers, not before.
func TestStartWaitsForReady(t *testing.T) {
	calls := 0
	p, err := proctest.Start(spec(t, "exec sleep 30", func() error {
		calls++
		if calls < 3 {
			return proctest.ErrNotReady
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Fatalf("probe called %d times, want 3", calls)
	}
	p.Stop(syscall.SIGTERM, time.Second)
}

// TestStartSeesEarlyExit: a server that dies while starting fails Start at
// once, not at the timeout.
func TestStartSeesEarlyExit(t *testing.T) {
	s := spec(t, "echo bad config >&2; exit 1", func() error { return proctest.ErrNotReady })
	s.Timeout = time.Minute
	begin := time.Now()
	_, err := proctest.Start(s)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") {
		t.Fatalf("err = %v, want exited during start-up", err)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Fatalf("took %v to see the exit, as if waiting for the timeout", d)
	}
}

// TestStartTimesOut: a probe that never answers fails Start with its last
// error, and the process is not left running.
func TestStartTimesOut(t *testing.T) {
	s := spec(t, "exec sleep 30", func() error { return errors.New("connection refused") })
	s.Timeout = 100 * time.Millisecond
	_, err := proctest.Start(s)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want the probe's error", err)
	}
}

// TestStopKillsAfterGrace: a process that ignores the signal is killed
// when the grace period ends.
func TestStopKillsAfterGrace(t *testing.T) {
	// Ready once the trap is set, or the signal would come first.
	dir := t.TempDir()
	s := spec(t, `trap "" TERM; touch trapped; while :; do sleep 0.05; done`, func() error {
		_, err := os.Stat(filepath.Join(dir, "trapped"))
		return err
	})
	s.Dir = dir
	p, err := proctest.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	if d := time.Since(begin); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Stop took %v, want the 200ms grace then a kill", d)
	}
}

// TestOnFreePortRetriesOnlyATakenPort: a start that failed because the
// port was taken is tried again on another port; any other failure ends
// it at once.
func TestOnFreePortRetriesOnlyATakenPort(t *testing.T) {
	var ports []int
	taken := true
	err := proctest.OnFreePort(func(port int) error {
		ports = append(ports, port)
		if len(ports) < 3 {
			return errors.New("bind: address already in use")
		}
		return nil
	}, func() bool { return taken })
	if err != nil || len(ports) != 3 || ports[0] == 0 {
		t.Fatalf("taken twice then up: err %v, ports %v; want nil after 3 tries", err, ports)
	}
	ports, taken = nil, false
	err = proctest.OnFreePort(func(port int) error {
		ports = append(ports, port)
		return errors.New("bad config")
	}, func() bool { return taken })
	if err == nil || len(ports) != 1 {
		t.Fatalf("bad config: err %v after %d tries, want the error after 1", err, len(ports))
	}
	ports, taken = nil, true
	err = proctest.OnFreePort(func(port int) error {
		ports = append(ports, port)
		return errors.New("bind: address already in use")
	}, func() bool { return taken })
	if err == nil || len(ports) != 5 {
		t.Fatalf("always taken: err %v after %d tries, want the error after 5", err, len(ports))
	}
}
