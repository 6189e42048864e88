package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

// ErrLinksOff: authorization links need a link store, and there is none.
var ErrLinksOff = errors.New("authorization links are not configured")

// CreateLink makes an authorization link for name (DESIGN 2b): single
// use, valid for AUTHORIZE_LINK_TTL, with a PKCE verifier held
// server-side, and for email only if it is not empty. The person who
// opens it needs no console access. It returns the link's ID, which only
// the link's URL carries, and the link as stored.
func (s *Service) CreateLink(ctx context.Context, who Actor, name, email string) (string, *people.Link, error) {
	id, l, err := s.createLink(ctx, who, name, email)
	detail := "for anyone"
	switch {
	case err != nil:
		detail = errorDetail(err)
	case l.Email != "":
		detail = "for " + l.Email
	}
	if err == nil {
		detail += ", valid until " + l.Expires.UTC().Format(time.RFC3339)
	}
	s.record(ctx, who, activity.LinkCreated, name, outcomeOf(err), detail)
	return id, l, err
}

func (s *Service) createLink(ctx context.Context, who Actor, name, email string) (string, *people.Link, error) {
	if s.d.Links == nil {
		return "", nil, ErrLinksOff
	}
	if _, err := s.Authorizable(ctx, name); err != nil {
		return "", nil, err
	}
	id, l, err := people.NewLink(name, email, who.Name, s.o.Now(), s.d.LinkTTL)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", token.ErrInvalidConfig, err)
	}
	if err := s.d.Links.Create(ctx, l); err != nil {
		return "", nil, fmt.Errorf("store link: %w", err)
	}
	return id, l, nil
}

// RevokeLink ends the pending link key of token name.
func (s *Service) RevokeLink(ctx context.Context, who Actor, name, key string) error {
	err := ErrLinksOff
	if s.d.Links != nil {
		err = s.d.Links.Revoke(ctx, key, who.Name)
	}
	s.record(ctx, who, activity.LinkRevoked, name, outcomeOf(err), errDetailOrEmpty(err))
	return err
}

// Links lists the pending authorization links of name ("" : of every
// token), without their verifiers.
func (s *Service) Links(ctx context.Context, name string) ([]people.Link, error) {
	if s.d.Links == nil {
		return nil, nil
	}
	return s.d.Links.Pending(ctx, name)
}

// CompleteLink completes an authorization started from a link: like
// CompleteAuthorization with the link's verifier, for the person the link
// names if it names one, and only once: the link is used, atomically
// across instances, after Webex said who authorized and before the
// grant is stored. A link used, revoked, expired or meant for someone
// else stores nothing.
func (s *Service) CompleteLink(ctx context.Context, who Actor, l *people.Link, code string) (*token.Token, error) {
	a := Authorization{Name: l.Token, Code: code, Verifier: l.Verifier, ExpectEmail: l.Email, Claim: func(ctx context.Context, by *token.Person) error {
		email := ""
		if by != nil {
			email = by.Email
		}
		if _, err := s.d.Links.Use(ctx, l.Key, email); err != nil {
			return fmt.Errorf("use link: %w", err)
		}
		s.record(ctx, Actor{Kind: activity.ByVisitor, Name: email, Addr: who.Addr}, activity.LinkUsed, l.Token, activity.OK, "made by "+l.CreatedBy)
		return nil
	}}
	return s.CompleteAuthorization(ctx, who, a)
}

// Link returns the link whose URL carries id, in whatever state, with its
// verifier while pending.
func (s *Service) Link(ctx context.Context, id string) (*people.Link, error) {
	if s.d.Links == nil {
		return nil, people.ErrLinkNotFound
	}
	return s.d.Links.Get(ctx, id)
}
