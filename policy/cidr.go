package policy

import (
	"errors"
	"net/netip"
	"strings"
)

// ParseCIDR parses a network ("10.0.0.0/8", "2001:db8::/32") or a single
// address meaning just that host, as operators write them in
// trusted_proxies and users in an access token's allowed ranges. The
// prefix is masked, and an IPv4-mapped IPv6 form ("::ffff:10.0.0.1",
// "::ffff:10.0.0.0/104") becomes the IPv4 one, since the gateway compares
// client addresses unmapped: without it such an entry would match nothing.
func ParseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, errors.New("an IPv4-mapped prefix shorter than /96 is not an IPv4 network")
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
