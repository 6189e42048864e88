package emulator

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// groupGone reports whether no process is left in the group pgid.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	for _, kind := range []Kind{Firestore, PubSub} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
			defer cancel()
			start := time.Now()
			p, err := Start(ctx, kind)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v emulator answered on %s after %v", kind, p.Host(), time.Since(start).Round(time.Millisecond))
			pgid := p.cmd.Process.Pid
			start = time.Now()
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("stopped after %v", time.Since(start).Round(time.Millisecond))
			if !groupGone(pgid) {
				t.Errorf("process group %d still alive after Stop", pgid)
			}
			if err := p.Stop(); err != nil {
				t.Errorf("second Stop: %v", err)
			}
		})
	}
}

// TestWatchdog checks that the emulator dies with the process that
// started it: closing the keep-alive pipe is what the kernel does when the
// test binary dies.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	p, err := Start(ctx, PubSub)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	pgid := p.cmd.Process.Pid
	p.keepAlive.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !groupGone(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d alive 10s after its keep-alive pipe closed", pgid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartFailureShowsOutput(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p, err := Start(ctx, Firestore)
	if err == nil {
		p.Stop()
		t.Fatal("Start with a 300ms deadline succeeded; want an error")
	}
	if !strings.Contains(err.Error(), "emulator output (tail)") {
		t.Errorf("error %q does not include the emulator's output", err)
	}
}

func TestCollection(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	var mu sync.Mutex
	seen := map[string]bool{}
	for _, name := range []string{"plain", "with space/and slash", "__x__", strings.Repeat("long", 100)} {
		t.Run(name, func(t *testing.T) {
			c := Collection(t)
			if !valid.MatchString(c) || len(c) > 120 {
				t.Errorf("Collection = %q, not a safe collection ID", c)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[c] {
				t.Errorf("Collection = %q twice", c)
			}
			seen[c] = true
		})
	}
}

func TestProject(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	if got := Project(); got != DefaultProject {
		t.Errorf("Project() = %q, want %q", got, DefaultProject)
	}
	t.Setenv("GOOGLE_CLOUD_PROJECT", "p1")
	if got := Project(); got != "p1" {
		t.Errorf("Project() = %q, want %q", got, "p1")
	}
}
