package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecretSet(t *testing.T) {
	s := newSecretSet()
	s.add("fake-at-0123456789abcdef", "fake-at-0123456789abcdXX", "csecret-passphrase-1", "")
	if s.len() != 3 {
		t.Errorf("len: got %d, want 3", s.len())
	}
	tests := []struct {
		text string
		want string
	}{
		{`{"severity":"INFO","message":"token rotated","token":"a"}`, ""},
		{`{"error":"refresh with fake-at-0123456789abcdXX failed"}`, "fake-at-0123456789abcdXX"},
		{`prefix-fake-at-0123456789abcdef`, "fake-at-0123456789abcdef"},
		{`fake-at-0123456789abc`, ""}, // a prefix of a secret is not the secret
		{`x csecret-passphrase-1`, "csecret-passphrase-1"},
	}
	for _, tt := range tests {
		got, ok := s.find(tt.text)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("find(%q): got %q %v, want %q", tt.text, got, ok, tt.want)
		}
	}

	path := filepath.Join(t.TempDir(), "api-1-1.log")
	os.WriteFile(path, []byte("clean\nleaks csecret-passphrase-1 here\nclean\n"), 0o600)
	leaks, lines, err := s.scanFile(path)
	if err != nil || lines != 3 || len(leaks) != 1 || leaks[0].Where != path+":2" {
		t.Errorf("scanFile: got %v, %d lines, %v; want one leak on line 2 of 3", leaks, lines, err)
	}
	if leaks[0].Secret == "csecret-passphrase-1" {
		t.Error("the report would show the whole secret")
	}
}
