package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

// Kind names an emulator.
type Kind int

// The emulators this package can start.
const (
	Firestore Kind = iota + 1
	PubSub
)

// String is the emulator's name.
func (k Kind) String() string {
	switch k {
	case Firestore:
		return "firestore"
	case PubSub:
		return "pubsub"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// EnvVar is the environment variable through which the Google client
// libraries find the emulator.
func (k Kind) EnvVar() string {
	switch k {
	case Firestore:
		return "FIRESTORE_EMULATOR_HOST"
	case PubSub:
		return "PUBSUB_EMULATOR_HOST"
	default:
		return ""
	}
}

func (k Kind) args(hostPort string) ([]string, error) {
	switch k {
	case Firestore:
		return []string{"emulators", "firestore", "start", "--host-port=" + hostPort}, nil
	case PubSub:
		return []string{"beta", "emulators", "pubsub", "start", "--host-port=" + hostPort}, nil
	default:
		return nil, fmt.Errorf("unknown emulator %v", k)
	}
}

// Timeouts of starting and stopping an emulator.
const (
	// StartTimeout bounds how long Main waits for an emulator to answer.
	StartTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// tailBytes is how much of an emulator's output an error shows.
	tailBytes = 2048
)

// watchdog runs the emulator command (exec "$@") in a process group of its
// own, next to a shell that kills that group once its standard input, a
// pipe held by this process, is closed. So the Java emulator does not
// outlive a test binary that dies without calling Stop (a panic, a test
// timeout, SIGKILL).
const watchdog = `exec 3<&0 0</dev/null
{ while read -r _ <&3; do :; done; kill -KILL 0; } &
exec 3<&-
exec "$@"`

// Process is a running emulator in a process group of its own.
type Process struct {
	kind Kind
	host string
	cmd  *exec.Cmd
	out  *os.File // the emulator's stdout and stderr
	// keepAlive is the write end of the watchdog's stdin.
	keepAlive *os.File
	done      chan struct{} // closed when cmd has been waited for
	waitErr   error

	stopOnce sync.Once
	stopErr  error
}

// StartFirestore starts the Firestore emulator on a free loopback port and
// waits until it answers.
func StartFirestore(ctx context.Context) (*Process, error) { return Start(ctx, Firestore) }

// StartPubSub starts the Pub/Sub emulator on a free loopback port and waits
// until it answers.
func StartPubSub(ctx context.Context) (*Process, error) { return Start(ctx, PubSub) }

// Start starts the emulator of kind on a free loopback port and waits
// until it answers or ctx ends; extra flags go to its start command (the
// local stack's --import-data). The error of a failed start includes the
// tail of the emulator's output. A port taken between choosing and binding
// it is retried on another one.
func Start(ctx context.Context, kind Kind, extra ...string) (*Process, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var p *Process
		p, err = start(ctx, kind, extra)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil || !errors.Is(err, errExited) {
			break
		}
	}
	return nil, err
}

var errExited = errors.New("emulator exited")

func start(ctx context.Context, kind Kind, extra []string) (*Process, error) {
	host, err := freeport.HostPort() // one no port-0 listener can take while the JVM starts
	if err != nil {
		return nil, fmt.Errorf("start %v emulator: %w", kind, err)
	}
	args, err := kind.args(host)
	if err != nil {
		return nil, err
	}
	args = append(args, extra...)
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, fmt.Errorf("start %v emulator: %w", kind, err)
	}
	out, err := os.CreateTemp("", "emulator-"+kind.String()+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("start %v emulator: %w", kind, err)
	}
	stdin, keepAlive, err := os.Pipe()
	if err != nil {
		out.Close()
		os.Remove(out.Name())
		return nil, fmt.Errorf("start %v emulator: %w", kind, err)
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdog, "sh", gcloud}, args...)...)
	cmd.Stdin = stdin
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = append(os.Environ(), "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{kind: kind, host: host, cmd: cmd, out: out, keepAlive: keepAlive, done: make(chan struct{})}
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		keepAlive.Close()
		out.Close()
		os.Remove(out.Name())
		return nil, fmt.Errorf("start %v emulator: %w", kind, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx); err != nil {
		tail := p.tail()
		p.Stop()
		return nil, fmt.Errorf("start %v emulator on %s: %w\n--- emulator output (tail) ---\n%s", kind, host, err, tail)
	}
	return p, nil
}

// waitReady polls the emulator's HTTP root, which answers "Ok" once it
// serves.
func (p *Process) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.host+"/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.HasPrefix(string(body), "Ok") {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", ctx.Err())
		case <-p.done:
			return fmt.Errorf("%w: %v", errExited, p.waitErr)
		case <-tick.C:
		}
	}
}

// Kind is the emulator's kind.
func (p *Process) Kind() Kind { return p.kind }

// Host is the emulator's host:port, the value for its environment variable.
func (p *Process) Host() string { return p.host }

// Output returns the tail of the emulator's output.
func (p *Process) Output() string { return p.tail() }

func (p *Process) tail() string {
	f, err := os.Open(p.out.Name())
	if err != nil {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(output unavailable: %v)", err)
	}
	off := max(fi.Size()-tailBytes, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, tailBytes))
	return string(b)
}

// Stop terminates the emulator's whole process group: SIGTERM, then
// SIGKILL to whatever is left after a grace period. It is safe to call more
// than once.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Process) stop() error {
	defer os.Remove(p.out.Name())
	defer p.out.Close()
	pgid := p.cmd.Process.Pid // the leader of its own group
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if !p.waitGroupGone(pgid, stopGrace) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if !p.waitGroupGone(pgid, 3*stopGrace) { // a loaded machine can be slow to reap
			p.keepAlive.Close()
			return fmt.Errorf("stop %v emulator: process group %d still alive after SIGKILL", p.kind, pgid)
		}
	}
	p.keepAlive.Close()
	return nil
}

// waitGroupGone waits until the leader has been reaped and no process is
// left in the group.
func (p *Process) waitGroupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-p.done:
			if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
