//go:build !unix

package upstream

import "net"

// idleProbe does nothing where a non-blocking peek is not available; a
// connection closed while idle is still replaced once by roundTrip.
type idleProbe struct{}

func newIdleProbe(net.Conn) idleProbe { return idleProbe{} }

func (idleProbe) usable() bool { return true }
