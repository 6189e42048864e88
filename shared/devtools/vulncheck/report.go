package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// runGovulncheck runs govulncheck on patterns against the database in
// dir and returns its JSON stream.
func runGovulncheck(ctx context.Context, goCmd, version, dir string, patterns []string, stderr io.Writer) ([]byte, error) {
	db := url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}
	args := append([]string{"run", "golang.org/x/vuln/cmd/govulncheck@" + version, "-db", db.String(), "-format", "json"}, patterns...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("govulncheck: %w", err)
	}
	return out.Bytes(), nil
}

// The parts of govulncheck's JSON stream read here (its protocol v1.0.0,
// golang.org/x/vuln/internal/govulncheck): one field per message.
type (
	message struct {
		Config  *config  `json:"config"`
		OSV     *entry   `json:"osv"`
		Finding *finding `json:"finding"`
	}
	config struct {
		ScannerVersion string `json:"scanner_version"`
		GoVersion      string `json:"go_version"`
		ScanLevel      string `json:"scan_level"`
	}
	entry struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	}
	finding struct {
		OSV          string   `json:"osv"`
		FixedVersion string   `json:"fixed_version"`
		Trace        []*frame `json:"trace"`
	}
	// frame: trace[0] is the vulnerable symbol (or only its module or
	// package), the last frame the entry point in our code.
	frame struct {
		Module   string `json:"module"`
		Version  string `json:"version"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
		Position *struct {
			Filename string `json:"filename"`
			Line     int    `json:"line"`
		} `json:"position"`
	}
)

// How far the code gets to an advisory.
type level int

const (
	required level = iota // the module is in the build, the package not imported
	imported              // the package is imported, nothing vulnerable called
	called                // a vulnerable symbol is reachable
)

// advisory is what the report says about one OSV entry.
type advisory struct {
	id, summary   string
	module, found string
	fixed         string
	level         level
	trace         []*frame // shortest trace to a called symbol
}

type results struct {
	cfg       config
	dbVersion string
	byID      map[string]*advisory
}

func readFindings(stream []byte) (*results, error) {
	res := &results{byID: map[string]*advisory{}}
	summaries := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(stream))
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		switch {
		case m.Config != nil:
			res.cfg = *m.Config
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f := m.Finding
			a := res.byID[f.OSV]
			if a == nil {
				a = &advisory{id: f.OSV, module: f.Trace[0].Module, found: f.Trace[0].Version, fixed: f.FixedVersion}
				res.byID[f.OSV] = a
			}
			l := required
			switch {
			case f.Trace[0].Function != "":
				l = called
			case f.Trace[0].Package != "":
				l = imported
			}
			if l > a.level {
				a.level = l
			}
			if l == called && (a.trace == nil || len(f.Trace) < len(a.trace) ||
				len(f.Trace) == len(a.trace) && traceText(f.Trace) < traceText(a.trace)) {
				a.trace = f.Trace // the shortest, the same from run to run
			}
		}
	}
	if res.cfg.ScanLevel != "" && res.cfg.ScanLevel != "symbol" {
		return nil, fmt.Errorf("scan level %q: reachability needs symbol", res.cfg.ScanLevel)
	}
	for id, a := range res.byID {
		a.summary = summaries[id]
	}
	return res, nil
}

// errFindings: a reachable advisory that nobody reviewed.
type errFindings struct{ ids []string }

func (e errFindings) Error() string {
	return "reachable and not reviewed: " + strings.Join(e.ids, ", ")
}

// report prints the advisories, the reachable ones first with a trace,
// and fails on a reachable one that reviewed does not explain.
func (r *results) report(w io.Writer, reviewed map[string]string) error {
	fmt.Fprintf(w, "govulncheck %s, %s, database %s@%s\n", r.cfg.ScannerVersion, r.cfg.GoVersion, vulndbModule, r.dbVersion)
	byLevel := map[level][]*advisory{}
	for _, a := range r.byID {
		byLevel[a.level] = append(byLevel[a.level], a)
	}
	var unreviewed []string
	for _, l := range []level{called, imported, required} {
		list := byLevel[l]
		slices.SortFunc(list, func(a, b *advisory) int { return strings.Compare(a.id, b.id) })
		fmt.Fprintf(w, "\n%s: %d\n", []string{"Required, not imported", "Imported, not called", "Reachable (called)"}[l], len(list))
		for _, a := range list {
			fixed := "no fix"
			if a.fixed != "" {
				fixed = "fixed in " + a.fixed
			}
			fmt.Fprintf(w, "  %s  %s@%s, %s\n      %s\n", a.id, a.module, a.found, fixed, a.summary)
			if l != called {
				continue
			}
			fmt.Fprintf(w, "      e.g. %s\n", traceText(a.trace))
			if why, ok := reviewed[a.id]; ok {
				fmt.Fprintf(w, "      reviewed: %s\n", why)
			} else {
				fmt.Fprintf(w, "      NOT REVIEWED: upgrade %s, or explain in reviewed.txt why it is not reachable\n", a.module)
				unreviewed = append(unreviewed, a.id)
			}
		}
	}
	var stale []string
	for id := range reviewed {
		if a := r.byID[id]; a == nil || a.level != called {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	if len(stale) > 0 {
		fmt.Fprintf(w, "\nreviewed.txt lists advisories no longer reachable (remove them): %s\n", strings.Join(stale, ", "))
	}
	if len(unreviewed) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d reachable advisories not reviewed\n", len(unreviewed))
		return errFindings{unreviewed}
	}
	fmt.Fprintf(w, "\nok: every reachable advisory is reviewed\n")
	return nil
}

// traceText writes a trace from our entry point to the vulnerable symbol.
func traceText(trace []*frame) string {
	var parts []string
	for i := len(trace) - 1; i >= 0; i-- {
		f := trace[i]
		s := f.Package
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
		if f.Receiver != "" {
			s += "." + strings.TrimPrefix(f.Receiver, "*")
		}
		s += "." + f.Function
		if f.Position != nil && f.Position.Line > 0 && f.Module == trace[len(trace)-1].Module {
			s += fmt.Sprintf(" (%s:%d)", f.Position.Filename, f.Position.Line)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " -> ")
}

// readReviewed reads the reviewed advisories: one per line, the ID and
// then why it is not a risk here; # starts a comment.
func readReviewed(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, why, _ := strings.Cut(line, " ")
		if why = strings.TrimSpace(why); !strings.HasPrefix(id, "GO-") || why == "" {
			return nil, fmt.Errorf("%s:%d: want an advisory ID (GO-...) and the reason it is not a risk", path, n)
		}
		out[id] = why
	}
	return out, sc.Err()
}
