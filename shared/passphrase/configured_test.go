package passphrase

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestConfiguredMatch(t *testing.T) {
	tests := []struct {
		name              string
		current, previous string
		given             string
		want              bool
	}{
		{name: "current", current: "now-secret", given: "now-secret", want: true},
		{name: "wrong", current: "now-secret", given: "now-secreT", want: false},
		{name: "prefix", current: "now-secret", given: "now", want: false},
		{name: "previous during rotation", current: "now-secret", previous: "old-secret", given: "old-secret", want: true},
		{name: "current during rotation", current: "now-secret", previous: "old-secret", given: "now-secret", want: true},
		{name: "previous unset", current: "now-secret", given: "", want: false},
		{name: "nothing set, empty given", given: "", want: false},
		{name: "empty previous never matches empty", current: "x", previous: "", given: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewConfigured(tt.current, tt.previous)
			if got := g.Match(tt.given); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	var zero Configured
	if zero.Match("") {
		t.Errorf("zero Configured: got a match for \"\", want none")
	}
}

func TestConfiguredRedacted(t *testing.T) {
	g := NewConfigured("now-secret", "old-secret")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("cfg", "global", g)
	for _, s := range []string{fmt.Sprint(g), fmt.Sprintf("%v %+v %s", g, g, g), b.String()} {
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("got %q, want REDACTED", s)
		}
	}
}

func BenchmarkConfiguredMatch(b *testing.B) {
	g := NewConfigured("now-secret-passphrase", "old-secret-passphrase")
	for b.Loop() {
		g.Match("old-secret-passphrase")
	}
}
