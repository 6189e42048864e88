package logging

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestCloudLoggingKeys(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, ParseLevel("info"))
	log.Debug("hidden")
	log.Warn("careful", "token", "demo")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["severity"] != "WARNING" || line["message"] != "careful" || line["token"] != "demo" {
		t.Fatalf("got %v, want severity WARNING, message careful", line)
	}
	if _, ok := line["level"]; ok {
		t.Fatalf("slog's own level key is still there: %v", line)
	}
}

func TestTrace(t *testing.T) {
	tests := []struct {
		name, header, want string
	}{
		{"cloud run header", "105445aa7843bc8bf206b12000100000/1;o=1", "projects/p/traces/105445aa7843bc8bf206b12000100000"},
		{"no span", "105445aa7843bc8bf206b12000100000", "projects/p/traces/105445aa7843bc8bf206b12000100000"},
		{"empty", "", ""},
		{"short", "abc/1", ""},
		{"not hex", "zz5445aa7843bc8bf206b12000100000/1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Trace("p", tc.header); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
