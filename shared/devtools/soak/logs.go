package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"time"
)

// logFacts is what the processes' logs say that the checks need.
type logFacts struct {
	Lines int
	Leaks []leak
	// What became of grants the store did not take at once (lifecycle's
	// grants.go), by token name: Kept when the first write failed, then
	// Stored, Superseded (the token moved on meanwhile) or Lost (the
	// process stopped first).
	Kept, Stored, Superseded, Lost map[string][]grantLine
	// Halts are the lines of a sweep stopped by the brake.
	Halts []string
	// Crashes are data race reports, panics and fatal errors.
	Crashes []string
	// BySeverity counts lines by severity.
	BySeverity map[string]int
}

// readLogs scans every log of every life of the profile for secrets and
// for the lines the checks need.
func (c *campaign) readLogs() logFacts {
	f := newLogFacts()
	for _, p := range c.procs {
		for _, l := range p.Lives() {
			leaks, n, err := c.secrets.scanFile(l.Log)
			if err != nil {
				f.Crashes = append(f.Crashes, "log unreadable: "+err.Error())
			}
			f.Lines += n
			f.Leaks = append(f.Leaks, leaks...)
			c.readFacts(l, &f)
		}
	}
	return f
}

// grantLine is a log line about a grant in hand.
type grantLine struct {
	At    time.Time
	Where string // process-life
	// HeldFor is how long the grant had been in hand (Stored, Lost).
	HeldFor time.Duration
}

func newLogFacts() logFacts {
	return logFacts{BySeverity: map[string]int{}, Kept: map[string][]grantLine{}, Stored: map[string][]grantLine{},
		Superseded: map[string][]grantLine{}, Lost: map[string][]grantLine{}}
}

func (c *campaign) readFacts(l *life, f *logFacts) {
	file, err := os.Open(l.Log)
	if err != nil {
		return
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	where := func() string { return l.Proc + "-" + strconv.Itoa(l.N) }
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			switch {
			case strings.Contains(line, "WARNING: DATA RACE"), strings.HasPrefix(line, "panic:"),
				strings.HasPrefix(line, "fatal error:"):
				f.Crashes = append(f.Crashes, where()+": "+line)
			}
			continue
		}
		var m struct {
			Time     time.Time `json:"time"`
			Severity string    `json:"severity"`
			Message  string    `json:"message"`
			Token    string    `json:"token"`
			HeldFor  string    `json:"held_for"`
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		f.BySeverity[m.Severity]++
		g := grantLine{At: m.Time, Where: where()}
		g.HeldFor, _ = time.ParseDuration(m.HeldFor)
		switch {
		case strings.HasPrefix(m.Message, "the store did not take the new token"):
			f.Kept[m.Token] = append(f.Kept[m.Token], g)
		case m.Message == "kept token stored":
			f.Stored[m.Token] = append(f.Stored[m.Token], g)
		case strings.HasPrefix(m.Message, "kept token not stored"):
			f.Superseded[m.Token] = append(f.Superseded[m.Token], g)
		case strings.HasPrefix(m.Message, "new token lost"):
			f.Lost[m.Token] = append(f.Lost[m.Token], g)
		case strings.HasPrefix(m.Message, "sweep halted"):
			f.Halts = append(f.Halts, where()+" at "+m.Time.Format(time.TimeOnly)+": "+m.Message)
		}
	}
}
