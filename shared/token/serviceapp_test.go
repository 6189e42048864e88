package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

var saNow = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// minted is a Service App with a healthy pair.
func minted() *token.Token {
	return &token.Token{Name: "app", Kind: token.KindServiceApp, AppID: "app-id", ClientID: "sa-cid", ClientSecret: "sa-secret",
		TargetOrgID: "org", Manager: "mgr", AccessToken: "at", RefreshToken: "rt",
		AccessExpires: saNow.Add(time.Hour), RefreshExpires: saNow.Add(60 * 24 * time.Hour), Status: token.StatusActive}
}

// TestServiceAppRules: what a Service App's state means for the protocol,
// against an integration in the same state.
func TestServiceAppRules(t *testing.T) {
	week := 7 * 24 * time.Hour
	tests := []struct {
		name string
		mod  func(*token.Token)
		// heldBack: what HeldBack says (nil: may go to Webex).
		heldBack error
		// integration: what HeldBack says of an integration in that state.
		integration error
		needsMint   bool // NeedsMint(now, a week)
		shouldMint  bool // ShouldMint(now, a week)
		waits       bool
	}{
		{name: "healthy", integration: nil},
		{name: "no tokens yet", mod: func(t *token.Token) {
			t.AccessToken, t.RefreshToken, t.AccessExpires, t.RefreshExpires = "", "", time.Time{}, time.Time{}
		},
			integration: token.ErrNotAuthorized, needsMint: true, shouldMint: true},
		{name: "refresh token expired", mod: func(t *token.Token) { t.RefreshExpires = saNow.Add(-time.Second) },
			integration: token.ErrRefreshTokenLapsed, needsMint: true, shouldMint: true},
		{name: "refresh token missing", mod: func(t *token.Token) { t.RefreshToken = "" },
			integration: token.ErrRefreshTokenLapsed, needsMint: true, shouldMint: true},
		{name: "refresh token inside the warning", mod: func(t *token.Token) { t.RefreshExpires = saNow.Add(week - time.Minute) },
			needsMint: true, shouldMint: true},
		{name: "refresh token just outside the warning", mod: func(t *token.Token) { t.RefreshExpires = saNow.Add(week + time.Minute) }},
		{name: "refresh expiry unknown", mod: func(t *token.Token) { t.RefreshExpires = time.Time{} }},
		{name: "waiting for its manager", mod: func(t *token.Token) { t.Status = token.StatusReauthRequired },
			heldBack: token.ErrWaitingForManager, integration: token.ErrReauthRequired, shouldMint: true, waits: true},
		{name: "config error, unchanged", mod: func(t *token.Token) {
			t.AccessToken, t.Status, t.ConfigFingerprint = "", token.StatusConfigError, t.ClientFingerprint()
		}, heldBack: token.ErrConfigError, integration: token.ErrNotAuthorized, needsMint: true},
		{name: "config error, appId changed since", mod: func(t *token.Token) {
			t.AccessToken, t.Status, t.ConfigFingerprint = "", token.StatusConfigError, t.ClientFingerprint()
			t.AppID = "fixed-app-id"
		}, integration: token.ErrNotAuthorized, needsMint: true, shouldMint: true},
		{name: "backing off without tokens", mod: func(t *token.Token) { t.AccessToken, t.NextAttempt = "", saNow.Add(time.Minute) },
			heldBack: token.ErrUnavailable, integration: token.ErrNotAuthorized, needsMint: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := minted()
			if tt.mod != nil {
				tt.mod(app)
			}
			integration := app.Clone()
			integration.Kind = ""
			check := func(what string, err, want error) {
				t.Helper()
				if (err == nil) != (want == nil) || (want != nil && !errors.Is(err, want)) {
					t.Errorf("%s: HeldBack got %v, want %v", what, err, want)
				}
			}
			check("service app", app.HeldBack(saNow), tt.heldBack)
			check("integration", integration.HeldBack(saNow), tt.integration)
			if got := errors.Is(app.HeldBack(saNow), token.ErrRefreshTokenLapsed); got {
				t.Errorf("a Service App's lapsed refresh token is a reason to mint, got %v", app.HeldBack(saNow))
			}
			if got := app.NeedsMint(saNow, week); got != tt.needsMint {
				t.Errorf("NeedsMint got %v, want %v", got, tt.needsMint)
			}
			if got := app.ShouldMint(saNow, week); got != tt.shouldMint {
				t.Errorf("ShouldMint got %v, want %v", got, tt.shouldMint)
			}
			if got := app.WaitsForManager(); got != tt.waits {
				t.Errorf("WaitsForManager got %v, want %v", got, tt.waits)
			}
			if integration.NeedsMint(saNow, week) || integration.ShouldMint(saNow, week) || integration.WaitsForManager() {
				t.Errorf("an integration is never minted")
			}
		})
	}
}

func TestManagerBack(t *testing.T) {
	gen := func(g int64) *int64 { return &g }
	manager := func(mod func(*token.Token)) *token.Token {
		m := &token.Token{Name: "mgr", AccessToken: "mat", RefreshToken: "mrt", Generation: 4, Status: token.StatusActive}
		if mod != nil {
			mod(m)
		}
		return m
	}
	tests := []struct {
		name    string
		failed  *int64 // the manager's generation at the Service App's failure
		manager *token.Token
		want    bool
	}{
		{name: "authorized again since", failed: gen(3), manager: manager(nil), want: true},
		{name: "same generation: refused again would loop", failed: gen(4), manager: manager(nil)},
		{name: "still needs re-authorization", failed: gen(3), manager: manager(func(m *token.Token) { m.Status = token.StatusReauthRequired })},
		{name: "no tokens", failed: gen(3), manager: manager(func(m *token.Token) { m.AccessToken = "" })},
		{name: "does not exist", failed: gen(3)},
		{name: "created since it was missing", manager: manager(nil), want: true},
		{name: "repaired in place after its own state said reauth (no generation recorded)", manager: manager(nil), want: true},
		{name: "a Service App", manager: manager(func(m *token.Token) { m.Kind = token.KindServiceApp })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := minted()
			app.Status, app.ManagerGeneration = token.StatusReauthRequired, tt.failed
			if got := app.ManagerBack(tt.manager); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckManager(t *testing.T) {
	app := &token.Token{Name: "app", Kind: token.KindServiceApp, Manager: "mgr"}
	integration := &token.Token{Name: "mgr"}
	other := &token.Token{Name: "mgr", Kind: token.KindServiceApp}
	self := &token.Token{Name: "app", Kind: token.KindServiceApp, Manager: "app"}
	tests := []struct {
		name    string
		app     *token.Token
		manager *token.Token
		ok      bool
	}{
		{"an integration", app, integration, true},
		{"missing", app, nil, false},
		{"itself a Service App", app, other, false},
		{"itself", self, self, false},
		{"none named", &token.Token{Name: "app", Kind: token.KindServiceApp}, nil, false},
	}
	for _, tt := range tests {
		err := token.CheckManager(tt.app, tt.manager)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, token.ErrBadManager)) {
			t.Errorf("%s: got %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestServiceAppClientRules: the client-config rules know a Service App
// needs appId, targetOrgId and manager (not redirectUri), and that a
// change of any of them resumes it from config_error.
func TestServiceAppClientRules(t *testing.T) {
	app := minted()
	if m := app.MissingClientFields(); len(m) != 0 {
		t.Fatalf("complete Service App lacks %v", m)
	}
	bare := &token.Token{Kind: token.KindServiceApp, RedirectURI: "https://x"}
	want := []string{"appId", "clientId", "clientSecret", "targetOrgId", "manager"}
	if m := bare.MissingClientFields(); len(m) != len(want) {
		t.Fatalf("got missing %v, want %v", m, want)
	}
	for _, change := range []func(*token.Token){
		func(t *token.Token) { t.AppID = "other" },
		func(t *token.Token) { t.TargetOrgID = "other" },
		func(t *token.Token) { t.Manager = "other" },
		func(t *token.Token) { t.ClientSecret = "other" },
	} {
		rejected := minted()
		rejected.Status, rejected.ConfigFingerprint = token.StatusConfigError, rejected.ClientFingerprint()
		if rejected.ResumeIfClientFixed() {
			t.Fatal("resumed without a change")
		}
		change(rejected)
		if !rejected.ResumeIfClientFixed() || rejected.Status != token.StatusActive {
			t.Errorf("a change did not resume: %+v", rejected)
		}
	}
	integration := minted()
	integration.Kind = ""
	before := integration.ClientFingerprint()
	integration.AppID = "ignored"
	if integration.ClientFingerprint() != before {
		t.Error("an integration's fingerprint depends on appId")
	}
}

func TestOrg(t *testing.T) {
	const org = "1eb65fdf-9643-417f-9974-ad72cae0e10f"
	tests := []struct {
		name string
		tok  token.Token
		want string
	}{
		{"service app: its targetOrgId", token.Token{Kind: token.KindServiceApp, TargetOrgID: "o1", AccessToken: "x_PF84_" + org}, "o1"},
		{"wxcc token", token.Token{AccessToken: "NjFmZjY1_PF84_" + org}, org},
		{"stored orgId wins", token.Token{OrgID: "stored", AccessToken: "NjFmZjY1_PF84_" + org}, "stored"},
		{"no underscore", token.Token{AccessToken: "fake-at-0123456789abcdef"}, ""},
		{"not an org after the last underscore", token.Token{AccessToken: "abc_def"}, ""},
		{"trailing underscore", token.Token{AccessToken: "abc_" + org + "_"}, ""},
		{"none", token.Token{}, ""},
	}
	for _, tt := range tests {
		if got := tt.tok.Org(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	wxcc := "NjFmZjY1_PF84_" + org
	if n := testing.AllocsPerRun(100, func() { _ = token.OrgOfAccessToken(wxcc) }); n != 0 {
		t.Errorf("OrgOfAccessToken allocates %v times", n)
	}
}
