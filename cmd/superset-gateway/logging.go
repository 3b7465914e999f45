package main

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Log buffering: the access log writes one record per request, and an
// unbuffered sink turns each into a write syscall on the request path.
// Records are collected in a buffer that is written when it fills or
// logFlushInterval after the first record, whichever comes first; records
// at error level and above are written at once (with the buffer before
// them, so the order is kept).
const (
	logBufferSize    = 64 << 10
	logFlushInterval = 200 * time.Millisecond
)

// newLogger returns the gateway's JSON logger writing to w at level
// ("debug", "info", "warn", "error"; validated by config), and the function
// that flushes what is buffered and stops the flusher. Call stop before the
// process exits (SIGTERM included) so that no record is lost. Writes are
// serialised, so w need not be safe for concurrent use.
func newLogger(level string, w io.Writer) (log *zap.Logger, stop func(), err error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	buf := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.AddSync(w),
		Size:          logBufferSize,
		FlushInterval: logFlushInterval,
	}
	core := &syncAtCore{Core: zapcore.NewCore(zapcore.NewJSONEncoder(enc), buf, lvl), at: zapcore.ErrorLevel}
	return zap.New(core, zap.ErrorOutput(buf)), func() { _ = buf.Stop() }, nil
}

// syncAtCore syncs after writing an entry at level at or above, so that
// errors reach the sink at once rather than at the next flush.
type syncAtCore struct {
	zapcore.Core
	at zapcore.Level
}

func (c *syncAtCore) With(fields []zapcore.Field) zapcore.Core {
	return &syncAtCore{Core: c.Core.With(fields), at: c.at}
}

func (c *syncAtCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *syncAtCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	err := c.Core.Write(e, fields)
	if e.Level >= c.at {
		if serr := c.Core.Sync(); err == nil {
			err = serr
		}
	}
	return err
}
