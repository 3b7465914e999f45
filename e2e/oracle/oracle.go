// Package oracle asks the real Superset stack how it reads a request.
//
// It runs oracle.py (embedded here) with the Python of a Superset 6.1.0
// virtualenv: gunicorn 23's own request parser and WSGI environ, Flask's
// Request (Werkzeug 3.1) and flask-jwt-extended's Authorization reader,
// fed the exact bytes given, with no network and no Superset app. One
// process serves many requests (JSON lines), so fuzz targets can ask it
// thousands of times a second.
//
// The gateway's fuzz targets (fuzz_test.go, build tag e2e) compare what
// the gateway reads with what this package says Superset reads; see
// docs/security.md.
package oracle

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

//go:embed oracle.py
var script []byte

// ErrNoVenv means SUPERSET_VENV is unset or holds no Python.
var ErrNoVenv = errors.New("oracle: SUPERSET_VENV does not name a Superset virtualenv")

// Reading is how gunicorn + Werkzeug + Flask read one request. Fields
// that come from header bytes (paths, header values, the bearer token,
// cookies) are WSGI strings: one rune per byte; Bytes turns them back.
type Reading struct {
	// Error is set when gunicorn refused the request (Superset never
	// sees it); every other field is then empty.
	Error       string      `json:"error"`
	Method      string      `json:"method"`
	PathInfo    string      `json:"path_info"`   // what Flask routes
	ScriptName  string      `json:"script_name"` // "" unless a header set it
	Query       string      `json:"query"`
	ContentType *string     `json:"content_type"` // the CONTENT_TYPE gunicorn kept
	Headers     [][2]string `json:"headers"`      // HTTP_* environ keys
	BodyLen     int         `json:"body_len"`
	// Mimetype is request.mimetype: Werkzeug parses a form only for
	// multipart/form-data and application/x-www-form-urlencoded.
	Mimetype       string            `json:"mimetype"`
	MimetypeParams map[string]string `json:"mimetype_params"`
	XGuestToken    *string           `json:"x_guesttoken"`
	QueryGuestTok  []string          `json:"query_guest_token"`
	// FormGuestToken is request.form.getlist("guest_token").
	FormGuestToken []string `json:"form_guest_token"`
	FormKeys       []string `json:"form_keys"`
	FormError      string   `json:"form_error"`
	// SupersetGuestToken is what get_guest_user_from_request reads: the
	// header, else request.form.get("guest_token").
	SupersetGuestToken *string `json:"superset_guest_token"`
	// Bearer is the token flask-jwt-extended takes from Authorization
	// (nil when it takes none; BearerError names its exception).
	Bearer      *string     `json:"bearer"`
	BearerError string      `json:"bearer_error"`
	Cookies     [][2]string `json:"cookies"`
}

// Bytes returns the bytes a WSGI string stands for (each rune is one
// byte, as gunicorn decodes headers as Latin-1). Runes above 0xff, which
// a WSGI string never holds, are kept as UTF-8.
func Bytes(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			b = append(b, string(r)...)
			continue
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// Oracle is one running oracle.py. It is safe for concurrent use (calls
// are serialised).
type Oracle struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	dir string
}

// Start runs oracle.py with venv's Python.
func Start(ctx context.Context, venv string) (*Oracle, error) {
	py := filepath.Join(venv, "bin", "python")
	if venv == "" {
		return nil, ErrNoVenv
	}
	if _, err := os.Stat(py); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoVenv, err)
	}
	dir, err := os.MkdirTemp("", "sgw-oracle-*")
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	path := filepath.Join(dir, "oracle.py")
	if err := os.WriteFile(path, script, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oracle: %w", err)
	}
	cmd := exec.CommandContext(ctx, py, "-I", path)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oracle: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oracle: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("oracle: start %s: %w", py, err)
	}
	return &Oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), dir: dir}, nil
}

// Read asks how Superset's stack reads raw, the bytes of one request as
// they reach gunicorn.
func (o *Oracle) Read(raw []byte) (Reading, error) {
	q, err := json.Marshal(map[string]string{"raw": base64.StdEncoding.EncodeToString(raw)})
	if err != nil {
		return Reading{}, fmt.Errorf("oracle: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := o.in.Write(append(q, '\n')); err != nil {
		return Reading{}, fmt.Errorf("oracle: write: %w", err)
	}
	line, err := o.out.ReadBytes('\n')
	if err != nil {
		return Reading{}, fmt.Errorf("oracle: read: %w", err)
	}
	var r Reading
	if err := json.Unmarshal(line, &r); err != nil {
		return Reading{}, fmt.Errorf("oracle: answer %.200q: %w", line, err)
	}
	return r, nil
}

// Close ends the process.
func (o *Oracle) Close() error {
	_ = o.in.Close()
	err := o.cmd.Wait()
	_ = os.RemoveAll(o.dir)
	if err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	return nil
}

// ForTest starts an oracle from $SUPERSET_VENV for t and stops it when t
// ends. A missing virtualenv fails t: the oracle is what these tests
// compare against, so skipping would pass them without a check.
func ForTest(t testing.TB) *Oracle {
	t.Helper()
	o, err := Start(context.Background(), os.Getenv("SUPERSET_VENV"))
	if err != nil {
		t.Fatalf("%v (run `make superset-env`, or set SUPERSET_VENV to Superset 6.1.0's virtualenv)", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}
