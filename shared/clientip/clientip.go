// Package clientip finds the address of the client behind an HTTP request
// and checks it against an allow-list (ALLOWED_CIDRS).
//
// Without trusted proxies the client is the socket's peer. Behind N trusted
// proxies (TRUSTED_PROXY_HOPS; 1 on Cloud Run, whose front end appends the
// address it received the connection from), the client is the N-th address
// from the right of X-Forwarded-For: every entry to its right was appended
// by a trusted proxy, every entry to its left may be forged by the client.
// The package imports no HTTP framework.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// A Resolver finds client addresses. The zero value uses the socket's
// address and allows every address.
type Resolver struct {
	// TrustedHops is the number of proxies in front of the service that
	// each append one address to X-Forwarded-For.
	TrustedHops int
	// Allowed lists the prefixes served; empty means every address.
	Allowed []netip.Prefix
}

// ClientAddr returns the client's address: the socket peer's when
// TrustedHops is 0, else the TrustedHops-th entry from the right of the
// X-Forwarded-For headers (several headers count as one list, in order;
// empty list elements are skipped as RFC 9110 section 5.6.1 requires).
//
// It falls back to the socket's address when the list has fewer entries
// than TrustedHops or the chosen entry is not an address. A short list
// means the request did not come through the whole trusted chain (a
// misconfiguration, or a client reaching an inner hop directly), so
// every entry in it may have been written by the client; taking the
// leftmost instead would let such a client pick its own address, and
// with it its throttling key and its way past Allowed. The socket's
// address is the only one the client cannot choose.
//
// Addresses are returned without zone and with IPv4-mapped IPv6
// addresses unmapped. The result is the zero Addr only when RemoteAddr
// itself is unusable.
func (r Resolver) ClientAddr(req *http.Request) netip.Addr {
	socket := parse(req.RemoteAddr)
	if r.TrustedHops <= 0 {
		return socket
	}
	if a, ok := fromRight(req.Header["X-Forwarded-For"], r.TrustedHops); ok {
		return a
	}
	return socket
}

// fromRight returns the n-th non-empty element from the right of the
// comma-separated lists in values, without splitting the whole header.
func fromRight(values []string, n int) (netip.Addr, bool) {
	seen := 0
	for i := len(values) - 1; i >= 0; i-- {
		s := values[i]
		for {
			j := strings.LastIndexByte(s, ',')
			elem := strings.TrimSpace(s[j+1:])
			if elem != "" {
				if seen++; seen == n {
					a := parse(elem)
					return a, a.IsValid()
				}
			}
			if j < 0 {
				break
			}
			s = s[:j]
		}
	}
	return netip.Addr{}, false
}

// parse accepts "1.2.3.4", "1.2.3.4:80", "::1", "[::1]", "[::1]:80",
// with optional surrounding white space.
func parse(s string) netip.Addr {
	s = strings.TrimSpace(s)
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, _ = netip.ParseAddr(s[1 : len(s)-1])
	} else {
		a, _ = netip.ParseAddr(s)
	}
	return a.WithZone("").Unmap()
}

// Allows reports whether a may be served: always when the Allowed list is
// empty, else when a lies in one of its prefixes. IPv4-mapped IPv6
// addresses and prefixes are compared as IPv4. The zero Addr is allowed
// only when the list is empty. (The method is not called Allowed because
// the field is.)
func (r Resolver) Allows(a netip.Addr) bool {
	if len(r.Allowed) == 0 {
		return true
	}
	a = a.WithZone("").Unmap()
	for _, p := range r.Allowed {
		if pa := p.Addr(); pa.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Key returns a to be used as a throttling key: the address itself for
// IPv4, its /64 for IPv6, since one host commonly holds a whole /64 and
// could otherwise rotate through it to escape throttling. The zero Addr
// gives "invalid IP".
func Key(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
