package webexlogin

import (
	"encoding/base64"
	"testing"
)

func TestSameOrg(t *testing.T) {
	const uuid = "1eb65fdf-9643-417f-9974-ad72cae0e10f"
	api := base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/ORGANIZATION/" + uuid))
	padded := base64.StdEncoding.EncodeToString([]byte("ciscospark://eu/ORGANIZATION/" + uuid))
	person := base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/PEOPLE/" + uuid))
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"UUID and API ID", uuid, api, true},
		{"upper-case UUID and padded API ID of another region", "1EB65FDF-9643-417F-9974-AD72CAE0E10F", padded, true},
		{"same API ID", api, api, true},
		{"another org", "00000000-0000-4000-8000-000000000000", api, false},
		{"a person's ID is not the org's", uuid, person, false},
		{"empty matches nothing", "", "", false},
		{"empty against an ID", "", api, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameOrg(tt.a, tt.b); got != tt.want {
				t.Errorf("SameOrg(%q, %q): got %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
