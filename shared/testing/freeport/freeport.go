// Package freeport picks loopback ports for child processes (api and
// worker binaries, emulators) that bind them a moment later.
//
// The usual trick, listening on port 0 and closing, hands out a port from
// the kernel's ephemeral range, which every other port-0 listener in the
// run (httptest servers, fault proxies, another campaign's fake Webex)
// draws from too; between the close and the child's bind one of them can
// take it, and two calls can return the same port. A CI run of the soak
// lost an api instance that way: it could not bind, and its health probe
// was answered by another profile's instance on the same port. Ports from
// here come from just below the ephemeral range, which port-0 listeners
// never get, and are never handed out twice by one process.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// span is how many ports below the ephemeral range are drawn from.
const span = 10000

var (
	mu     sync.Mutex
	issued = map[int]bool{}
)

// Pick returns a loopback port that was free a moment ago, is outside the
// kernel's ephemeral range and has not been returned before by this
// process.
func Pick() (int, error) {
	lo, hi := window()
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if issued[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		ln.Close()
		issued[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port in %d–%d after 200 tries", lo, hi-1)
}

// HostPort is Pick as "127.0.0.1:port".
func HostPort() (string, error) {
	p, err := Pick()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// window is [lo, hi): the span ports below the ephemeral range's first
// port, never below 1024.
func window() (lo, hi int) {
	hi = ephemeralLow()
	return max(1024, hi-span), hi
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default where it cannot be read).
func ephemeralLow() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	lo, err := parseRangeLow(string(b))
	if err != nil || lo <= 1024+100 {
		return linuxDefault
	}
	return lo
}

func parseRangeLow(s string) (int, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, errors.New("want two fields")
	}
	return strconv.Atoi(f[0])
}
