package main

import (
	"crypto/tls"
	"fmt"

	"github.com/superset-gateway/superset-gateway/gateway"
)

// checkConfig is check-config: it loads and judges the config like serve,
// then dry-runs what serve would build from it (TLS pair, upstream pool,
// header policy, request path) without opening the store, binding a port
// or contacting an upstream. Every problem is a usageError.
func checkConfig(path string, env []string) error {
	l, err := loadConfig(path, env)
	if err != nil {
		return err
	}
	cfg := l.Config
	if cfg.TLS.Enabled() {
		if _, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return usageError{fmt.Errorf("config: tls.cert_file, tls.key_file: %w", err)}
		}
	}
	if err := gateway.Check(cfg); err != nil {
		return usageError{err}
	}
	return nil
}
