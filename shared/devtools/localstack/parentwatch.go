package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Why localstack watches its parent: `make run &` followed by
// `kill -INT <make's pid>` signals make alone. GNU make's handler for
// SIGINT (unlike SIGTERM, which it passes on) does not signal its
// children, because a terminal's Ctrl-C reaches the whole process group
// anyway; it waits for them, and they never learn anything happened. So
// make would wait forever for localstack.
//
// What a child can see is that make's handler resets the signal to its
// default disposition before waiting: on Linux, the signal's bit leaves
// SigCgt in /proc/<make>/status. localstack polls its parent's SigCgt and
// stops as if it had got the signal itself when the bit of SIGINT, SIGTERM
// or SIGHUP goes away, and stops as well when its parent is gone (it is
// then re-parented). Without /proc only the latter works.

// parentPoll is how often the parent is looked at.
const parentPoll = 200 * time.Millisecond

// watchedSignals are the signals whose handling the parent gives up when
// it gets them.
var watchedSignals = []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// watchParent calls stop with a description once the parent process got
// one of watchedSignals or is gone, or returns when ctx ends.
func watchParent(ctx context.Context, stop func(why string)) {
	ppid := os.Getppid()
	caught, _ := caughtSignals(ppid)
	t := time.NewTicker(parentPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if os.Getppid() != ppid {
			stop(fmt.Sprintf("parent process %d is gone", ppid))
			return
		}
		now, err := caughtSignals(ppid)
		if err != nil {
			continue
		}
		for _, sig := range watchedSignals {
			bit := uint64(1) << (sig - 1)
			if caught&bit != 0 && now&bit == 0 {
				stop(fmt.Sprintf("parent process %d got %v", ppid, sig))
				return
			}
		}
		caught = now
	}
}

// caughtSignals reads the mask of signals pid has a handler for (SigCgt
// in /proc/<pid>/status).
func caughtSignals(pid int) (uint64, error) { return signalMask(pid, "SigCgt") }

// parentIgnoresInterrupt reports whether the parent process ignores
// SIGINT, as make does when a shell without job control (a script) starts
// it in the background: `kill -INT` then never reaches it, and there is
// nothing to notice.
func parentIgnoresInterrupt() bool {
	m, err := signalMask(os.Getppid(), "SigIgn")
	return err == nil && m&(1<<(syscall.SIGINT-1)) != 0
}

// signalMask reads a signal mask field of /proc/<pid>/status.
func signalMask(pid int, field string) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseSignalMask(f, field)
}

// parseSignalMask finds a field (SigCgt, SigIgn) of a /proc status file.
func parseSignalMask(r io.Reader, field string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s line", field)
}
