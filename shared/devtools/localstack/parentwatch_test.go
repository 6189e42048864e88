package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as localstack under make: watch the
// parent, print what stopped it, exit.
const childEnv = "LOCALSTACK_TEST_WATCH_PARENT"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		fmt.Println("watching")
		done := make(chan string, 1)
		go watchParent(ctx, func(why string) { done <- why })
		select {
		case why := <-done:
			fmt.Println("stopped:", why)
		case <-ctx.Done():
			fmt.Println("never stopped")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStopsWhenMakeIsInterrupted is `make run &` then `kill -INT <make>`:
// make passes nothing on and waits for its child, which must notice and
// stop, so that make exits.
func TestStopsWhenMakeIsInterrupted(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: only a parent's death is noticed here")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	// Started with SIGINT ignored (in the background of a shell without
	// job control), this process would pass that on to make, which then
	// ignores it too. Handling it here gives make the default.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// As the run target: one simple command (no shell metacharacters),
	// which make runs without a shell, so that it is make's own child.
	if strings.ContainsAny(self, "#;\"*?[]&|<>(){}$`^~!' \\") {
		t.Skipf("the test binary's path %q would make make use a shell", self)
	}
	mk := fmt.Sprintf("run:\n\t%s\n", self)
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(makeBin, "-s", "run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "watching" {
		cmd.Process.Kill()
		t.Fatalf("the child did not start: %q", lines.Text())
	}
	time.Sleep(2 * parentPoll) // let it read make's handlers first
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("make still waits for its child a minute after SIGINT")
	}
	if got := strings.Join(rest, "\n"); !strings.Contains(got, "stopped: parent process") || !strings.Contains(got, "interrupt") {
		t.Fatalf("child said %q, want it stopped because make got SIGINT", got)
	}
}

func TestParseSignalMask(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "status")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "Name:\tmake\nSigPnd:\t0000000000000000\nSigIgn:\t0000000000000000\nSigCgt:\t0000000001814207\n")
	f.Seek(0, 0)
	got, err := parseSignalMask(f, "SigCgt")
	if err != nil || got != 0x1814207 {
		t.Fatalf("got %#x, %v, want 0x1814207", got, err)
	}
	f.Seek(0, 0)
	if ign, err := parseSignalMask(f, "SigIgn"); err != nil || ign != 0 {
		t.Fatalf("SigIgn: got %#x, %v, want 0", ign, err)
	}
	if got&(1<<(syscall.SIGINT-1)) == 0 {
		t.Error("SIGINT's bit is not set in make's mask")
	}
}
