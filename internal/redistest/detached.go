package redistest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StartDetached starts a plain redis-server that belongs to no test: for a
// server shared by a whole test package (started on first use, stopped from
// TestMain), which Start cannot give because it ties the server to one
// test's Cleanup. The caller must Close it. TLS, cluster, replica and
// sentinel servers need Start.
func StartDetached(opts Options) (*Server, error) {
	if opts.TLS || opts.Cluster || opts.clusterMember || opts.ReplicaOf != nil {
		return nil, errors.New("redistest: StartDetached starts plain servers only (no TLS, cluster or replica)")
	}
	bin, err := findBinary(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w (install the redis-server package)", err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	s := &Server{opts: opts, bin: bin, dir: dir}
	s.conf, s.log = filepath.Join(dir, "redis.conf"), filepath.Join(dir, "redis.log")
	if err := s.launchErr(); err != nil {
		err = fmt.Errorf("redistest: %w\n%s", err, s.LogTail())
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Close stops a server from StartDetached and removes its directory.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// LogTail is the end of the server's output and log, for a failure report
// where there is no test to log to.
func (s *Server) LogTail() string {
	var out []byte
	for _, p := range []string{s.out(), s.log} {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b...)
		}
	}
	const keep = 4000
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return string(out)
}
