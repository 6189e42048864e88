// Command vulncheck reports the known vulnerabilities that the code
// reaches, offline: the only thing it fetches is Go modules, through the
// module proxy (GOPROXY).
//
//	make vulncheck
//	go run ./shared/devtools/vulncheck [-vulndb latest] [packages]
//
// It downloads the module golang.org/x/vulndb, whose data/osv folder holds
// every report of the Go vulnerability database as an OSV file, builds
// from it the database layout that govulncheck reads with -db file://
// (index/db.json, index/modules.json, index/vulns.json, ID/<id>.json)
// under .vulndb/ (gitignored, rebuilt when the vulndb version changes),
// and runs govulncheck (golang.org/x/vuln, a pinned version, through
// go run) on it. It prints each advisory by how far the code gets to it:
// called (reachable), imported only, or required only.
//
// It fails when a reachable advisory is not listed in reviewed.txt, next
// to this file: an advisory with no fix for our version whose
// reachability a person checked and explained there. An entry that no
// longer matches anything is reported, so that the list shrinks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// govulncheckVersion is the govulncheck run, pinned so that a run today
// and a run next month differ only by the database.
const govulncheckVersion = "v1.10.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var failed errFindings
	switch {
	case errors.As(err, &failed):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vulncheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vulndb := fs.String("vulndb", envOr("VULNDB_VERSION", "latest"), "version of golang.org/x/vulndb to take the advisories from")
	tool := fs.String("govulncheck", envOr("GOVULNCHECK_VERSION", govulncheckVersion), "version of golang.org/x/vuln/cmd/govulncheck to run")
	dir := fs.String("dir", ".vulndb", "folder of the built databases")
	reviewedFile := fs.String("reviewed", "shared/devtools/vulncheck/reviewed.txt", "reviewed advisories")
	if err := fs.Parse(args); err != nil {
		return err
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	goCmd := envOr("GO", "go")

	reviewed, err := readReviewed(*reviewedFile)
	if err != nil {
		return err
	}
	mod, err := downloadVulnDB(ctx, goCmd, *vulndb, stderr)
	if err != nil {
		return err
	}
	db, err := ensureDB(mod, *dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "vulncheck: govulncheck %s on %s, database golang.org/x/vulndb@%s in %s\n", *tool, patterns, mod.Version, db)
	stream, err := runGovulncheck(ctx, goCmd, *tool, db, patterns, stderr)
	if err != nil {
		return err
	}
	res, err := readFindings(stream)
	if err != nil {
		return fmt.Errorf("read govulncheck output: %w", err)
	}
	res.dbVersion = mod.Version
	return res.report(stdout, reviewed)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
