// Command sgw-image writes the gateway's container image tarball (`make
// image`): see package deploy/image.
//
//	sgw-image -binary bin/image/superset-gateway -version 1.2.3 -o bin/superset-gateway-image.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/superset-gateway/superset-gateway/deploy/image"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sgw-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("sgw-image", flag.ContinueOnError)
	var s image.Spec
	fs.StringVar(&s.Binary, "binary", "", "static linux binary (CGO_ENABLED=0)")
	fs.StringVar(&s.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to ship")
	fs.StringVar(&s.Version, "version", "dev", "org.opencontainers.image.version, and the tag")
	fs.StringVar(&s.Revision, "revision", "", "org.opencontainers.image.revision (git commit)")
	fs.StringVar(&s.Source, "source", "https://github.com/superset-gateway/superset-gateway", "org.opencontainers.image.source")
	fs.StringVar(&s.Arch, "arch", runtime.GOARCH, "GOARCH of the binary")
	repo := fs.String("repository", "superset-gateway", "image name; the tag is -version")
	out := fs.String("o", "bin/superset-gateway-image.tar", "output tarball")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// SOURCE_DATE_EPOCH (reproducible-builds.org) dates the image; unset,
	// the Unix epoch does, so identical inputs give identical bytes.
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		s.Created = time.Unix(sec, 0)
	}
	tag, err := name.NewTag(*repo + ":" + s.Version)
	if err != nil {
		return err
	}
	img, err := image.Build(s)
	if err != nil {
		return err
	}
	if err := image.WriteTarball(*out, tag, img); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("%s: %s %s (docker load -i %s)\n", *out, tag.Name(), d, *out)
	return nil
}
