// Package proctest runs a server binary as a child of a test: its output
// appended to a log file the failure dump can show, reaped in the
// background so a crash is seen at once, ready when a probe says so, and
// stopped with a signal and a grace period. redistest and slapdtest start
// their servers through it.
package proctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Spec says what to run and how to tell it is up.
type Spec struct {
	Bin  string
	Args []string
	Dir  string
	// Log receives stdout and stderr, appended: a restarted server's
	// earlier output stays in the same file.
	Log string
	// Ready is polled every Poll until it returns nil or Timeout passes;
	// its last error is in the failure.
	Ready   func() error
	Timeout time.Duration
	Poll    time.Duration
}

// Proc is one started process.
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs s.Bin and waits until s.Ready answers. If the process exits
// first, or Ready never answers in time, it is killed and an error says
// which.
func Start(s Spec) (*Proc, error) {
	out, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.Log, err)
	}
	// The child has its own descriptor once started.
	defer out.Close()
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", s.Bin, err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(s.Timeout)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited during start-up (see its log)", s.Bin)
		default:
		}
		err := s.Ready()
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop(syscall.SIGKILL, 0)
			return nil, fmt.Errorf("%s not ready after %v: %w", s.Bin, s.Timeout, err)
		}
		time.Sleep(s.Poll)
	}
}

// ErrNotReady is what a Ready probe may return when it has no finer cause.
var ErrNotReady = errors.New("proctest: not ready")

// Stop sends sig and waits for the process to exit; with grace > 0 it is
// killed if still running after grace. Safe to call on an exited process.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.exited
}

// OnFreePort calls start with a free loopback port, and again with a new
// one, up to five times in all, while portTaken says the failure was the
// port: it is free when FreePort closes its listener, but another process
// may bind it before the server does. Any other failure is final.
func OnFreePort(start func(port int) error, portTaken func() bool) error {
	var err error
	for range 5 {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		if err = start(port); err == nil || !portTaken() {
			return err
		}
	}
	return err
}

// FreePort returns a loopback TCP port nobody listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
