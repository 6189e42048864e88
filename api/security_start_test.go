package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// A short TOKEN_PASSPHRASE keeps working (flows already send it), but
// every start says so, as do the other weakening settings; the warnings
// are kept on the server for /admin/status and the console.
func TestWeakSettingsWarnAtStart(t *testing.T) {
	t.Parallel()
	const short = "flowpass7"
	h := newHarness(t, map[string]string{"PORT": "0", "TOKEN_PASSPHRASE": short, "LEGACY_STATE": "true"})
	h.Secret(short)
	at, _ := h.seed("weak", 6*time.Hour, 30*24*time.Hour, nil)
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, h.Getenv, h.Logs, ready)
	})
	if r := get(t, running.Base+"/?name=weak", map[string]string{"x-token-passphrase": short}); r.code != 200 || r.str("token") != at {
		t.Fatalf("short TOKEN_PASSPHRASE: got %d, want 200 with the token", r.code)
	}
	running.Stop(t)

	var warnings []string
	for _, line := range strings.Split(h.Logs.String(), "\n") {
		if strings.Contains(line, `"severity":"WARNING"`) {
			warnings = append(warnings, line)
		}
	}
	for _, want := range []string{"TOKEN_PASSPHRASE is shorter than 16 characters", "CORS_ALLOW_ORIGINS is *", "LEGACY_STATE=true"} {
		n := 0
		for _, w := range warnings {
			if strings.Contains(w, want) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("got %d warnings saying %q, want 1: %s", n, want, warnings)
		}
	}

	kept := strings.Join(h.startAPI(nil).srv.startWarnings, "\n")
	for _, want := range []string{"TOKEN_PASSPHRASE is shorter", "CORS_ALLOW_ORIGINS", "LEGACY_STATE"} {
		if !strings.Contains(kept, want) {
			t.Errorf("start warnings %q lack %q", kept, want)
		}
	}
}

func TestSoundSettingsStartWithoutWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CORS_ALLOW_ORIGINS": "https://desktop.example.com", "ADMIN_PASSPHRASE": adminPass,
		"ALLOWED_CIDRS": "127.0.0.0/8, ::1/128"})
	if w := h.startAPI(nil).srv.startWarnings; len(w) != 0 {
		t.Errorf("got start warnings %q, want none", w)
	}
}

func TestShortAdminPassphraseRefusedAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0", "ADMIN_PASSPHRASE": "admin-2short"})
	err := run(context.Background(), h.Getenv, h.Logs, nil)
	if err == nil || !strings.Contains(err.Error(), "ADMIN_PASSPHRASE is shorter than 16 characters") {
		t.Fatalf("got %v, want an error saying ADMIN_PASSPHRASE is shorter than 16 characters", err)
	}
	if strings.Contains(err.Error(), "admin-2short") {
		t.Fatalf("the error shows the passphrase: %v", err)
	}
}
