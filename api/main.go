// Command api serves Webex access tokens to WxCC flows, drop-in compatible
// with the Node.js token-service sample: GET /?name=N with the
// x-token-passphrase header answers {"status":"200","token":...} from an
// in-memory cache over Firestore, refreshing inline when the worker lagged.
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
	if err := run(ctx, os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		os.Exit(1)
	}
}
