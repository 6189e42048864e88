package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// mintFixture is a fixture with a manager integration "mgr" whose access
// token Webex (the stub) accepts for minting, and a stub applications
// endpoint that mints numbered pairs.
type mintFixture struct {
	*fixture
	mu        sync.Mutex
	n         int
	accepted  map[string]bool // manager access tokens the stub mints with
	mintErr   error           // answered instead, if set
	mintDelay time.Duration
}

func newMintFixture(t *testing.T) *mintFixture {
	t.Helper()
	f := &mintFixture{fixture: newFixture(t), accepted: map[string]bool{"mgr-at": true}}
	f.seed(t, "mgr", 10*time.Hour, func(tok *token.Token) {
		tok.ClientID, tok.AccessToken, tok.RefreshToken, tok.Generation = "mgr-cid", "mgr-at", "mgr-rt", 4
	})
	f.issuer.refresh = func(c token.Client, rt string) (token.Grant, error) {
		if c.ID == "mgr-cid" {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.n++
			at := fmt.Sprintf("mgr-at-%d", f.n)
			f.accepted[at] = true
			return token.Grant{AccessToken: at, ExpiresIn: 12 * time.Hour}, nil
		}
		return f.issuer.grant, f.issuer.err
	}
	f.issuer.mint = func(req token.MintRequest) (token.Grant, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.mintDelay > 0 {
			time.Sleep(f.mintDelay)
		}
		if f.mintErr != nil {
			return token.Grant{}, f.mintErr
		}
		if !f.accepted[req.ManagerToken] {
			return token.Grant{}, fmt.Errorf("webex mint: HTTP 401: %w", token.ErrManagerTokenRejected)
		}
		f.n++
		return token.Grant{AccessToken: fmt.Sprintf("sa-at-%d", f.n), ExpiresIn: 12 * time.Hour,
			RefreshToken: fmt.Sprintf("sa-rt-%d", f.n), RefreshExpiresIn: 90 * 24 * time.Hour}, nil
	}
	return f
}

// seedApp stores a Service App "app" managed by "mgr", without tokens
// unless mod gives it some.
func (f *mintFixture) seedApp(t *testing.T, mod ...func(*token.Token)) {
	t.Helper()
	app := &token.Token{Name: "app", Kind: token.KindServiceApp, AppID: "app-id", ClientID: "sa-cid", ClientSecret: "sa-secret",
		TargetOrgID: "org-1", Manager: "mgr", Status: token.StatusPending}
	for _, m := range mod {
		m(app)
	}
	if _, err := f.store.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
}

// withPair gives a Service App a pair with accessLeft and refreshLeft.
func (f *mintFixture) withPair(accessLeft, refreshLeft time.Duration) func(*token.Token) {
	now := f.clock.Now()
	return func(t *token.Token) {
		t.AccessToken, t.RefreshToken, t.Status = "sa-at-old", "sa-rt-old", token.StatusActive
		t.AccessExpires, t.RefreshExpires = now.Add(accessLeft), now.Add(refreshLeft)
	}
}

func (f *mintFixture) eventTypes(name string) []string {
	var out []string
	for _, e := range f.store.Outbox() {
		if e.Name == name {
			out = append(out, string(e.Type)+"/"+string(e.Trigger))
		}
	}
	return out
}

var inline = lifecycle.RefreshOptions{Trigger: token.TriggerInline, WaitForOthers: true}

func TestMintCreatesPair(t *testing.T) {
	f := newMintFixture(t)
	f.seedApp(t)
	res, err := f.r.Refresh(context.Background(), "app", inline)
	if err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v %v, want minted", res.Outcome, err)
	}
	got := f.get(t, "app")
	if got.AccessToken != "sa-at-1" || got.RefreshToken != "sa-rt-1" || got.Generation != 1 || got.Status != token.StatusActive ||
		got.OrgID != "org-1" || got.Lease.Holder != "" {
		t.Fatalf("stored %+v, want the minted pair as generation 1, active, orgId org-1, no lease", got)
	}
	if n, m := f.issuer.Calls(), f.issuer.Mints(); n != 0 || m != 1 {
		t.Fatalf("got %d refreshes and %d mints, want 0 and 1", n, m)
	}
	req := f.issuer.minted[0]
	if req.AppID != "app-id" || req.Client.ID != "sa-cid" || req.Client.Secret != "sa-secret" || req.TargetOrgID != "org-1" || req.ManagerToken != "mgr-at" {
		t.Fatalf("mint sent %+v", req)
	}
	if ev := f.eventTypes("app"); len(ev) != 1 || ev[0] != "token.rotated/mint" {
		t.Fatalf("got events %v, want one token.rotated with trigger mint", ev)
	}
	// The pair is fresh: nothing more to do.
	if res, err := f.r.Refresh(context.Background(), "app", inline); err != nil || res.Outcome != lifecycle.Fresh || f.issuer.Mints() != 1 {
		t.Fatalf("second call: got %v %v and %d mints, want fresh and still 1", res.Outcome, err, f.issuer.Mints())
	}
}

// TestMintInsteadOfReauthorization: what would need a person for an
// integration is a mint for a Service App, with no reauth_required.
func TestMintInsteadOfReauthorization(t *testing.T) {
	week := 7 * 24 * time.Hour
	tests := []struct {
		name          string
		accessLeft    time.Duration
		refreshLeft   time.Duration
		opts          lifecycle.RefreshOptions
		rejected      bool // Webex rejects the refresh token
		wantRefreshes int
	}{
		{name: "refresh token expired", accessLeft: time.Hour, refreshLeft: -time.Minute, opts: scheduled},
		{name: "refresh token rejected", accessLeft: time.Hour, refreshLeft: 30 * 24 * time.Hour, opts: scheduled, rejected: true, wantRefreshes: 1},
		{name: "refresh token inside the warning, access not due", accessLeft: 10 * time.Hour, refreshLeft: 3 * 24 * time.Hour,
			opts: lifecycle.RefreshOptions{Trigger: token.TriggerScheduled, Lead: 30 * time.Minute, MintWithin: week}},
		{name: "forced (Refresh now)", accessLeft: 10 * time.Hour, refreshLeft: 30 * 24 * time.Hour,
			opts: lifecycle.RefreshOptions{Trigger: token.TriggerManual, Force: true, WaitForOthers: true}},
		{name: "lapsed and inline", accessLeft: 30 * time.Minute, refreshLeft: -time.Second, opts: inline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMintFixture(t)
			f.seedApp(t, f.withPair(tt.accessLeft, tt.refreshLeft))
			if tt.rejected {
				f.issuer.err = fmt.Errorf("webex refresh: HTTP 400 invalid_grant: %w", token.ErrGrantRejected)
			}
			res, err := f.r.Refresh(context.Background(), "app", tt.opts)
			if err != nil || res.Outcome != lifecycle.Refreshed {
				t.Fatalf("got %v %v, want minted", res.Outcome, err)
			}
			got := f.get(t, "app")
			if got.AccessToken != "sa-at-1" || got.Status != token.StatusActive || got.LastError != nil {
				t.Fatalf("stored %+v, want the minted pair, active, no error", got)
			}
			if n, m := f.issuer.Calls(), f.issuer.Mints(); n != tt.wantRefreshes || m != 1 {
				t.Fatalf("got %d refreshes and %d mints, want %d and 1", n, m, tt.wantRefreshes)
			}
			if ev := f.eventTypes("app"); len(ev) != 1 || ev[0] != "token.rotated/mint" {
				t.Fatalf("got events %v, want one token.rotated with trigger mint (no reauthorization_required)", ev)
			}
		})
	}
}

func TestMintRefreshesDueManagerFirst(t *testing.T) {
	f := newMintFixture(t)
	_, err := f.store.Update(context.Background(), "mgr", func(m *token.Token) ([]token.Event, error) {
		m.AccessExpires = f.clock.Now().Add(-time.Minute) // expired, refreshable
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.seedApp(t)
	if _, err := f.r.Refresh(context.Background(), "app", inline); err != nil {
		t.Fatal(err)
	}
	if n, m := f.issuer.Calls(), f.issuer.Mints(); n != 1 || m != 1 {
		t.Fatalf("got %d refreshes and %d mints, want 1 and 1", n, m)
	}
	if req := f.issuer.minted[0]; req.ManagerToken != "mgr-at-1" {
		t.Fatalf("minted with %q, want the manager's refreshed token", req.ManagerToken)
	}
	if mgr := f.get(t, "mgr"); mgr.AccessToken != "mgr-at-1" || mgr.Generation != 5 {
		t.Fatalf("manager %+v, want its refresh stored", mgr)
	}
}

func TestMintRetriesOnceWithRefreshedManager(t *testing.T) {
	f := newMintFixture(t)
	f.accepted["mgr-at"] = false // Webex no longer takes it, though it has 10h left
	f.seedApp(t)
	res, err := f.r.Refresh(context.Background(), "app", inline)
	if err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v %v, want minted after the manager's refresh", res.Outcome, err)
	}
	if n, m := f.issuer.Calls(), f.issuer.Mints(); n != 1 || m != 2 {
		t.Fatalf("got %d refreshes and %d mints, want 1 and 2", n, m)
	}
	if ev := f.eventTypes("mgr"); len(ev) != 1 || ev[0] != "token.rotated/inline" {
		t.Fatalf("manager events %v, want its forced refresh", ev)
	}
}

// TestManagerRefusedAgain: a mint that Webex refuses with 401 even with
// the manager's fresh token is the Service App's client's fault:
// config_error, and no retry loop.
func TestManagerRefusedAgain(t *testing.T) {
	f := newMintFixture(t)
	f.mintErr = fmt.Errorf("webex mint: HTTP 401: %w", token.ErrManagerTokenRejected)
	f.seedApp(t)
	_, err := f.r.Refresh(context.Background(), "app", inline)
	if !errors.Is(err, token.ErrConfigError) || !token.RejectedByWebex(err) {
		t.Fatalf("got %v, want config error (a Webex rejection)", err)
	}
	if got := f.get(t, "app"); got.Status != token.StatusConfigError {
		t.Fatalf("stored %+v, want config_error", got)
	}
	if n, m := f.issuer.Calls(), f.issuer.Mints(); n != 1 || m != 2 {
		t.Fatalf("got %d refreshes and %d mints, want 1 and 2", n, m)
	}
	for i := 0; i < 3; i++ {
		f.r.Refresh(context.Background(), "app", scheduled)
	}
	if n, m := f.issuer.Calls(), f.issuer.Mints(); n != 1 || m != 2 {
		t.Fatalf("retries called webex: %d refreshes and %d mints", n, m)
	}
}

// TestManagerWithoutScopeTriedOncePerGeneration: a manager whose token
// lacks spark:applications_token must be authorized again; the Service
// App waits and is tried once more only when the manager has a new
// generation, never in a loop.
func TestManagerWithoutScopeTriedOncePerGeneration(t *testing.T) {
	f := newMintFixture(t)
	f.mintErr = fmt.Errorf("webex mint: HTTP 403: %w", token.ErrManagerNotPermitted)
	f.seedApp(t)
	_, err := f.r.Refresh(context.Background(), "app", inline)
	if !errors.Is(err, token.ErrReauthRequired) || !strings.Contains(err.Error(), `manager "mgr"`) {
		t.Fatalf("got %v, want reauth required naming the manager", err)
	}
	got := f.get(t, "app")
	if got.Status != token.StatusReauthRequired || got.ManagerGeneration == nil || *got.ManagerGeneration != 4 {
		t.Fatalf("stored %+v, want reauth_required, managerGeneration 4", got)
	}
	for i := 0; i < 3; i++ {
		if _, err := f.r.Refresh(context.Background(), "app", scheduled); !errors.Is(err, token.ErrWaitingForManager) {
			t.Fatalf("retry %d: got %v, want waiting for the manager", i, err)
		}
	}
	if m := f.issuer.Mints(); m != 1 {
		t.Fatalf("got %d mints after retries on the same manager generation, want still 1", m)
	}
	// The manager moves on (here: a refresh): one more try, which fails
	// the same way and waits again.
	if _, err := f.r.Refresh(context.Background(), "mgr", lifecycle.RefreshOptions{Trigger: token.TriggerManual, Force: true}); err != nil {
		t.Fatal(err)
	}
	f.r.Refresh(context.Background(), "app", scheduled)
	f.r.Refresh(context.Background(), "app", scheduled)
	if m := f.issuer.Mints(); m != 2 {
		t.Fatalf("got %d mints, want 2: one per manager generation", m)
	}
	// Authorized again with the scope: minted.
	f.mintErr = nil
	if _, err := f.r.Refresh(context.Background(), "mgr", lifecycle.RefreshOptions{Trigger: token.TriggerManual, Force: true}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.r.Refresh(context.Background(), "app", scheduled); err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v %v, want minted once the manager moved on", res.Outcome, err)
	}
}

func TestMintWaitsForManager(t *testing.T) {
	tests := []struct {
		name string
		mod  func(m *token.Token, now time.Time)
	}{
		// Its access token would still be served, and used: it is expired.
		{"manager in reauth_required", func(m *token.Token, now time.Time) {
			m.Status, m.AccessExpires = token.StatusReauthRequired, now.Add(-time.Minute)
		}},
		{"manager's refresh token lapsed", func(m *token.Token, now time.Time) {
			m.AccessExpires, m.RefreshExpires = now.Add(-time.Minute), now.Add(-time.Minute)
		}},
		{"manager rejected by webex", func(m *token.Token, now time.Time) { m.AccessExpires = now.Add(-time.Minute) }},
		{"manager lacks the scope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMintFixture(t)
			if tt.mod != nil {
				if _, err := f.store.Update(context.Background(), "mgr", func(m *token.Token) ([]token.Event, error) {
					tt.mod(m, f.clock.Now())
					return nil, nil
				}); err != nil {
					t.Fatal(err)
				}
			} else {
				f.mintErr = fmt.Errorf("webex mint: HTTP 403: %w", token.ErrManagerNotPermitted)
			}
			if tt.name == "manager rejected by webex" {
				f.issuer.refresh = func(token.Client, string) (token.Grant, error) {
					return token.Grant{}, fmt.Errorf("webex refresh: HTTP 400 invalid_grant: %w", token.ErrGrantRejected)
				}
			}
			f.seedApp(t)
			_, err := f.r.Refresh(context.Background(), "app", inline)
			if !errors.Is(err, token.ErrReauthRequired) {
				t.Fatalf("got %v, want reauth required", err)
			}
			got := f.get(t, "app")
			if got.Status != token.StatusReauthRequired || got.LastError == nil || !got.LastError.Permanent ||
				!strings.Contains(got.LastError.Message, `manager "mgr" needs re-authorization`) {
				t.Fatalf("stored %+v (lastError %+v), want reauth_required naming the manager", got, got.LastError)
			}
			var reauth []token.Event
			for _, e := range f.store.Outbox() {
				if e.Name == "app" && e.Type == token.EventReauthorizationRequired {
					reauth = append(reauth, e)
				}
			}
			if len(reauth) != 1 || !strings.Contains(reauth[0].Message, `manager "mgr"`) {
				t.Fatalf("got events %+v, want one reauthorization_required naming the manager", f.store.Outbox())
			}
			calls, mints := f.issuer.Calls(), f.issuer.Mints()
			// Until the manager is authorized again: no Webex call, no new event.
			for i := 0; i < 3; i++ {
				f.r.Refresh(context.Background(), "app", scheduled)
			}
			if f.issuer.Calls() != calls || f.issuer.Mints() != mints || len(f.store.Outbox()) != len(f.eventTypes("app"))+len(f.eventTypes("mgr")) {
				t.Fatalf("retries called webex: %d/%d refreshes, %d/%d mints", f.issuer.Calls(), calls, f.issuer.Mints(), mints)
			}
			if got := len(f.eventTypes("app")); got != 1 {
				t.Fatalf("got %d events of the app after retries, want 1", got)
			}
			// A person authorizes the manager again: a new generation.
			f.mintErr = nil
			f.issuer.refresh = nil
			if _, err := f.r.ExchangeCode(context.Background(), "mgr", "code"); err != nil {
				t.Fatal(err)
			}
			f.accepted["at-new"] = true // what the stub's exchange grants
			res, err := f.r.Refresh(context.Background(), "app", scheduled)
			if err != nil || res.Outcome != lifecycle.Refreshed || res.Token.Status != token.StatusActive || res.Token.ManagerGeneration != nil {
				t.Fatalf("got %v %v %+v, want minted by itself", res.Outcome, err, res.Token)
			}
		})
	}
}

func TestMintFailureClasses(t *testing.T) {
	tests := []struct {
		name       string
		mintErr    error
		mod        func(*mintFixture)
		wantStatus token.Status
		wantErr    error
		wantMints  int
	}{
		{name: "app unknown", mintErr: fmt.Errorf("webex mint: HTTP 404: %w", token.ErrClientRejected),
			wantStatus: token.StatusConfigError, wantErr: token.ErrConfigError, wantMints: 1},
		{name: "manager is a Service App", wantStatus: token.StatusConfigError, wantErr: token.ErrConfigError,
			mod: func(f *mintFixture) {
				f.store.Update(context.Background(), "mgr", func(m *token.Token) ([]token.Event, error) {
					m.Kind = token.KindServiceApp
					return nil, nil
				})
			}},
		{name: "webex unavailable", mintErr: &token.TransientError{Err: errors.New("503")}, wantStatus: token.StatusPending,
			wantErr: token.ErrUnavailable, wantMints: 1},
		{name: "manager backing off with an expired token", wantStatus: token.StatusPending, wantErr: token.ErrUnavailable,
			mod: func(f *mintFixture) {
				f.store.Update(context.Background(), "mgr", func(m *token.Token) ([]token.Event, error) {
					m.AccessExpires, m.NextAttempt = f.clock.Now().Add(-time.Minute), f.clock.Now().Add(time.Minute)
					return nil, nil
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMintFixture(t)
			f.mintErr = tt.mintErr
			if tt.mod != nil {
				tt.mod(f)
			}
			f.seedApp(t)
			_, err := f.r.Refresh(context.Background(), "app", inline)
			if tt.wantErr == token.ErrUnavailable {
				var be *token.BackoffError
				if !errors.As(err, &be) {
					t.Fatalf("got %v, want a backoff", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			if token.RejectedByWebex(err) != (tt.wantErr == token.ErrConfigError && tt.mintErr != nil) {
				t.Fatalf("RejectedByWebex(%v) wrong: only Webex's rejections count for the brake", err)
			}
			got := f.get(t, "app")
			if got.Status != tt.wantStatus || got.LastError == nil || got.Lease.Holder != "" {
				t.Fatalf("stored %+v, want status %q with lastError and no lease", got, tt.wantStatus)
			}
			if m := f.issuer.Mints(); m != tt.wantMints {
				t.Fatalf("got %d mints, want %d", m, tt.wantMints)
			}
			// No retry loop: a second try right away makes no call.
			f.r.Refresh(context.Background(), "app", scheduled)
			if m := f.issuer.Mints(); m != tt.wantMints {
				t.Fatalf("got %d mints after a second try, want %d", m, tt.wantMints)
			}
		})
	}
}

// TestConfigErrorResumesWhenFixed: a Service App in config_error is
// minted again once its config changes.
func TestConfigErrorResumesWhenFixed(t *testing.T) {
	f := newMintFixture(t)
	f.mintErr = fmt.Errorf("webex mint: HTTP 404: %w", token.ErrClientRejected)
	f.seedApp(t)
	f.r.Refresh(context.Background(), "app", inline)
	f.mintErr = nil
	if _, err := f.store.Update(context.Background(), "app", func(a *token.Token) ([]token.Event, error) {
		a.AppID = "right-app-id"
		if !a.ResumeIfClientFixed() {
			t.Error("changing appId did not resume")
		}
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if res, err := f.r.Refresh(context.Background(), "app", inline); err != nil || res.Outcome != lifecycle.Refreshed {
		t.Fatalf("got %v %v, want minted", res.Outcome, err)
	}
}

// TestConcurrentMints: many callers on two instances, one mint.
func TestConcurrentMints(t *testing.T) {
	f := newMintFixture(t)
	f.seedApp(t)
	f.mintDelay = 50 * time.Millisecond
	other := f.newRefresher("holder-b")
	defer other.Close()
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		r := f.r
		if i%2 == 1 {
			r = other
		}
		wg.Go(func() {
			res, err := r.Refresh(context.Background(), "app", inline)
			if err != nil || !res.Token.HasAccessToken() {
				t.Errorf("got %v %v", res.Outcome, err)
			}
		})
	}
	wg.Wait()
	if m := f.issuer.Mints(); m != 1 {
		t.Fatalf("got %d mints, want 1", m)
	}
}

// TestWaitingThenTransient: once the manager is back, a Service App that
// then fails transiently leaves reauth_required and backs off, instead of
// being retried at every try.
func TestWaitingThenTransient(t *testing.T) {
	f := newMintFixture(t)
	gen := int64(3)
	f.seedApp(t, func(a *token.Token) { a.Status, a.ManagerGeneration = token.StatusReauthRequired, &gen })
	f.mintErr = &token.TransientError{Err: errors.New("503")}
	_, err := f.r.Refresh(context.Background(), "app", scheduled)
	var be *token.BackoffError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a backoff", err)
	}
	got := f.get(t, "app")
	if got.Status != token.StatusPending || got.ManagerGeneration != nil || got.NextAttempt.IsZero() {
		t.Fatalf("stored %+v, want pending and backing off", got)
	}
	f.r.Refresh(context.Background(), "app", scheduled)
	if m := f.issuer.Mints(); m != 1 {
		t.Fatalf("got %d mints, want 1 (the second try is backing off)", m)
	}
}
