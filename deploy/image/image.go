// Package image builds the gateway's container image without a daemon: one
// layer holding the static binary, CA certificates, a passwd entry for the
// non-root user and the /data volume's directory, on an empty base, written
// as a tarball that both `docker load` and `podman load` read.
//
// It is a build tool: the gateway binary never imports it.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Fixed facts of the image, shared with the deployments under deploy/
// (compose's health check runs BinaryPath; its user is User).
const (
	BinaryPath = "/superset-gateway"
	CAPath     = "/etc/ssl/certs/ca-certificates.crt"
	DataDir    = "/data"
	ConfigPath = "/etc/superset-gateway/gateway.yaml"
	// UID and GID 65532: the conventional "nonroot" of distroless images,
	// owned by no account on a typical host.
	UID  = 65532
	User = "65532:65532"
)

// Spec is what varies between builds.
type Spec struct {
	// Binary is the path of a statically linked linux binary.
	Binary string
	// CACerts is the path of a PEM bundle, e.g. the build host's
	// /etc/ssl/certs/ca-certificates.crt; Superset and Redis over TLS are
	// verified against it.
	CACerts string
	// Version, Revision and Source become the OCI labels
	// org.opencontainers.image.{version,revision,source}. Version is required.
	Version, Revision, Source string
	// Created stamps the config and every file; the zero value is the Unix
	// epoch, so that a build from the same inputs is byte-identical.
	Created time.Time
	// Arch is the GOARCH of Binary; empty means amd64.
	Arch string
	// GzipLevel compresses the layer; 0 means gzip.DefaultCompression
	// (tests pass gzip.BestSpeed: the race detector makes compressing
	// 30 MB slow).
	GzipLevel int
}

// Build assembles the image.
func Build(s Spec) (v1.Image, error) {
	if s.Version == "" {
		return nil, errors.New("image: Version is required")
	}
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: binary: %w", err)
	}
	ca, err := os.ReadFile(s.CACerts)
	if err != nil {
		return nil, fmt.Errorf("image: CA certificates: %w", err)
	}
	created := s.Created
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	created = created.UTC()
	layerTar, err := rootfs(bin, ca, created)
	if err != nil {
		return nil, err
	}
	// Compressed once here: given an uncompressed opener, the layer would
	// gzip the 30 MB again for its digest, its size and every write.
	var gz bytes.Buffer
	level := s.GzipLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	zw, err := gzip.NewWriterLevel(&gz, level)
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	if _, err := zw.Write(layerTar); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "superset-gateway deploy/image",
			Comment:   "static binary, CA certificates, user 65532, /data",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: created}
	labels := map[string]string{
		"org.opencontainers.image.title":   "superset-gateway",
		"org.opencontainers.image.version": s.Version,
	}
	if s.Revision != "" {
		labels["org.opencontainers.image.revision"] = s.Revision
	}
	if s.Source != "" {
		labels["org.opencontainers.image.source"] = s.Source
	}
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"serve", "--config", ConfigPath},
		WorkingDir:   DataDir,
		Env:          []string{"SSL_CERT_FILE=" + CAPath},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9464/tcp": {}},
		Volumes:      map[string]struct{}{DataDir: {}},
		Labels:       labels,
		// The gateway drains on SIGTERM (limits.shutdown_grace).
		StopSignal: "SIGTERM",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// rootfs is the image's one layer as an uncompressed tar.
func rootfs(bin, ca []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, uid int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, UID, DataDir)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	steps := []func() error{
		func() error { return dir("etc", 0, 0o755) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("etc/ssl", 0, 0o755) },
		func() error { return dir("etc/ssl/certs", 0, 0o755) },
		func() error { return file(CAPath[1:], 0o644, ca) },
		func() error { return dir("etc/superset-gateway", 0, 0o755) },
		// The only writable directory: the embedded store and generated
		// cookie keys when no Redis is configured.
		func() error { return dir(DataDir[1:], UID, 0o700) },
		func() error { return dir("tmp", 0, 0o1777) },
		func() error { return file(BinaryPath[1:], 0o755, bin) },
		tw.Close,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("image: layer: %w", err)
		}
	}
	return buf.Bytes(), nil
}
