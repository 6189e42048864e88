package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// Authorization is an OAuth authorization to complete at /callback: the
// code Webex sent for the token Name, the PKCE verifier it was started
// with ("" if none), and, for an authorization link that names one, the
// e-mail of the person who must be the one authorizing.
type Authorization struct {
	Name        string
	Code        string
	Verifier    string
	ExpectEmail string
	// Claim, if set, is called once Webex said who authorized (by; nil if
	// it could not say) and before the grant is stored; its error stops
	// the authorization (an authorization link used twice).
	Claim func(ctx context.Context, by *token.Person) error
}

// Errors of completing an authorization, besides the Webex errors.
var (
	// ErrWrongPerson: an authorization link named who must authorize,
	// and someone else did; the grant was not stored.
	ErrWrongPerson = errors.New("authorized by another Webex user than the one the link names")
	// ErrPersonUnknown: an authorization link named who must authorize,
	// and Webex could not say who did; the grant was not stored.
	ErrPersonUnknown = errors.New("webex could not say who authorized")
)

// ExchangeCode completes an OAuth authorization without PKCE or asking
// who authorized (ExchangeCodeVerified).
func (r *Refresher) ExchangeCode(ctx context.Context, name, code string) (*token.Token, error) {
	return r.ExchangeCodeVerified(ctx, name, code, "")
}

// ExchangeCodeVerified exchanges code (and verifier, if not empty, through
// an Issuer that is a VerifierIssuer) with the client config stored for
// name and stores the grant as a new generation, clearing any
// reauth_required or config_error state: a person authorized, so it wins
// over whatever state the token was in.
func (r *Refresher) ExchangeCodeVerified(ctx context.Context, name, code, verifier string) (*token.Token, error) {
	t, _, err := r.authorize(ctx, Authorization{Name: name, Code: code, Verifier: verifier}, nil)
	return t, err
}

// CompleteAuthorization is ExchangeCodeVerified that also asks Webex who
// the new grant acts as (GET /v1/people/me) and stores it as
// authorizedBy, with the person's org as the token's. A failure to ask is
// recorded and the grant stored all the same, unless the authorization
// named who must authorize (ExpectEmail): then the grant is stored only
// for that person (ErrWrongPerson, ErrPersonUnknown otherwise).
func (s *Service) CompleteAuthorization(ctx context.Context, who Actor, a Authorization) (*token.Token, error) {
	var identify func(context.Context, string) (*token.Person, error)
	if s.d.People != nil {
		identify = func(ctx context.Context, accessToken string) (*token.Person, error) {
			p, err := s.d.People.Me(ctx, accessToken) // bounded by the client's WEBEX_TIMEOUT
			if err != nil {
				return nil, err
			}
			return &p, nil
		}
	}
	t, by, err := s.authorize(ctx, a, identify)
	var detail string
	switch {
	case by != nil:
		detail = "acts as " + by.Email
		if who.Kind == activity.ByVisitor && who.Name == "" {
			who.Name = by.Email
		}
	case err == nil && identify != nil:
		detail = "webex could not say who authorized"
		s.record(ctx, s.self(), activity.IdentityUnknown, a.Name, activity.Failed, detail)
	}
	switch {
	case outcomeOf(err) == activity.Refused:
		s.record(ctx, who, activity.AuthRefused, a.Name, activity.Refused, errorDetail(err))
	case err != nil:
		s.record(ctx, who, activity.AuthFailed, a.Name, outcomeOf(err), errorDetail(err))
	default:
		s.record(ctx, who, activity.AuthCompleted, a.Name, activity.OK, detail)
	}
	return t, err
}

// authorize exchanges a's code and stores the grant; identify, if not
// nil, is asked who the grant acts as before it is stored.
func (r *Refresher) authorize(ctx context.Context, a Authorization, identify func(context.Context, string) (*token.Person, error)) (*token.Token, *token.Person, error) {
	name := a.Name
	if err := token.ValidateName(name); err != nil {
		return nil, nil, err
	}
	t, err := token.ForReauthorization(r.o.Store.Get(ctx, name))
	if err != nil {
		return nil, nil, err // the store names the token
	}
	if t.IsServiceApp() {
		return nil, nil, fmt.Errorf("authorize %s: %w: a Service App is minted with its manager's token, not authorized by a person", name, token.ErrNoClientConfig)
	}
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return nil, nil, fmt.Errorf("authorize %s: %w: no %s", name, token.ErrNoClientConfig, strings.Join(missing, ", "))
	}
	client := token.Client{ID: t.ClientID, Secret: t.ClientSecret, RedirectURI: t.RedirectURI}
	exchange := func(ctx context.Context) (token.Grant, error) { return r.o.Issuer.Exchange(ctx, client, a.Code) }
	if a.Verifier != "" {
		vi, ok := r.o.Issuer.(token.VerifierIssuer)
		if !ok {
			return nil, nil, fmt.Errorf("authorize %s: the webex client cannot send a PKCE verifier", name)
		}
		exchange = func(ctx context.Context) (token.Grant, error) {
			return vi.ExchangeVerified(ctx, client, a.Code, a.Verifier)
		}
	}
	g, latency, err := r.callWebex(ctx, exchange)
	var (
		saved *token.Token
		by    *token.Person
	)
	if err == nil && identify != nil {
		var ierr error
		by, ierr = identify(context.WithoutCancel(ctx), g.AccessToken)
		if ierr != nil {
			r.o.Logger.Warn("webex did not say who authorized", "token", name, "error", ierr.Error())
		}
		err = checkPerson(a.ExpectEmail, by, ierr)
	}
	if err == nil && a.Claim != nil {
		err = a.Claim(context.WithoutCancel(ctx), by)
	}
	if err == nil {
		// The code is spent: the grant is stored even if the caller goes away.
		saved, err = r.storeGrant(ctx, t, g, token.TriggerAuthorization, nil, func(cur *token.Token) {
			cur.AuthorizedBy = by
			if by != nil && by.OrgID != "" {
				cur.OrgID = token.OrgUUID(by.OrgID) // WxCC's APIs take the UUID
			}
		})
	}
	if err != nil && !errors.Is(err, ErrWrongPerson) && !errors.Is(err, ErrPersonUnknown) {
		err = fmt.Errorf("authorize %s: %w", name, err)
	}
	res := Result{Token: saved, Outcome: Refreshed}
	r.report(RefreshReport{Name: name, Trigger: token.TriggerAuthorization, Grant: "authorization_code", Result: resultOf(res, err), WebexLatency: latency, Token: saved})
	if err != nil {
		return nil, by, err
	}
	r.o.Logger.Info("token authorized", "token", name, "generation", saved.Generation)
	return saved, by, nil
}

// checkPerson says whether the person who authorized (by; nil, with why,
// when Webex could not say) is the one expected ("" expects anyone).
func checkPerson(expect string, by *token.Person, why error) error {
	switch {
	case expect == "":
		return nil
	case by == nil:
		return fmt.Errorf("%w (%v): the link names %s; make sure the integration's scopes allow GET /v1/people/me, or create a link that names no one", ErrPersonUnknown, why, expect)
	case !strings.EqualFold(by.Email, expect):
		return fmt.Errorf("%w: %s authorized, the link names %s", ErrWrongPerson, by.Email, expect)
	}
	return nil
}
