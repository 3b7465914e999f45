package ratelimit

import "sync/atomic"

type degraded struct{ v atomic.Bool }

func (d *degraded) set(b bool) { d.v.Store(b) }
func (d *degraded) get() bool  { return d.v.Load() }
