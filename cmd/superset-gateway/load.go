package main

import (
	"fmt"

	"github.com/superset-gateway/superset-gateway/accesstoken"
	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// loadConfig loads, validates and judges the config (config.LoadChecked)
// plus the checks that need a library config may not import. Every error
// is a usageError (exit 2).
func loadConfig(path string, env []string) (*config.Checked, error) {
	l, err := config.LoadChecked(path, env, accesstoken.MinPepperLen, checkRedisURL)
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}

// checkRedisURL refuses a Redis URL that does not parse: a config mistake
// (exit 2), caught at load so that check-config reports it too.
func checkRedisURL(c *config.Config) error {
	if u := c.Store.RedisURL; u != "" {
		if _, err := redis.ParseURL(u); err != nil {
			return fmt.Errorf("config: store.redis_url: %w", err)
		}
	}
	return nil
}
