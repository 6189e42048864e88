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
	// StoreFailed: "new token could not be stored" (a grant whose commit
	// failed), by token name.
	StoreFailed map[string][]time.Time
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
	f := logFacts{StoreFailed: map[string][]time.Time{}, BySeverity: map[string]int{}}
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
		}
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		f.BySeverity[m.Severity]++
		switch {
		case m.Message == "new token could not be stored":
			f.StoreFailed[m.Token] = append(f.StoreFailed[m.Token], m.Time)
		case strings.HasPrefix(m.Message, "sweep halted"):
			f.Halts = append(f.Halts, where()+" at "+m.Time.Format(time.TimeOnly)+": "+m.Message)
		}
	}
}
