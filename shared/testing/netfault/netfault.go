// Package netfault is a TCP proxy for tests that need a real network fault
// between a client and a real server (here: the Firestore emulator): it
// forwards connections until it is told to black-hole them, which is what a
// partition looks like to a client, a hang rather than a clean refusal.
package netfault

import (
	"io"
	"net"
	"sync"
)

// Proxy forwards connections from its loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	refuse bool
	conns  map[net.Conn]struct{}
	// held are the connections accepted while cut and never answered,
	// which Heal forwards.
	held map[net.Conn]struct{}
	wg   sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every open connection and black-holes new ones: they are
// accepted and then never answered.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
		delete(p.held, c)
	}
}

// Refuse drops every open connection and closes new ones at once, as a
// stopped server would look to a client.
func (p *Proxy) Refuse() {
	p.Cut()
	p.mu.Lock()
	p.refuse = true
	p.mu.Unlock()
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut, p.refuse = false, false
	p.mu.Unlock()
}

// Heal ends a Cut or Refuse as a healed partition does: new connections
// are forwarded again, and so are the ones accepted while cut, whose
// clients were left waiting (what they sent meanwhile is delivered, as
// TCP retransmission would). After Restore those clients wait for their
// own timeouts instead.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut, p.refuse = false, false
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for c := range held {
		p.wg.Add(1)
		go p.forward(c)
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
	return !p.cut
}

func (p *Proxy) hold(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[net.Conn]struct{}{}
	}
	p.held[c] = struct{}{}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.refuse
		p.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		if !p.track(c) {
			p.hold(c)
			continue // black hole: held open, never answered, closed by Cut or Close, forwarded by Heal
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
