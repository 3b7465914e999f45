// Package superset carries the files the end-to-end harness needs to run
// Apache Superset: the configuration template read by every Superset home it
// bootstraps. It is embedded so that the harness works from any working
// directory and under -trimpath; install.sh and the constraints file are used
// by make (superset-env) directly.
package superset

import (
	"bytes"
	_ "embed"
)

//go:embed superset_config.py
var config []byte

// Config returns superset_config.py; it reads settings.json from its own
// directory. The caller owns the returned slice.
func Config() []byte { return bytes.Clone(config) }
