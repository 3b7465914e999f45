//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// idleProbe looks at a kept-alive connection before it is used again,
// without blocking: a connection the node closed meanwhile (keep-alive
// timeout) reads as EOF, and one with bytes waiting was sent something
// nobody asked for (an unsolicited or overlong answer) and must not carry
// the next request, whose response those bytes would pose as. It reports
// whether the connection may be used. http.Transport learns the same from
// the reader goroutine it keeps on every idle connection.
type idleProbe struct {
	rc syscall.RawConn // nil: not probed
}

func newIdleProbe(c net.Conn) idleProbe {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return idleProbe{}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return idleProbe{}
	}
	return idleProbe{rc: rc}
}

func (p idleProbe) usable() bool {
	if p.rc == nil {
		return true
	}
	var buf [1]byte
	var n int
	var rerr error
	err := p.rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	if err != nil {
		return false
	}
	// Nothing to read: the idle state it should be in.
	return n < 0 && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
}
