package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/superset-gateway/superset-gateway/config"
	"github.com/superset-gateway/superset-gateway/metrics"
	"github.com/superset-gateway/superset-gateway/store"
	"github.com/superset-gateway/superset-gateway/store/bolt"
	"github.com/superset-gateway/superset-gateway/store/instrument"
	"github.com/superset-gateway/superset-gateway/store/redis"
)

// BoltFileName is the embedded store's file inside data_dir.
const BoltFileName = "gateway.db"

// openStore opens the configured backend. When store.redis_url is set and
// Redis cannot be reached, it fails: falling back to the embedded store
// would split state between replicas and silently forget revocations.
// backup is the embedded store's hot copy (nil for Redis, whose own
// persistence is its backup).
func openStore(ctx context.Context, cfg *config.Config, m *metrics.Metrics, log *zap.Logger) (st store.Store, backup *bolt.Store, err error) {
	if cfg.Store.RedisURL == "" {
		return openEmbedded(filepath.Join(cfg.Store.DataDir, BoltFileName), m, log)
	}
	// go-redis reports pool trouble (failed dials) through its own
	// process-wide logger, which writes plain text to stderr; route it
	// into the gateway's log so that every line is one JSON record.
	goredis.SetLogger(redisLog{log.Named("redis")})
	s, err := redis.New(ctx, redis.Options{
		URL:              cfg.Store.RedisURL,
		TLSCAFile:        cfg.Store.RedisTLSCAFile,
		TLSServerName:    cfg.Store.RedisTLSServerName,
		SentinelUsername: cfg.Store.RedisSentinelUsername,
		SentinelPassword: string(cfg.Store.RedisSentinelPassword),
		OpTimeout:        cfg.Store.RedisTimeout,
		WaitReplicas:     cfg.Store.RedisWaitReplicas,
		WaitTimeout:      cfg.Store.RedisWaitTimeout,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store.redis_url: %w (the gateway does not fall back to the embedded store)", err)
	}
	log.Info("store: redis", zap.Stringer("url", s))
	return instrumented(s, m), nil, nil
}

// openEmbedded opens the bbolt file. It holds a file lock, so a second
// gateway on the same data_dir fails here instead of corrupting state.
func openEmbedded(path string, m *metrics.Metrics, log *zap.Logger) (store.Store, *bolt.Store, error) {
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	log.Info("store: embedded", zap.String("path", path))
	return instrumented(s, m), s, nil
}

// instrumented wraps s so that every operation's latency and errors reach
// the store metrics.
func instrumented(s store.Store, m *metrics.Metrics) store.Store { return instrument.Wrap(s, m) }

// redisLog adapts a zap logger to go-redis's Printf logger. Its messages
// are about connections failing or being dropped, so they are warnings.
type redisLog struct{ l *zap.Logger }

func (r redisLog) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}

// OpenStore opens the configured store for a maintenance command (store
// mark-restored) outside a running gateway: the same backend, URL and file
// the gateway would open. The embedded store's file lock makes it fail
// while a gateway holds the file.
func OpenStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (store.Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	st, _, err := openStore(ctx, cfg, metrics.New(metrics.NewRegistry()), log)
	return st, err
}

// EmbeddedPath is the embedded store's file for cfg ("" with Redis).
func EmbeddedPath(cfg *config.Config) string {
	if cfg.Store.RedisURL != "" {
		return ""
	}
	return filepath.Join(cfg.Store.DataDir, BoltFileName)
}

// GenerationFileName, inside data_dir, remembers the last store generation
// this gateway saw, so that a store found without its marker can be told
// apart: a wipe if the file names one, a new store if there is no file.
const GenerationFileName = "store-generation"

// seenGeneration returns the generation data_dir remembers, "" if none.
func seenGeneration(dataDir string, log *zap.Logger) string {
	b, err := os.ReadFile(filepath.Join(dataDir, GenerationFileName))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("store: remembered generation unreadable; a wiped store would be reported as new", zap.Error(err))
		}
		return ""
	}
	return strings.TrimSpace(string(b))
}

// rememberGeneration records gen in data_dir. Failing (a read-only
// data_dir) only costs the wipe/new distinction at a later start, never a
// stamp, so it is logged, not returned.
func rememberGeneration(dataDir, gen string, log *zap.Logger) {
	path := filepath.Join(dataDir, GenerationFileName)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == gen {
		return
	}
	err := os.MkdirAll(dataDir, 0o700)
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, []byte(gen+"\n"), 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		log.Warn("store: generation not remembered in data_dir; a later wipe would be reported as a new store", zap.Error(err))
	}
}

// freshStoreReason is the audit reason of store.generation_created.
func freshStoreReason(wiped bool) string {
	if wiped {
		return "store_wiped"
	}
	return "new_store"
}
