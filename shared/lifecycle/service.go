package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// Store is what the use cases need of the store: the protocol's, and
// deleting a token together with its event.
type Store interface {
	token.Store
	// Delete removes name's document and writes the event that event
	// builds from it into the outbox in the same transaction.
	// ErrNotFound if there is none.
	Delete(ctx context.Context, name string, event func(t *token.Token) token.Event) (token.Event, error)
}

// People asks Webex who an access token acts as (GET /v1/people/me).
type People interface {
	Me(ctx context.Context, accessToken string) (token.Person, error)
}

// Alerter publishes an event that belongs to no token (token.sweep_halted).
type Alerter interface {
	Alert(ctx context.Context, e token.Event) error
}

// Deps are what the use cases need beyond the protocol. Only Store is
// required.
type Deps struct {
	Store Store
	// Activity records who did what; nil records nothing.
	Activity activity.Recorder
	// People, if set, is asked who each new authorization acts as.
	People People
	// Alerts publishes alerts; nil leaves them to the log.
	Alerts Alerter
	// HashPassphrase hashes a token's own passphrase, checking its rules
	// (package passphrase's Hash).
	HashPassphrase func(string) (string, error)
	// Links keeps authorization links, valid for LinkTTL
	// (AUTHORIZE_LINK_TTL); nil turns them off.
	Links   people.LinkStore
	LinkTTL time.Duration
}

// Service carries out the operators' use cases and the service's own
// writes through the refresh protocol it embeds. One per process.
type Service struct {
	*Refresher
	d Deps
}

// New returns the use cases over r (whose store must be d.Store).
func New(r *Refresher, d Deps) *Service {
	if r.o.Activity == nil {
		r.o.Activity = d.Activity
	}
	return &Service{Refresher: r, d: d}
}

// Actor is who asks for a use case: a person, the admin passphrase or
// the service, and the client address they came from.
type Actor struct {
	Kind activity.ActorKind
	Name string
	Addr string
}

// record writes an activity entry for who, if there is a recorder.
func (s *Service) record(ctx context.Context, who Actor, action activity.Action, name string, outcome activity.Outcome, detail string) {
	recordActivity(ctx, s.d.Activity, activity.Entry{At: s.o.Now(), ActorKind: who.Kind, Actor: who.Name, Action: action,
		Token: name, Addr: who.Addr, Outcome: outcome, Detail: detail})
}

func recordActivity(ctx context.Context, rec activity.Recorder, e activity.Entry) {
	if rec != nil {
		rec.Record(ctx, e)
	}
}

// outcomeOf is the activity outcome of a use case's error: refused for
// the caller's mistakes, failed for the service's.
func outcomeOf(err error) activity.Outcome {
	switch {
	case err == nil:
		return activity.OK
	case errors.Is(err, token.ErrInvalidConfig), errors.Is(err, token.ErrInvalidName), errors.Is(err, token.ErrNotFound),
		errors.Is(err, token.ErrExists), errors.Is(err, token.ErrBadManager), errors.Is(err, ErrNotAuthorizable),
		errors.Is(err, ErrWrongPerson), errors.Is(err, ErrPersonUnknown), errors.Is(err, people.ErrLinkUsed),
		errors.Is(err, people.ErrLinkExpired), errors.Is(err, people.ErrLinkRevoked), errors.Is(err, people.ErrLinkWrongPerson),
		errors.Is(err, people.ErrLinkNotFound):
		return activity.Refused
	}
	return activity.Failed
}

// ---- saving a client config ----

// SaveMode says whether saving a client config may create the token,
// update it, or both.
type SaveMode int

// Save modes.
const (
	CreateOrUpdate SaveMode = iota // PUT /admin/tokens/N
	CreateOnly                     // the console's New token form
	UpdateOnly                     // the console's token page
)

// Saved is what SaveClientConfig did.
type Saved struct {
	Created bool
	// Changed names the fields that changed (never their values).
	Changed []string
	// Token is the token as stored.
	Token *token.Token
	// Mint says how minting a Service App that the save left without
	// tokens went; nil when there was nothing to mint.
	Mint *MintReport
}

// MintReport is how a mint right after a save went.
type MintReport struct {
	Minted bool
	Status token.Status
	// LastError is why not, in words, when it was not minted.
	LastError string
}

// SaveClientConfig writes ch into name's document: the client config,
// the token's own passphrase (hashed), and a Service App's fields. It
// never touches the tokens themselves; a change of the client takes the
// token out of config_error so that refreshing resumes. A Service App
// the save leaves without tokens is minted at once. Errors:
// token.ErrInvalidConfig, ErrInvalidName, ErrBadManager, ErrNotFound
// (UpdateOnly), ErrExists (CreateOnly).
func (s *Service) SaveClientConfig(ctx context.Context, who Actor, name string, ch token.ConfigChange, mode SaveMode) (Saved, error) {
	saved, err := s.saveClientConfig(ctx, name, ch, mode)
	action, detail := savedAction(saved, ch)
	if err != nil {
		detail = errorDetail(err)
	}
	s.record(ctx, who, action, name, outcomeOf(err), detail)
	if err != nil {
		return saved, err
	}
	s.o.Logger.Info("client config saved", "token", name, "created", saved.Created, "fields", saved.Changed, "actor", who.Name)
	saved.Mint = s.mintAfterSave(ctx, who, saved.Token)
	return saved, nil
}

func (s *Service) saveClientConfig(ctx context.Context, name string, ch token.ConfigChange, mode SaveMode) (Saved, error) {
	var saved Saved
	if err := token.ValidateName(name); err != nil {
		return saved, err
	}
	if err := ch.Validate(); err != nil {
		return saved, err
	}
	var hash string
	if ch.Passphrase != nil && *ch.Passphrase != "" {
		h, err := s.d.HashPassphrase(*ch.Passphrase)
		if err != nil {
			return saved, fmt.Errorf("%w: passphrase: %w", token.ErrInvalidConfig, err)
		}
		hash = h
	}
	if err := s.checkManager(ctx, name, ch.Manager); err != nil {
		return saved, err
	}
	update := func(t *token.Token) ([]token.Event, error) {
		changed, err := ch.Apply(t, hash)
		if err != nil {
			return nil, err
		}
		if t.ResumeIfClientFixed() {
			changed = append(changed, "status")
		}
		saved.Changed = changed
		return nil, nil
	}
	create := func() (bool, error) {
		t := &token.Token{Name: name, Status: token.StatusPending}
		if _, err := update(t); err != nil {
			return false, err
		}
		if missing := t.MissingClientFields(); len(missing) > 0 {
			needs := "a new token needs clientId, clientSecret and redirectUri"
			if t.IsServiceApp() {
				needs = "a new Service App needs appId, clientId, clientSecret, targetOrgId and manager"
			}
			return false, fmt.Errorf("%w: %s: no %s", token.ErrInvalidConfig, needs, strings.Join(missing, ", "))
		}
		saved.Token = t
		return s.d.Store.Create(ctx, t)
	}
	var err error
	switch mode {
	case CreateOnly:
		saved.Created, err = create()
		if err == nil && !saved.Created {
			err = token.ErrExists
		}
		return saved, err
	case UpdateOnly:
		saved.Token, err = s.d.Store.Update(ctx, name, update)
		return saved, err
	}
	saved.Token, err = s.d.Store.Update(ctx, name, update)
	if errors.Is(err, token.ErrNotFound) {
		saved.Created, err = create()
		if err == nil && !saved.Created { // created by someone else meanwhile
			saved.Token, err = s.d.Store.Update(ctx, name, update)
		}
	}
	return saved, err
}

// savedAction is the activity entry of a save: what kind of change, and
// which fields (names only).
func savedAction(saved Saved, ch token.ConfigChange) (activity.Action, string) {
	detail := "fields: " + strings.Join(saved.Changed, ", ")
	if len(saved.Changed) == 0 {
		detail = "nothing changed"
	}
	switch {
	case saved.Created:
		return activity.TokenCreated, detail
	case len(saved.Changed) == 1 && saved.Changed[0] == "passphrase" && ch.Passphrase != nil && *ch.Passphrase == "":
		return activity.PassphraseGone, ""
	case len(saved.Changed) == 1 && saved.Changed[0] == "passphrase":
		return activity.PassphraseSet, ""
	case ch.Passphrase != nil && ch.ClientID == nil && ch.ClientSecret == nil && ch.RedirectURI == nil && ch.Scopes == nil && ch.AppID == nil:
		if *ch.Passphrase == "" {
			return activity.PassphraseGone, detail
		}
		return activity.PassphraseSet, detail
	}
	return activity.ConfigSaved, detail
}

// errorDetail is an error for the activity record: the model's messages
// say nothing secret.
func errorDetail(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}

// checkManager refuses a manager that does not exist, is itself a
// Service App, or is the token being written (token.CheckManager).
func (s *Service) checkManager(ctx context.Context, name string, manager *string) error {
	if manager == nil {
		return nil
	}
	app := &token.Token{Name: name, Kind: token.KindServiceApp, Manager: *manager}
	var m *token.Token
	if *manager != name {
		var err error
		m, err = token.ForReauthorization(s.d.Store.Get(ctx, *manager))
		switch {
		case errors.Is(err, token.ErrNotFound):
			m = nil
		case err != nil:
			return fmt.Errorf("read manager: %w", err)
		}
	}
	return token.CheckManager(app, m)
}

// mintAfterSave mints a Service App that a save left without tokens (just
// created, or resumed from config_error), through the protocol, and says
// how it went. An integration, or a Service App held back, is left alone.
func (s *Service) mintAfterSave(ctx context.Context, who Actor, t *token.Token) *MintReport {
	if t == nil || !t.IsServiceApp() || t.HasAccessToken() || t.HeldBack(s.o.Now()) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.serviceAppLeaseTTL())
	defer cancel()
	res, err := s.Refresh(ctx, t.Name, RefreshOptions{Trigger: token.TriggerManual, WaitForOthers: true})
	rep := &MintReport{Minted: err == nil && res.Token != nil && res.Token.HasAccessToken(), Status: token.StatusPending}
	if res.Token != nil {
		rep.Status = res.Token.State()
		if le := res.Token.LastError; le != nil {
			rep.LastError = le.Message
		}
	}
	if err != nil {
		s.o.Logger.Warn("service app not minted after save", "token", t.Name, "error", err.Error())
		if rep.LastError == "" {
			rep.LastError = "the mint did not finish; the api mints it on the first request, the worker at the next sweep"
		}
	}
	return rep
}

// ---- delete ----

// Delete deletes name's document and publishes token.deleted: the event
// is written into the outbox with the delete, then handed to the
// publisher. ErrNotFound if there is no such token.
func (s *Service) Delete(ctx context.Context, who Actor, name string) error {
	err := s.delete(ctx, name)
	s.record(ctx, who, activity.TokenDeleted, name, outcomeOf(err), errDetailOrEmpty(err))
	return err
}

func (s *Service) delete(ctx context.Context, name string) error {
	if err := token.ValidateName(name); err != nil {
		return err
	}
	now := s.o.Now()
	e, err := s.d.Store.Delete(ctx, name, func(t *token.Token) token.Event {
		return token.NewEvent(token.EventDeleted, t, token.TriggerManual, now)
	})
	if err != nil {
		return err
	}
	s.o.Logger.Info("token deleted", "token", name, "generation", e.Generation)
	s.deliver([]token.Event{e})
	return nil
}

func errDetailOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return errorDetail(err)
}

// ---- refresh now ----

// ErrRefreshInProgress: a forced refresh found another instance
// refreshing the token and did not see it finish in time.
var ErrRefreshInProgress = fmt.Errorf("being refreshed by another instance: %w", token.ErrUnavailable)

// RefreshNow is an operator's "Refresh now": a forced refresh through the
// protocol (for a Service App, a mint), waiting for another instance's
// refresh of the same token if one is under way. A refresh that another
// instance completed meanwhile counts as done: across all instances it is
// still one Webex call.
func (s *Service) RefreshNow(ctx context.Context, who Actor, name string) (Result, error) {
	res, err := s.refreshNow(ctx, name)
	detail := res.Outcome.String()
	if err != nil {
		detail = errorDetail(err)
	}
	s.record(ctx, who, activity.RefreshNow, name, outcomeOf(err), detail)
	return res, err
}

func (s *Service) refreshNow(ctx context.Context, name string) (Result, error) {
	if err := token.ValidateName(name); err != nil {
		return Result{}, err
	}
	// The Webex call has its own timeout; waiting a little longer lets a
	// lease holder elsewhere finish first.
	ctx, cancel := context.WithTimeout(ctx, s.o.WebexTimeout+5*time.Second)
	defer cancel()
	res, err := s.Refresh(ctx, name, RefreshOptions{Force: true, Trigger: token.TriggerManual, WaitForOthers: true})
	if err == nil && res.Outcome != Refreshed && res.Outcome != RefreshedElsewhere {
		err = fmt.Errorf("refresh %s: %w", name, ErrRefreshInProgress)
	}
	if err != nil {
		s.o.Logger.Warn("manual refresh failed", "token", name, "error", err.Error())
	}
	return res, err
}

// ---- expiry warnings and halted sweeps (the worker's) ----

// WarnExpiring records that name's refresh token expires soon and
// publishes token.refresh_expiring, once per refresh token (per
// refreshExpires value). It reports whether it warned now.
func (s *Service) WarnExpiring(ctx context.Context, name string) (bool, error) {
	var events []token.Event
	_, err := s.d.Store.Update(ctx, name, func(cur *token.Token) ([]token.Event, error) {
		if cur.ExpiryWarned.Equal(cur.RefreshExpires) || cur.RefreshExpires.IsZero() {
			return nil, token.ErrConflict
		}
		cur.ExpiryWarned = cur.RefreshExpires
		events = []token.Event{token.NewEvent(token.EventRefreshExpiring, cur, token.TriggerScheduled, s.o.Now())}
		return events, nil
	})
	if errors.Is(err, token.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("warn of expiry: %w", err)
	}
	s.o.Logger.Warn("refresh token expires soon; authorize again before it does", "token", name)
	s.record(ctx, s.self(), activity.ExpiryWarned, name, activity.OK, "refresh token expires "+events[0].RefreshExpires.UTC().Format(time.RFC3339))
	s.deliver(events)
	return true, nil
}

// HaltSweep reports loudly that the worker's brake stopped a sweep: one
// ERROR line, the activity record and one token.sweep_halted event
// (published at once; it belongs to no token, so it has no outbox).
func (s *Service) HaltSweep(ctx context.Context, reason string) error {
	now := s.o.Now()
	s.o.Logger.Error(reason)
	s.record(ctx, s.self(), activity.SweepHalted, "", activity.Failed, reason)
	if s.d.Alerts == nil {
		return nil
	}
	e := token.Event{
		ID:      fmt.Sprintf("sweep/%d/%s", now.UnixMilli(), token.EventSweepHalted),
		Type:    token.EventSweepHalted,
		Trigger: token.TriggerScheduled,
		Time:    now,
		Message: reason,
	}
	if err := s.d.Alerts.Alert(ctx, e); err != nil {
		return fmt.Errorf("publish sweep halt: %w", err)
	}
	return nil
}

// self is the service itself as an actor.
func (s *Service) self() Actor { return Actor{Kind: activity.ByService, Name: s.o.Holder} }

// Init is the sample's GET /init: it creates name with empty client
// fields if there is no such token, and never changes an existing one.
// It reports whether it created it.
func (s *Service) Init(ctx context.Context, who Actor, name string) (bool, error) {
	if err := token.ValidateName(name); err != nil {
		return false, err
	}
	created, err := s.d.Store.Create(ctx, &token.Token{Name: name, Status: token.StatusPending})
	if err != nil || created {
		s.record(ctx, who, activity.TokenCreated, name, outcomeOf(err), "by GET /init, with empty client fields")
	}
	if err != nil {
		return false, err // the store names the token
	}
	return created, nil
}
