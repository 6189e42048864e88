package people

import (
	"errors"
	"testing"

	"github.com/wxcc/tokenservice/shared/token"
)

const (
	orgUUID = "0d1b4d1c-7e8f-4a5b-9c6d-2e3f4a5b6c7d"
	// orgWebexID is base64("ciscospark://us/ORGANIZATION/" + orgUUID).
	orgWebexID = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8wZDFiNGQxYy03ZThmLTRhNWItOWM2ZC0yZTNmNGE1YjZjN2Q"
)

func TestDecide(t *testing.T) {
	open, err := NewAccess(
		[]string{"Ops@Example.com", "*@ops.example.org"},
		[]string{"*@example.com", "ops@example.com", "viewer@other.net"},
		"",
	)
	if err != nil {
		t.Fatal(err)
	}
	org, err := NewAccess([]string{"*@example.com"}, nil, orgWebexID)
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := NewAccess(nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		a      *Access
		p      token.Person
		want   Role
		reason string
	}{
		{"listed operator", open, token.Person{Email: "ops@example.com"}, Operator, ""},
		{"case does not matter", open, token.Person{Email: "OPS@EXAMPLE.COM"}, Operator, ""},
		{"operator wins over viewer", open, token.Person{Email: "ops@example.com"}, Operator, ""},
		{"operator domain", open, token.Person{Email: "Ann@ops.example.org"}, Operator, ""},
		{"viewer domain", open, token.Person{Email: "ann@example.com"}, Viewer, ""},
		{"listed viewer", open, token.Person{Email: "viewer@other.net"}, Viewer, ""},
		{"spaces around", open, token.Person{Email: " ann@example.com "}, Viewer, ""},
		{"sub-domain is not the domain", open, token.Person{Email: "ann@sub.example.com"}, "", ReasonNotListed},
		{"look-alike domain", open, token.Person{Email: "ann@evil-example.com"}, "", ReasonNotListed},
		{"domain as a suffix", open, token.Person{Email: "ann@notexample.com"}, "", ReasonNotListed},
		{"parent of the operator domain", open, token.Person{Email: "ann@example.org"}, "", ReasonNotListed},
		{"another address", open, token.Person{Email: "other@other.net"}, "", ReasonNotListed},
		{"kelvin sign is not k", open, token.Person{Email: "ann@ops.exampl\u212a.org"}, "", ReasonNotListed},
		{"no e-mail", open, token.Person{DisplayName: "Ann"}, "", ReasonNoEmail},
		{"two @", open, token.Person{Email: "ann@x@example.com"}, "", ReasonBadEmail},
		{"the pattern itself", open, token.Person{Email: "*@example.com"}, "", ReasonBadEmail},
		{"no domain dot", open, token.Person{Email: "ann@localhost"}, "", ReasonBadEmail},
		{"control character", open, token.Person{Email: "ann\n@example.com"}, "", ReasonBadEmail},
		{"org matches as webex id", org, token.Person{Email: "ann@example.com", OrgID: orgWebexID}, Operator, ""},
		{"org matches as uuid", org, token.Person{Email: "ann@example.com", OrgID: orgUUID}, Operator, ""},
		{"org matches in capitals", org, token.Person{Email: "ann@example.com", OrgID: "0D1B4D1C-7E8F-4A5B-9C6D-2E3F4A5B6C7D"}, Operator, ""},
		{"other org", org, token.Person{Email: "ann@example.com", OrgID: "11111111-2222-3333-4444-555555555555"}, "", ReasonOrg},
		{"no org", org, token.Person{Email: "ann@example.com"}, "", ReasonOrg},
		{"nobody configured", nobody, token.Person{Email: "ann@example.com"}, "", ReasonNotListed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.a.Decide(tt.p)
			if got != tt.want {
				t.Errorf("role = %q, want %q", got, tt.want)
			}
			var r *Refusal
			switch {
			case tt.reason == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.reason != "" && (!errors.As(err, &r) || !errors.Is(err, ErrRefused)):
				t.Errorf("error = %v, want a *Refusal matching ErrRefused", err)
			case tt.reason != "" && r.Reason != tt.reason:
				t.Errorf("reason = %q, want %q", r.Reason, tt.reason)
			}
		})
	}
	if !nobody.Nobody() || open.Nobody() {
		t.Errorf("Nobody: %v for no patterns, %v for some", nobody.Nobody(), open.Nobody())
	}
}

func TestNewAccessRejects(t *testing.T) {
	for _, p := range []string{"example.com", "*", "*@", "@example.com", "a*@example.com", "*@*.example.com", "ann@example.com@x.org", "ann @example.com"} {
		if _, err := NewAccess([]string{p}, nil, ""); err == nil {
			t.Errorf("NewAccess(%q) accepted it", p)
		}
		if _, err := NewAccess(nil, []string{p}, ""); err == nil {
			t.Errorf("NewAccess(viewers %q) accepted it", p)
		}
	}
}
