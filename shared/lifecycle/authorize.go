package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// ErrNotAuthorizable: a person cannot authorize the token now; the
// wrapping error says why and what to do.
var ErrNotAuthorizable = errors.New("cannot be authorized")

// Authorizable reads name for an authorization and checks that a person
// can authorize it: an integration (a Service App is minted), with a
// complete client config and at least one scope. A token whose access
// and refresh tokens do not open may be authorized again (that repairs
// it).
func (s *Service) Authorizable(ctx context.Context, name string) (*token.Token, error) {
	if err := token.ValidateName(name); err != nil {
		return nil, err
	}
	t, err := token.ForReauthorization(s.d.Store.Get(ctx, name))
	if err != nil {
		return nil, err
	}
	switch missing := t.MissingClientFields(); {
	case t.IsServiceApp():
		return nil, fmt.Errorf("%w: %s is a Service App: Service Apps are minted with their manager's token; Refresh now mints a new pair", ErrNotAuthorizable, name)
	case len(missing) > 0:
		return nil, fmt.Errorf("%w: %s has no complete client config (no %s): set it first", ErrNotAuthorizable, name, strings.Join(missing, ", "))
	case len(t.Scopes) == 0:
		return nil, fmt.Errorf("%w: %s has no scopes: set the scopes it needs first", ErrNotAuthorizable, name)
	}
	return t, nil
}

// AuthorizationStarted records that who sent a browser to Webex to
// authorize name.
func (s *Service) AuthorizationStarted(ctx context.Context, who Actor, name, how string) {
	s.record(ctx, who, activity.AuthStarted, name, activity.OK, how)
}

// AuthorizationFailed records on name that an authorization failed at
// /callback (the code rejected, Webex unreachable, the client config
// incomplete, or the person at Webex declined), so that the operator
// sees why where they look: the token's lastError and the activity
// record. The caller has verified the authorization's state first, so a
// stranger cannot write here. While another instance holds the token's
// lease it is recorded in the activity only: it never contends with a
// refresh.
func (s *Service) AuthorizationFailed(ctx context.Context, who Actor, name, message string, permanent bool) {
	s.record(ctx, who, activity.AuthFailed, name, activity.Failed, message)
	_, err := s.d.Store.Update(ctx, name, func(t *token.Token) ([]token.Event, error) {
		if t.Lease.HeldByOther("", s.o.Now()) {
			return nil, token.ErrConflict
		}
		t.AuthorizationFailed(s.o.Now(), "authorization failed: "+message, permanent)
		return nil, nil
	})
	if err != nil && !errors.Is(err, token.ErrNotFound) && !errors.Is(err, token.ErrConflict) {
		s.o.Logger.Warn("failed authorization not recorded on the token", "token", name, "error", err.Error())
	}
}
