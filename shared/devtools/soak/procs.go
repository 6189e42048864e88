package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

// proc is one long-running instance of a binary (api-1, worker-2, ...):
// the campaign kills and restarts it on the same port (a new one only
// when a life could not serve on it), so one proc has several lives.
type proc struct {
	Kind string // "api" or "worker"
	Name string
	bin  string
	env  []string
	dir  string // where its logs go

	mu    sync.Mutex
	port  int
	lives []*life
	// onExit is told about every life that ends.
	onExit func(*life)
}

// life is one process of a proc, from start to exit.
type life struct {
	Proc    string
	N       int
	PID     int
	Log     string
	Started time.Time
	Ready   time.Time // zero until /healthz answered
	// Told is what the campaign did to end it: "SIGKILL", "SIGTERM" or ""
	// (nothing: an exit then is unexpected); ToldAt when.
	Told   string
	ToldAt time.Time
	Ended  time.Time
	Exit   string // as exec reports it: "exit status 0", "signal: killed"
	Code   int    // exit code, -1 after a signal
	cmd    *exec.Cmd
	done   chan struct{}
}

func newProc(kind, name, bin, dir string, env []string, onExit func(*life)) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &proc{Kind: kind, Name: name, bin: bin, env: env, dir: dir, port: port, onExit: onExit}, nil
}

// freePort returns a loopback port that was free a moment ago and that
// no other instance of either profile has (see package freeport for why
// not port 0).
func freePort() (int, error) {
	p, err := freeport.Pick()
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return p, nil
}

// URL is the base URL of the proc's current port.
func (p *proc) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(p.port)
}

// Current is the latest life, nil before the first start.
func (p *proc) Current() *life {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lives) == 0 {
		return nil
	}
	return p.lives[len(p.lives)-1]
}

// Lives returns every life so far.
func (p *proc) Lives() []*life {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*life(nil), p.lives...)
}

// Up reports whether the current life answered /healthz and the campaign
// has not told it to end.
func (p *proc) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lives) == 0 {
		return false
	}
	l := p.lives[len(p.lives)-1]
	return !l.Ready.IsZero() && l.Told == "" && l.Ended.IsZero()
}

// Start starts a new life and waits until it answers /healthz. A life
// that does not get ready (its port taken meanwhile, say) is killed and
// tried once more on another port.
func (p *proc) Start(ctx context.Context) (*life, error) {
	l, err := p.start(ctx)
	if err == nil {
		return l, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	if perr := p.movePort(); perr != nil {
		return nil, errors.Join(err, perr)
	}
	return p.start(ctx)
}

// movePort gives the proc a new port for its next life.
func (p *proc) movePort() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.port = port
	p.mu.Unlock()
	return nil
}

func (p *proc) start(ctx context.Context) (*life, error) {
	p.mu.Lock()
	n := len(p.lives) + 1
	port := p.port
	p.mu.Unlock()
	logPath := filepath.Join(p.dir, fmt.Sprintf("%s-%d.log", p.Name, n))
	out, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = append(append([]string(nil), p.env...), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	// Never outlive the campaign, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", p.Name, err)
	}
	l := &life{Proc: p.Name, N: n, PID: cmd.Process.Pid, Log: logPath, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	p.mu.Lock()
	p.lives = append(p.lives, l)
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		l.Ended = time.Now()
		l.Exit, l.Code = "exit status 0", 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			l.Exit, l.Code = ee.String(), ee.ExitCode()
		} else if err != nil {
			l.Exit, l.Code = err.Error(), -1
		}
		p.mu.Unlock()
		close(l.done)
		if p.onExit != nil {
			p.onExit(l)
		}
	}()

	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			// Only an answer from this life counts: if someone else holds
			// the port, this life cannot bind it, and the caller tries
			// another port once it has exited.
			if resp.StatusCode == http.StatusOK && listensOn(l.PID, port) {
				p.mu.Lock()
				l.Ready = time.Now()
				p.mu.Unlock()
				return l, nil
			}
		}
		select {
		case <-l.done:
			return nil, fmt.Errorf("start %s: exited before answering /healthz (%s); see %s", p.Name, l.Exit, logPath)
		case <-ctx.Done():
			p.kill(l, syscall.SIGKILL)
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill(l, syscall.SIGKILL)
			return nil, fmt.Errorf("start %s: no answer on %s within 30s; see %s", p.Name, url, logPath)
		}
	}
}

// Signal tells the current life to end with sig (SIGKILL or SIGTERM) and
// waits until it has, at most grace; it returns that life.
func (p *proc) Signal(sig syscall.Signal, grace time.Duration) *life {
	l := p.Current()
	if l == nil {
		return nil
	}
	p.kill(l, sig)
	select {
	case <-l.done:
	case <-time.After(grace):
		p.kill(l, syscall.SIGKILL) // Told stays what it was: the life overstayed it
		<-l.done
	}
	return l
}

func (p *proc) kill(l *life, sig syscall.Signal) {
	p.mu.Lock()
	if l.Told == "" {
		l.Told, l.ToldAt = sigName(sig), time.Now()
	}
	p.mu.Unlock()
	_ = l.cmd.Process.Signal(sig)
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// snapshot returns a copy of l's fields, read under the proc's lock.
func (p *proc) snapshot(l *life) life {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := *l
	c.cmd, c.done = nil, nil
	return c
}

// downWindows are the intervals in which p was not serving: before its
// first life was ready, from the moment the campaign told a life to end
// (or it ended by itself) until the next life was ready.
func (p *proc) downWindows(end time.Time) []window {
	var out []window
	var downSince time.Time
	for i, l := range p.Lives() {
		s := p.snapshot(l)
		if i == 0 {
			downSince = s.Started
		}
		if !s.Ready.IsZero() && !downSince.IsZero() {
			out = append(out, window{downSince, s.Ready})
			downSince = time.Time{}
		}
		stop := s.ToldAt
		if stop.IsZero() || (!s.Ended.IsZero() && s.Ended.Before(stop)) {
			stop = s.Ended
		}
		if !stop.IsZero() && downSince.IsZero() {
			downSince = stop // a life that never got ready does not move it
		}
	}
	if !downSince.IsZero() {
		out = append(out, window{downSince, end})
	}
	return out
}

// window is a time interval.
type window struct{ From, To time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.From) && !t.After(w.To) }

func (w window) overlaps(from, to time.Time) bool { return !to.Before(w.From) && !from.After(w.To) }
