package main

import (
	"strings"
	"testing"
)

func TestLoggerBuffersInfoAndFlushesOnStop(t *testing.T) {
	var out syncBuffer
	log, stop, err := newLogger("info", &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("request")
	log.Named("proxy").Error("upstream request failed")
	// An error record is written at once, with what was buffered before it.
	got := out.String()
	if !strings.Contains(got, `"msg":"request"`) || !strings.Contains(got, `"msg":"upstream request failed"`) ||
		strings.Index(got, `"msg":"request"`) > strings.Index(got, `"msg":"upstream request failed"`) {
		t.Fatalf("after an error record: %q", got)
	}
	log.Info("last")
	stop()
	if !strings.Contains(out.String(), `"msg":"last"`) {
		t.Fatalf("stop did not flush: %q", out.String())
	}
}

func TestLoggerRejectsUnknownLevel(t *testing.T) {
	if _, _, err := newLogger("loud", &syncBuffer{}); err == nil {
		t.Fatal("unknown level accepted")
	}
}
