package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
)

// secretSet holds every secret the campaign knows (tokens the fake
// issued, client secrets, passphrases, the encryption key) and finds them
// in text. Lookup is by each secret's first secretPrefix bytes, so that a
// line is scanned once whatever the number of secrets.
type secretSet struct {
	mu       sync.Mutex
	byPrefix map[string][]string
	n        int
}

// secretPrefix is the shortest secret the set accepts.
const secretPrefix = 8

func newSecretSet() *secretSet { return &secretSet{byPrefix: map[string][]string{}} }

// add registers values; shorter ones than secretPrefix are refused loudly
// (every secret of the campaign is longer).
func (s *secretSet) add(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if v == "" {
			continue
		}
		if len(v) < secretPrefix {
			panic(fmt.Sprintf("soak: a secret of %d bytes is too short to scan for", len(v)))
		}
		k := v[:secretPrefix]
		if !contains(s.byPrefix[k], v) {
			s.byPrefix[k] = append(s.byPrefix[k], v)
			s.n++
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// len is how many distinct secrets the set holds.
func (s *secretSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// find returns the first secret that text contains, if any.
func (s *secretSet) find(text string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i+secretPrefix <= len(text); i++ {
		for _, v := range s.byPrefix[text[i:i+secretPrefix]] {
			if strings.HasPrefix(text[i:], v) {
				return v, true
			}
		}
	}
	return "", false
}

// leak is a secret found where it must not be.
type leak struct {
	Where  string // file:line, or what was scanned
	Secret string // the secret's first characters only
}

// scanFile reports every line of path that holds a secret, and counts
// the lines.
func (s *secretSet) scanFile(path string) (leaks []leak, lines int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines++
		if v, ok := s.find(sc.Text()); ok {
			leaks = append(leaks, leak{Where: fmt.Sprintf("%s:%d", path, lines), Secret: redact(v)})
		}
	}
	return leaks, lines, sc.Err()
}

// redact shows enough of a secret to find it, not enough to use it.
func redact(v string) string {
	if len(v) > 12 {
		return v[:12] + "…"
	}
	return v[:len(v)/2] + "…"
}
