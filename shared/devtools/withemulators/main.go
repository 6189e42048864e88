// Command withemulators starts the Firestore and Pub/Sub emulators (unless
// FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST already point at running
// ones), runs the given command with those variables set, and stops the
// emulators' whole process groups when the command ends or on Ctrl-C, so no
// Java process is left behind. It exits with the command's exit code, or 1
// if an emulator cannot start (saying why).
//
//	go run ./shared/devtools/withemulators -- go test -race ./...
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withemulators -- command [args...]")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), emulator.StartTimeout)
	defer cancel()
	var procs []*emulator.Process
	defer func() {
		if err := emulator.StopAll(procs); err != nil {
			fmt.Fprintln(os.Stderr, "withemulators:", err)
		}
	}()
	type started struct {
		p   *emulator.Process
		err error
	}
	results := map[emulator.Kind]chan started{}
	for _, k := range []emulator.Kind{emulator.Firestore, emulator.PubSub} {
		if os.Getenv(k.EnvVar()) != "" {
			fmt.Fprintf(os.Stderr, "withemulators: using %s at %s\n", k, os.Getenv(k.EnvVar()))
			continue
		}
		ch := make(chan started, 1)
		results[k] = ch
		go func() {
			p, err := emulator.Start(ctx, k)
			ch <- started{p, err}
		}()
	}
	failed := false
	for k, ch := range results {
		r := <-ch
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "withemulators: the %s emulator did not start: %v\n", k, r.err)
			failed = true
			continue
		}
		procs = append(procs, r.p)
		os.Setenv(k.EnvVar(), r.p.Host())
		fmt.Fprintf(os.Stderr, "withemulators: %s emulator at %s\n", k, r.p.Host())
	}
	if failed {
		return 1
	}
	if os.Getenv("GOOGLE_CLOUD_PROJECT") == "" {
		os.Setenv("GOOGLE_CLOUD_PROJECT", emulator.DefaultProject)
	}

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "withemulators:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sig:
			_ = cmd.Process.Signal(s)
			go func() {
				time.Sleep(15 * time.Second)
				_ = cmd.Process.Kill()
			}()
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "withemulators:", err)
				return 1
			}
			return 0
		}
	}
}
