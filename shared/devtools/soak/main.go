// Command soak is the soak and fault campaign of the token service (issue
// 10): it runs the real binaries (3 api and 2 worker processes) on the
// Firestore and Pub/Sub emulators and a fake Webex served by itself, with
// time compressed through configuration, under steady load and a schedule
// of faults drawn from a seed, and then checks the service's promises as
// seven invariants. It writes a Markdown report and exits non-zero when an
// invariant breaks, saying which and why.
//
//	make soak                          # 10 minutes
//	SOAK_DURATION=3m make soak         # another length
//	SOAK_SEED=42 make soak             # replay the fault schedule of seed 42
//	go run ./shared/devtools/soak -duration 90s   # what `make test` runs
//
// Two profiles run at once, each with its own processes, collection,
// topic and fake Webex: "plain" (no TOKEN_ENCRYPTION_KEYS, with a stand-in
// for the old Node sample writing refreshes to some documents) and
// "encrypted" (TOKEN_ENCRYPTION_KEYS set). The emulators named by
// FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST are reused; otherwise
// the command starts them once.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv)
	stop()
	os.Exit(code)
}

// run is the whole campaign; it returns the exit code: 0 when every
// invariant of every profile held, 1 when one broke or the campaign could
// not run, 2 for bad settings.
func run(ctx context.Context, args []string, getenv func(string) string) int {
	say := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "soak: "+format+"\n", a...)
	}
	s, err := parseSettings(args, getenv)
	if err != nil {
		say("%v", err)
		return 2
	}
	started := time.Now()
	root, err := repoRoot()
	if err != nil {
		say("%v", err)
		return 1
	}
	if !filepath.IsAbs(s.ReportRoot) {
		s.ReportRoot = filepath.Join(root, s.ReportRoot)
	}
	dir := filepath.Join(s.ReportRoot, fmt.Sprintf("%s-seed%d", started.UTC().Format("20060102-150405"), s.Seed))
	say("seed %d (replay with SOAK_SEED=%d), %v per profile, profiles %s; report in %s",
		s.Seed, s.Seed, s.Duration, strings.Join(s.Profiles, ", "), dir)

	bins := binaries{API: filepath.Join(s.Binaries, "api"), Worker: filepath.Join(s.Binaries, "worker")}
	if s.Binaries == "" {
		if bins, err = build(ctx, root, s.Race); err != nil {
			say("%v", err)
			return 1
		}
	}
	emu, err := startEmulators(ctx, getenv)
	if err != nil {
		say("emulators: %v", err)
		return 1
	}
	defer emu.Stop()

	stalls := &stallClock{}
	stallCtx, stopStalls := context.WithCancel(ctx)
	defer stopStalls()
	go stalls.run(stallCtx)
	var cs []*campaign
	for _, name := range s.Profiles {
		logDir := filepath.Join(dir, "logs", name)
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			say("%v", err)
			return 1
		}
		cs = append(cs, newCampaign(s, profileByName[name], bins, emu, logDir, stalls, say))
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.run(ctx) })
	}
	wg.Wait()

	path, err := writeReport(dir, s, cs, started)
	if err != nil {
		say("write the report: %v", err)
		return 1
	}
	ok := passed(cs)
	for _, c := range cs {
		if c.err != nil {
			say("%s: could not run: %v", c.p.Name, c.err)
			continue
		}
		for _, r := range c.results {
			if r.Pass() {
				continue
			}
			say("%s: invariant %s broke (%s): %d violation(s)", c.p.Name, r.ID, r.Title, len(r.Violations))
			for i, v := range r.Violations {
				if i == 5 {
					say("    … %d more in the report", len(r.Violations)-5)
					break
				}
				say("    %s", v)
			}
		}
	}
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	say("%s after %v; report: %s (replay: SOAK_SEED=%d SOAK_DURATION=%v make soak)", verdict, time.Since(started).Round(time.Second), path, s.Seed, s.Duration)
	if !ok {
		return 1
	}
	return 0
}
