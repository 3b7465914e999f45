package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/conformance"
)

// startTimeout bounds one node's wait for /health. A cold start takes a few
// seconds; the bound only keeps a broken install from hanging the suite.
const startTimeout = 3 * time.Minute

// Node is one gunicorn process serving Superset.
type Node struct {
	// URL is the node's origin, http://127.0.0.1:<port>.
	URL     string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// Cluster is one or more nodes sharing the home's metadata DB.
type Cluster struct {
	Nodes []*Node
	// Target describes node 0 and the fixtures; see Superset.Target.
	Target conformance.Target
	s      *Superset
}

// Start launches nodes gunicorn processes (one gthread worker each) on free
// loopback ports, waits until each answers /health with 200, and on the
// home's first start creates the fixtures through the API (users alice and
// bob, one dashboard with embedding enabled). On error every process it
// started is stopped.
func (s *Superset) Start(ctx context.Context, nodes int) (*Cluster, error) {
	if nodes < 1 {
		return nil, fmt.Errorf("harness: nodes = %d", nodes)
	}
	c := &Cluster{s: s, Nodes: make([]*Node, nodes)}
	// Start nodes side by side: a start is mostly Python imports, and on two
	// cores two of them take little longer than one.
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { c.Nodes[i], errs[i] = s.startNode(ctx, i) })
	}
	wg.Wait()
	c.Nodes = slices.DeleteFunc(c.Nodes, func(n *Node) bool { return n == nil })
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	if err := s.ensureFixtures(ctx, c.Nodes[0].URL); err != nil {
		err = fmt.Errorf("%w\n%s", err, c.Logs())
		c.Stop()
		return nil, err
	}
	c.Target = s.target(c.Nodes[0].URL)
	return c, nil
}

func (s *Superset) startNode(ctx context.Context, i int) (*Node, error) {
	t0 := time.Now()
	var lastErr error
	// A free port can be taken between our probe and gunicorn's bind; try a
	// few ports before giving up.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n, err := s.launch(ctx, i, port)
		if err == nil {
			s.logf("node %d up at %s in %s", i, n.URL, time.Since(t0).Round(time.Millisecond))
			return n, nil
		}
		lastErr = err
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, lastErr
}

var errExited = errors.New("harness: gunicorn exited before /health answered")

func (s *Superset) launch(ctx context.Context, i, port int) (*Node, error) {
	if err := os.MkdirAll(s.path("logs"), 0o700); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	logPath := s.path(filepath.Join("logs", fmt.Sprintf("node%d-%d.log", i, port)))
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Not CommandContext: the node outlives Start's ctx; Stop ends it.
	args := append(append([]string{}, s.gunicornArgs...),
		"--bind", addr,
		"--workers", "1",
		"--worker-class", "gthread",
		"--threads", "8",
		"--timeout", "120",
		"--graceful-timeout", "5",
		"--limit-request-line", "0",
		"--access-logfile", "-",
		"--error-logfile", "-",
		"superset.app:create_app()",
	)
	cmd := exec.Command(filepath.Join(s.venv, "bin", "gunicorn"), args...)
	cmd.Dir = s.home
	cmd.Env = supersetEnv(s.venv, s.home)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group, so Stop reaches gunicorn's worker too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start gunicorn: %w", err)
	}
	n := &Node{URL: "http://" + addr, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		n.waitErr = cmd.Wait()
		close(n.done)
	}()
	if err := n.waitHealthy(ctx); err != nil {
		n.stop()
		return nil, fmt.Errorf("%w\n%s", err, n.logTail())
	}
	return n, nil
}

func (n *Node) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/health", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-n.done:
			return fmt.Errorf("%w (%v)", errExited, n.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("harness: %s/health did not answer 200: %w", n.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// stop sends SIGINT (gunicorn's quick shutdown: tests have nothing in
// flight worth a graceful drain) to the node's process group, then SIGKILL
// after ten seconds, and waits for the process to exit.
func (n *Node) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	pgid := n.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.done
	}
	// Reap any worker left in the group (gunicorn's arbiter normally does).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func (n *Node) logTail() string {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("--- %s (last 8 KiB) ---\n%s", n.LogPath, tail(b, 8<<10))
}

// Stop ends every node and waits for them to exit.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.stop()
	}
}

// Logs returns the tail of every node's log, for a failed test's output.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, n := range c.Nodes {
		b.WriteString(n.logTail())
		b.WriteByte('\n')
	}
	return b.String()
}

// TargetFor describes the cluster's node i (BaseURL = that node's URL).
func (c *Cluster) TargetFor(i int) conformance.Target {
	return c.s.target(c.Nodes[i].URL)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
