package main

import (
	"fmt"
	"time"
)

// result is the verdict on one invariant of one profile.
type result struct {
	ID         string // "1" … "7", "G" for grants kept, and "M" for the metrics check
	Title      string
	Summary    string
	Violations []string
	Notes      []string
}

func (r *result) Pass() bool { return len(r.Violations) == 0 }

func (r *result) fail(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

func (r *result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// evaluate runs every check on what the campaign observed.
func (c *campaign) evaluate() []result {
	c.logs = c.readLogs()
	g := c.analyzeGrants()
	return []result{
		c.checkRequests(),
		c.checkRefreshTokens(g),
		c.checkEvents(),
		c.checkRecovery(g),
		c.checkReauth(g),
		c.checkResources(),
		c.checkLogsAndExits(),
		c.checkGrantsKept(),
		c.checkMetrics(),
	}
}

// rel writes t as seconds after t0, the way the report gives times.
func (c *campaign) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("t0%+.1fs", t.Sub(c.t0).Seconds())
}

func (c *campaign) tokenByName(name string) *soakToken {
	for _, t := range c.tokens {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// firestoreOutages are the windows in which the binaries could not reach
// Firestore, stretched by how long the api keeps serving what it has
// without asking again (storeRetry) and the answer slack.
func (c *campaign) firestoreOutages() []window {
	var out []window
	for _, f := range c.faults.all() {
		if isFirestoreFault(f.Kind) {
			end := f.End
			if end.IsZero() {
				end = c.tEnd
			}
			out = append(out, window{f.Start, end.Add(storeRetry + answerSlack)})
		}
	}
	return out
}

func inAny(ws []window, from, to time.Time) bool {
	for _, w := range ws {
		if w.overlaps(from, to) {
			return true
		}
	}
	return false
}
