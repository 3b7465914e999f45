package deploytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/superset-gateway/superset-gateway/deploy/image"
)

// buildStatic builds the gateway as `make image` does (CGO off, trimmed).
func buildStatic(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "superset-gateway")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "../../cmd/superset-gateway")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// layerFiles reads every entry of the image's flattened filesystem.
func layerFiles(img v1.Image) (map[string]*tar.Header, map[string][]byte, error) {
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, data, nil
		}
		if err != nil {
			return nil, nil, err
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		hdrs[p] = h
		if h.Typeflag == tar.TypeReg {
			if data[p], err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		}
	}
}

// checkImage asserts what issue 17 asks of the image: non-root user,
// entrypoint, exposed ports, the /data volume, version and source labels
// (checkConfig), CA certificates and a static binary (checkFiles: the base
// is empty, so a dynamically linked binary could not start).
func checkImage(img v1.Image, version string) []error {
	errs := checkConfig(img, version)
	hdrs, data, err := layerFiles(img)
	if err != nil {
		return append(errs, err)
	}
	return append(errs, checkFiles(hdrs, data)...)
}

func checkConfig(img v1.Image, version string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cf, err := img.ConfigFile()
	if err != nil {
		return []error{err}
	}
	c := cf.Config
	if c.User != image.User {
		bad("user %q, want %s (non-root)", c.User, image.User)
	}
	if !slices.Equal(c.Entrypoint, []string{image.BinaryPath}) {
		bad("entrypoint %q", c.Entrypoint)
	}
	for _, p := range []string{"8080/tcp", "9464/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			bad("port %s not exposed", p)
		}
	}
	if _, ok := c.Volumes[image.DataDir]; !ok {
		bad("no %s volume", image.DataDir)
	}
	if got := c.Labels["org.opencontainers.image.version"]; got != version {
		bad("version label %q, want %q", got, version)
	}
	if !strings.HasPrefix(c.Labels["org.opencontainers.image.source"], "https://") {
		bad("no source label")
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		bad("platform %s/%s", cf.OS, cf.Architecture)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		bad("want one layer on an empty base, got %d", len(cf.RootFS.DiffIDs))
	}
	return errs
}

func checkFiles(hdrs map[string]*tar.Header, data map[string][]byte) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if h := hdrs[image.BinaryPath]; h == nil || h.Mode&0o111 == 0 {
		bad("%s missing or not executable", image.BinaryPath)
	} else if f, err := elf.NewFile(bytes.NewReader(data[image.BinaryPath])); err != nil {
		bad("%s: %v", image.BinaryPath, err)
	} else {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				bad("%s is dynamically linked: it cannot start on an empty base", image.BinaryPath)
			}
		}
	}
	if !bytes.Contains(data[image.CAPath], []byte("-----BEGIN CERTIFICATE-----")) {
		bad("no CA certificates at %s", image.CAPath)
	}
	if h := hdrs[image.DataDir]; h == nil || h.Typeflag != tar.TypeDir || h.Uid != image.UID || h.Mode&0o777 != 0o700 {
		bad("%s is not a 0700 directory owned by %d", image.DataDir, image.UID)
	}
	if !bytes.Contains(data["/etc/passwd"], fmt.Appendf(nil, ":%d:%d:", image.UID, image.UID)) {
		bad("/etc/passwd has no entry for %d", image.UID)
	}
	return errs
}

// untar unpacks a tarball into a new directory.
func untar(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("tarball entry %q escapes", h.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImage(t *testing.T) {
	const version = "1.2.3-test"
	bin := buildStatic(t)
	img, err := image.Build(image.Spec{
		Binary: bin, CACerts: "/etc/ssl/certs/ca-certificates.crt",
		Version: version, Revision: "0123abcd", Source: "https://github.com/superset-gateway/superset-gateway",
		GzipLevel: gzip.BestSpeed,
	})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("superset-gateway:" + version)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := image.WriteTarball(path, tag, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	// The tarball read back both ways the loaders read it: as a
	// docker-archive (manifest.json) and as an OCI layout (index.json).
	fromDocker, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("docker-archive view: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(untar(t, path))
	if err != nil {
		t.Fatalf("OCI layout view: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != want ||
		im.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/superset-gateway:"+version {
		t.Fatalf("OCI index: %+v, %v", im, err)
	}
	fromOCI, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	// Both views hold the same config, which names the layer by the
	// digest of its content (the docker-archive view has no manifest of
	// its own: the loader writes one, with docker media types).
	wantConfig, _ := img.ConfigName()
	if c, err := fromDocker.ConfigName(); err != nil || c != wantConfig {
		t.Errorf("docker-archive view: config %s (%v), want %s", c, err, wantConfig)
	}
	for _, err := range checkConfig(fromDocker, version) {
		t.Errorf("docker-archive view: %v", err)
	}
	for _, err := range checkConfig(fromOCI, version) {
		t.Errorf("OCI layout view: %v", err)
	}
	hdrs, data, err := layerFiles(fromOCI)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkFiles(hdrs, data) {
		t.Errorf("OCI layout view: %v", err)
	}
	// Deterministic: the same inputs give the same image (checked on a
	// small binary: what makes a build reproducible does not depend on it).
	var digests []v1.Hash
	for range 2 {
		small, err := image.Build(image.Spec{Binary: "/bin/true", CACerts: "/etc/ssl/certs/ca-certificates.crt",
			Version: version, Revision: "0123abcd", Source: "https://github.com/superset-gateway/superset-gateway"})
		if err != nil {
			t.Fatal(err)
		}
		d, err := small.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds from the same inputs: %s and %s", digests[0], digests[1])
	}

	// The binary from the layer runs: version and check-config.
	dir := t.TempDir()
	exe := filepath.Join(dir, "superset-gateway")
	if err := os.WriteFile(exe, data[image.BinaryPath], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "superset-gateway ") {
		t.Errorf("version: %v, %q", err, out)
	}
	key := filepath.Join(dir, "superset_secret_key")
	if err := os.WriteFile(key, []byte(randomB64(t, 48)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nsuperset:\n  secret_key_file: "+key+"\nstore:\n  data_dir: "+dir+"/data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(exe, "check-config", "--config", cfg).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Errorf("check-config: %v, %q", err, out)
	}
	// And it still refuses a bad config (exit 2), so "OK" above means
	// something.
	if err := os.WriteFile(cfg, []byte("lisen: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if out, err := exec.Command(exe, "check-config", "--config", cfg).CombinedOutput(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("check-config of a bad config: %v, %q; want exit 2", err, out)
	}

	t.Run("mutations", func(t *testing.T) {
		withConfig := func(edit func(c *v1.Config)) v1.Image {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := *cf.Config.DeepCopy()
			edit(&c)
			m, err := mutate.Config(img, c)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		dynamic, err := image.Build(image.Spec{Binary: "/bin/true", CACerts: "/etc/ssl/certs/ca-certificates.crt", Version: version})
		if err != nil {
			t.Fatal(err)
		}
		config := func(img v1.Image) []error { return checkConfig(img, version) }
		whole := func(img v1.Image) []error { return checkImage(img, version) }
		for _, tc := range []struct {
			name  string
			img   v1.Image
			check func(v1.Image) []error
			want  string
		}{
			{"root user", withConfig(func(c *v1.Config) { c.User = "" }), config, "non-root"},
			{"uid 0", withConfig(func(c *v1.Config) { c.User = "0:0" }), config, "non-root"},
			{"no volume", withConfig(func(c *v1.Config) { c.Volumes = nil }), config, "volume"},
			{"no version label", withConfig(func(c *v1.Config) { delete(c.Labels, "org.opencontainers.image.version") }), config, "version label"},
			{"no port", withConfig(func(c *v1.Config) { c.ExposedPorts = nil }), config, "not exposed"},
			{"shell entrypoint", withConfig(func(c *v1.Config) { c.Entrypoint = []string{"/bin/sh", "-c"} }), config, "entrypoint"},
			{"dynamic binary", dynamic, whole, "dynamically linked"},
		} {
			if err := errors.Join(tc.check(tc.img)...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.want)
			}
		}
	})
}
