package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func request(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestClientAddr(t *testing.T) {
	const sock = "10.0.0.9:41234"
	tests := []struct {
		name   string
		hops   int
		remote string
		xff    []string
		want   string // "" for the zero Addr
	}{
		{name: "no proxy uses socket", remote: sock, xff: []string{"203.0.113.1"}, want: "10.0.0.9"},
		{name: "no proxy IPv6 socket", remote: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "socket with zone", remote: "[fe80::1%eth0]:443", want: "fe80::1"},
		{name: "socket without port", remote: "192.0.2.5", want: "192.0.2.5"},
		{name: "socket 4in6 unmapped", remote: "[::ffff:192.0.2.5]:80", want: "192.0.2.5"},
		{name: "socket unusable", remote: "@", want: ""},
		{name: "one hop rightmost", hops: 1, remote: sock, xff: []string{"198.51.100.7, 203.0.113.1"}, want: "203.0.113.1"},
		{name: "one hop single entry", hops: 1, remote: sock, xff: []string{"203.0.113.1"}, want: "203.0.113.1"},
		{name: "two hops", hops: 2, remote: sock, xff: []string{"1.1.1.1, 198.51.100.7, 203.0.113.1"}, want: "198.51.100.7"},
		{name: "several headers concatenated", hops: 2, remote: sock, xff: []string{"1.1.1.1, 198.51.100.7", "203.0.113.1"}, want: "198.51.100.7"},
		{name: "several headers rightmost", hops: 1, remote: sock, xff: []string{"198.51.100.7", "203.0.113.1"}, want: "203.0.113.1"},
		{name: "fewer entries than hops", hops: 3, remote: sock, xff: []string{"198.51.100.7, 203.0.113.1"}, want: "10.0.0.9"},
		{name: "no header", hops: 1, remote: sock, want: "10.0.0.9"},
		{name: "empty header", hops: 1, remote: sock, xff: []string{""}, want: "10.0.0.9"},
		{name: "empty elements skipped", hops: 2, remote: sock, xff: []string{"198.51.100.7,, 203.0.113.1 ,"}, want: "198.51.100.7"},
		{name: "spaces trimmed", hops: 1, remote: sock, xff: []string{"  203.0.113.1\t"}, want: "203.0.113.1"},
		{name: "IPv6 entry", hops: 1, remote: sock, xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "bracketed IPv6", hops: 1, remote: sock, xff: []string{"[2001:db8::7]"}, want: "2001:db8::7"},
		{name: "bracketed IPv6 with port", hops: 1, remote: sock, xff: []string{"[2001:db8::7]:8443"}, want: "2001:db8::7"},
		{name: "IPv4 with port", hops: 1, remote: sock, xff: []string{"203.0.113.1:5555"}, want: "203.0.113.1"},
		{name: "4in6 entry unmapped", hops: 1, remote: sock, xff: []string{"::ffff:203.0.113.1"}, want: "203.0.113.1"},
		{name: "zoned entry, zone dropped", hops: 1, remote: sock, xff: []string{"fe80::7%25eth0"}, want: "fe80::7"},
		{name: "zoned entry raw", hops: 1, remote: sock, xff: []string{"fe80::7%eth0"}, want: "fe80::7"},
		{name: "invalid entry falls back", hops: 1, remote: sock, xff: []string{"198.51.100.7, unknown"}, want: "10.0.0.9"},
		{name: "obfuscated entry falls back", hops: 1, remote: sock, xff: []string{"_hidden"}, want: "10.0.0.9"},
		{name: "forged left part ignored", hops: 1, remote: sock, xff: []string{"127.0.0.1, 10.1.1.1, 203.0.113.1"}, want: "203.0.113.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolver{TrustedHops: tt.hops}.ClientAddr(request(tt.remote, tt.xff...))
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::ffff:198.51.100.0/120"),
	}
	tests := []struct {
		name    string
		allowed []netip.Prefix
		addr    netip.Addr
		want    bool
	}{
		{name: "empty list allows all", addr: netip.MustParseAddr("8.8.8.8"), want: true},
		{name: "empty list allows zero", addr: netip.Addr{}, want: true},
		{name: "inside IPv4", allowed: prefixes, addr: netip.MustParseAddr("192.0.2.200"), want: true},
		{name: "outside IPv4", allowed: prefixes, addr: netip.MustParseAddr("192.0.3.1"), want: false},
		{name: "inside IPv6", allowed: prefixes, addr: netip.MustParseAddr("2001:db8:1::1"), want: true},
		{name: "outside IPv6", allowed: prefixes, addr: netip.MustParseAddr("2001:db9::1"), want: false},
		{name: "4in6 address in IPv4 prefix", allowed: prefixes, addr: netip.MustParseAddr("::ffff:192.0.2.1"), want: true},
		{name: "IPv4 address in 4in6 prefix", allowed: prefixes, addr: netip.MustParseAddr("198.51.100.9"), want: true},
		{name: "zero address with a list", allowed: prefixes, addr: netip.Addr{}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Resolver{Allowed: tt.allowed}).Allows(tt.addr); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct {
		name string
		addr netip.Addr
		want string
	}{
		{name: "IPv4", addr: netip.MustParseAddr("192.0.2.1"), want: "192.0.2.1"},
		{name: "4in6", addr: netip.MustParseAddr("::ffff:192.0.2.1"), want: "192.0.2.1"},
		{name: "IPv6 by /64", addr: netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), want: "2001:db8:1:2::/64"},
		{name: "zero", addr: netip.Addr{}, want: "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.addr); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkClientAddr(b *testing.B) {
	r := request("10.0.0.9:41234", "198.51.100.7, 203.0.113.1")
	res := Resolver{TrustedHops: 1}
	b.ReportAllocs()
	for b.Loop() {
		res.ClientAddr(r)
	}
}
