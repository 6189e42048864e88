// Command cloudrunfront puts a local imitation of Cloud Run's front end
// (shared/testing/cloudrun) before a binary running on this machine, so it
// receives requests as it would on Cloud Run: an IAM check of the caller's
// ID token (or none, with -no-invoker-iam-check), the token's signature
// replaced with SIGNATURE_REMOVED_BY_GOOGLE, X-Forwarded-For and
// X-Forwarded-Proto, a trace context, reserved paths and the 32 MiB limit.
// It has its own fake Google issuer and prints, for each invoker, an ID
// token as Cloud Scheduler would send it (again every 50 minutes: they
// last an hour). `make run` does all this by itself; this command is for
// a binary started by hand:
//
//	PORT=127.0.0.1:9090 RUN_BEHIND_CLOUD_RUN_IAM=true \
//	  RUN_OIDC_AUDIENCE=http://127.0.0.1:8081 RUN_OIDC_SERVICE_ACCOUNT=sched@p.iam.gserviceaccount.com ... bin/worker &
//	go run ./shared/devtools/cloudrunfront -listen 127.0.0.1:8081 \
//	  -upstream http://127.0.0.1:9090 -invoker sched@p.iam.gserviceaccount.com
//
// What it imitates and what not: shared/docs/local-cloud-run.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/cloudrun"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cloudrunfront:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fl := flag.NewFlagSet("cloudrunfront", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1:8081", "address of the front end; its URL is the service URL, the tokens' audience")
	upstream := fl.String("upstream", "", "base URL of the binary behind it, e.g. http://127.0.0.1:9090 (required)")
	public := fl.Bool("no-invoker-iam-check", false, "admit every request without a token, as a public service")
	timeout := fl.Duration("timeout", cloudrun.DefaultTimeout, "request timeout (504 past it)")
	var invokers, audiences list
	fl.Var(&invokers, "invoker", "e-mail of an account with roles/run.invoker (repeatable)")
	fl.Var(&audiences, "audience", "custom audience accepted besides the URL (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *upstream == "" {
		return fmt.Errorf("-upstream is required")
	}
	if !*public && len(invokers) == 0 {
		return fmt.Errorf("name an -invoker, or use -no-invoker-iam-check")
	}
	iss, err := cloudrun.NewIssuer("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer iss.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	f, err := cloudrun.Serve(ln, iss, cloudrun.Service{
		Upstream: *upstream, Invokers: invokers, NoInvokerIAMCheck: *public,
		CustomAudiences: audiences, Timeout: *timeout,
		Log: slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer f.Close()
	fmt.Fprintf(out, "front end at %s for %s; fake Google issuer at %s (keys at %s)\n", f.URL, *upstream, iss.URL, iss.JWKSURL())
	printTokens := func() {
		for _, email := range invokers {
			tok, err := iss.Mint(f.URL, email)
			if err != nil {
				fmt.Fprintf(out, "mint a token for %s: %v\n", email, err)
				continue
			}
			fmt.Fprintf(out, "ID token for %s (aud %s, valid 1h):\n  %s\n", email, f.URL, tok)
		}
	}
	printTokens()
	t := time.NewTicker(50 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			printTokens()
		}
	}
}
