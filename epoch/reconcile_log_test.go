package epoch_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/superset-gateway/superset-gateway/epoch"
)

// Issue 19: a gateway starting before Superset is healthy (the demo, any
// cold start) logs no warning for the first failed listings; a Superset
// that stays unreachable is still warned about once the retries reach
// their cap. Before the fix the first failure was a warning.
func TestReconcilerStartupFailuresAreNotWarnings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int
		warn  bool
	}{
		{"HealthyAfterTwoTries", 2, false},
		{"NeverHealthy", 1 << 30, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			st := openBolt(t, filepath.Join(t.TempDir(), "s.db"), clk)
			l := &countingLister{fails: tc.fails}
			core, logs := observer.New(zapcore.InfoLevel)
			r, err := epoch.NewReconciler(epoch.ReconcilerOptions{Lister: l, Epochs: newEpochs(t, st, clk, epoch.Options{}), Store: st,
				Interval: time.Hour, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(bg)
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			deadline := time.Now().Add(10 * time.Second)
			for l.count() < 6 && l.count() <= tc.fails && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			<-done
			warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
			if tc.warn != (len(warns) > 0) {
				t.Errorf("after %d listings (%d failing): %d warnings; want warnings: %v", l.count(), min(l.count(), tc.fails), len(warns), tc.warn)
			}
			if n := logs.FilterMessage("epoch: reconcile not possible yet, retrying").Len(); n == 0 {
				t.Error("the first failure was not logged at all")
			}
		})
	}
}
