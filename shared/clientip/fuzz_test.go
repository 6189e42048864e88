package clientip

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddr checks that header parsing never panics and that the
// result is always either the socket's address or a well-formed entry of
// X-Forwarded-For.
func FuzzClientAddr(f *testing.F) {
	seeds := []struct {
		remote, xff1, xff2 string
		hops               uint8
	}{
		{"10.0.0.9:1", "203.0.113.1", "", 1},
		{"[2001:db8::1]:443", "198.51.100.7, 203.0.113.1", "2001:db8::7", 2},
		{"@", ",,, ,", "[::1]:80", 3},
		{"1.2.3.4", "[fe80::1%eth0]:8080, ::ffff:1.2.3.4", "", 1},
		{"[::ffff:10.0.0.1]:80", "unknown", "[", 1},
		{"", "", "", 0},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff1, s.xff2, s.hops)
	}
	f.Fuzz(func(t *testing.T, remote, xff1, xff2 string, hops uint8) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, v := range []string{xff1, xff2} {
			if v != "" {
				r.Header.Add("X-Forwarded-For", v)
			}
		}
		res := Resolver{TrustedHops: int(hops % 8), Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
		got := res.ClientAddr(r)
		socket := Resolver{}.ClientAddr(r)
		res.Allows(got)
		Key(got)
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("got %v, want no zone and not IPv4-mapped", got)
		}
		if socket != parse(remote) {
			t.Fatalf("socket: got %v, want parse(%q)", socket, remote)
		}
		if res.TrustedHops == 0 && got != socket {
			t.Fatalf("hops 0: got %v, want socket %v", got, socket)
		}
		if got == socket {
			return
		}
		// Otherwise got must be one of the header's elements.
		found := false
		for _, e := range strings.Split(xff1+","+xff2, ",") {
			if strings.TrimSpace(e) != "" && parse(e) == got {
				found = true
			}
		}
		if !found {
			t.Fatalf("got %v, want the socket address or an X-Forwarded-For entry (%q, %q)", got, xff1, xff2)
		}
	})
}
