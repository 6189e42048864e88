package freeport

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// Ports picked by concurrent callers are distinct, listenable and never
// from the range a port-0 listener could be given meanwhile.
func TestPicksAreDistinctAndOutsideTheEphemeralRange(t *testing.T) {
	const n = 300
	ports := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p, err := Pick()
			if err != nil {
				t.Error(err)
			}
			ports[i] = p
		})
	}
	wg.Wait()
	low := ephemeralLow()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p >= low || p < 1024 {
			t.Errorf("port %d is not below the ephemeral range (from %d)", p, low)
		}
	}
	// What a port-0 listener gets is never one of ours.
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if p := ln.Addr().(*net.TCPAddr).Port; seen[p] {
			t.Errorf("a port-0 listener got %d, a picked port", p)
		}
		ln.Close()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatalf("a picked port cannot be listened on: %v", err)
	}
	ln.Close()
}

// A port someone already listens on is never picked.
func TestSkipsPortsInUse(t *testing.T) {
	lo, hi := window()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	busy := map[int]bool{}
	for p := lo; p < min(lo+2000, hi); p++ {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			held = append(held, l)
			busy[p] = true
		}
	}
	for range 100 {
		p, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if busy[p] {
			t.Fatalf("picked %d, which is being listened on", p)
		}
	}
}

func TestParseRangeLow(t *testing.T) {
	if lo, err := parseRangeLow("32768\t60999\n"); err != nil || lo != 32768 {
		t.Fatalf("got %d, %v", lo, err)
	}
	if _, err := parseRangeLow("junk"); err == nil {
		t.Fatal("junk parsed")
	}
}
