// Command worker keeps Webex access tokens fresh: every SWEEP_INTERVAL (or
// on POST /run from Cloud Scheduler, or once with -once) it refreshes every
// token that nears the refresh threshold, warns before refresh tokens
// expire, and publishes the events that an earlier attempt left in the outbox.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
