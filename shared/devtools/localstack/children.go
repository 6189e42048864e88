package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

// stopGrace is how long a child gets between SIGTERM and SIGKILL.
const stopGrace = 10 * time.Second

// console writes whole lines to the terminal, one writer at a time, so the
// children's logs, events and our own messages never interleave mid-line.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func newConsole(w io.Writer) *console { return &console{w: w} }

// line writes s after prefix.
func (c *console) line(prefix, s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%s %s\n", prefix, strings.TrimRight(s, "\r\n"))
}

// say writes a localstack message.
func (c *console) say(format string, args ...any) {
	c.line("[localstack]", fmt.Sprintf(format, args...))
}

// child is a binary of the service running as a child process. It stays
// in our process group, so Ctrl-C in a terminal reaches it as well.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
	err  error         // what Wait returned
}

// startChild starts bin with env, prefixes each line of its output with
// [name], and sends the child to exited once it has ended.
func startChild(name, bin string, env []string, con *console, exited chan<- *child) (*child, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			s, err := br.ReadString('\n')
			if s != "" {
				con.line("["+name+"]", s)
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		select { // print its last lines before it is reported gone
		case <-drained:
		case <-time.After(time.Second):
		}
		c.err = err
		close(c.done)
		exited <- c
	}()
	return c, nil
}

// exit describes how the child ended.
func (c *child) exit() string {
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.String() // "exit status 1", "signal: killed"
	}
	if c.err != nil {
		return c.err.Error()
	}
	return "exit status 0"
}

// stop sends SIGTERM and, if the child is still running after stopGrace,
// SIGKILL. It returns once the child has been waited for.
func (c *child) stop(con *console) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(stopGrace):
		con.say("%s still running %s after SIGTERM: killing it", c.name, stopGrace)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// stopChildren stops all children at once and reports how each ended.
func stopChildren(children []*child, con *console) {
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Go(func() {
			c.stop(con)
			con.say("%s stopped (%s)", c.name, c.exit())
		})
	}
	wg.Wait()
}

// freePort returns the first port from `from` on that can be listened on
// at host, skipping the ones in taken; from 0 picks a free loopback port
// (package freeport says which). If none
// of the next 100 is free, it returns from and the child reports the
// conflict.
func freePort(host string, from int, taken ...int) int {
	if from == 0 { // only loopback ports are picked this way
		p, _ := freeport.Pick()
		return p
	}
	for p := from; p < from+100; p++ {
		if slices.Contains(taken, p) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			ln.Close()
			return p
		}
	}
	return from
}

// listen opens a listener on host:port.
func listen(host string, port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s:%d: %w", host, port, err)
	}
	return ln, nil
}

// logger is a slog.Logger whose records become console lines after prefix,
// as key=value text without time and level.
func (c *console) logger(prefix string) *slog.Logger {
	return slog.New(slog.NewTextHandler(lineWriter{c, prefix}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// lineWriter writes each line it gets to the console after prefix.
type lineWriter struct {
	c      *console
	prefix string
}

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.c.line(w.prefix, l)
	}
	return len(p), nil
}
