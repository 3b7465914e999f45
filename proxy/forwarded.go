package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// trustSet holds the networks of proxies allowed to set X-Forwarded-*.
type trustSet []netip.Prefix

func (t trustSet) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr returns the address of the TCP peer from RemoteAddr.
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// parseForwardedAddr parses one X-Forwarded-For element: an address, or an
// address with a port ("1.2.3.4:5", "[::1]:5") as some proxies send.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// clientAddr returns the rightmost address that is not a trusted proxy:
// starting from the TCP peer and walking X-Forwarded-For right to left while
// each hop is trusted. A malformed element ends the walk at the last good
// (trusted) hop, so garbage cannot choose the client address. Only the
// rightmost untrusted entry counts, so a client cannot spoof its address by
// prepending entries.
func (t trustSet) clientAddr(peer netip.Addr, xff []string) netip.Addr {
	if !t.contains(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var elem string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				elem, line = line[j+1:], line[:j]
			} else {
				elem, line = line, ""
			}
			if strings.TrimSpace(elem) == "" {
				continue
			}
			a, ok := parseForwardedAddr(elem)
			if !ok {
				return client
			}
			client = a
			if !t.contains(a) {
				return a
			}
		}
	}
	return client
}

// forwardedHeader reports whether a header name is one of the forwarding
// headers that only trusted proxies may set. X-Forwarded-Prefix and -Port
// matter too: Superset's ProxyFix can honour them when building URLs.
func forwardedHeader(name string) bool {
	return strings.HasPrefix(name, "X-Forwarded-") || name == "Forwarded" || name == "X-Real-Ip"
}

// scheme is the scheme the client used to reach the gateway.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
