package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// WriteTarball writes img, tagged ref, to path as one tar that is at the
// same time an OCI image layout (oci-layout, index.json, blobs/sha256/…)
// and a docker-archive (manifest.json naming the same blobs): the shape
// `docker save` writes since Docker 25. `docker load`, `podman load` and
// `skopeo copy oci-archive:` all read it. The file is written under a
// temporary name and renamed, so a failed build leaves no partial tarball.
func WriteTarball(path string, ref name.Tag, img v1.Image) (err error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	mdigest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	mtype, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	cdigest, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	tw := tar.NewWriter(tmp)
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	addBytes := func(name string, b []byte) error { return add(name, int64(len(b)), bytes.NewReader(b)) }
	blob := func(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

	if err := addBytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		size, err := l.Size()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		err = add(blob(d), size, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		layerPaths = append(layerPaths, blob(d))
	}
	if err := addBytes(blob(cdigest), config); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := addBytes(blob(mdigest), manifest); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests: []v1.Descriptor{{
			MediaType: mtype,
			Size:      int64(len(manifest)),
			Digest:    mdigest,
			Annotations: map[string]string{
				// containerd and podman read the full name; the OCI
				// spec's ref.name is the tag.
				"io.containerd.image.name":          containerdName(ref),
				"org.opencontainers.image.ref.name": ref.TagStr(),
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := addBytes("index.json", index); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	docker, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{Config: blob(cdigest), RepoTags: []string{ref.String()}, Layers: layerPaths}})
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := addBytes("manifest.json", docker); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	// A tarball holds nothing secret; CreateTemp made it 0600.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return nil
}

// containerdName is ref fully qualified the way containerd spells Docker
// Hub ("docker.io/library/x:tag", where go-containerregistry says
// "index.docker.io").
func containerdName(ref name.Tag) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr() + ":" + ref.TagStr()
}
