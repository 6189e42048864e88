package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// Minting a Service App's pair (DESIGN 5a) is a step of the refresh
// protocol, not a protocol of its own: run reads the Service App, takes
// its lease as for a refresh, and callAndCommit mints instead of
// refreshing when the Service App has no usable pair (Token.NeedsMint),
// an operator forced it, it waits for its manager, or Webex just rejected
// its refresh token. Under the lease:
//
//  1. The manager's access token comes through the protocol itself
//     (Refresh on the manager: refreshed first if it is due, or waited
//     for if another instance is refreshing it), never read around it.
//  2. One call to the applications endpoint with it (Issuer.Mint).
//  3. The answer is stored like any grant (storeGrant: generation+1,
//     lease and errors cleared, token.rotated with trigger mint), or the
//     failure is classified:
//     - the manager's token rejected (401): the manager is refreshed once
//     (forced, so still one Webex call across instances) and the mint
//     retried; refused again with that fresh token, it is the Service
//     App's client that Webex refuses: config_error;
//     - the manager needs re-authorization, or its token lacks
//     spark:applications_token: reauth_required naming the manager;
//     tried again when the manager is back (Token.ManagerBack), with no
//     action on the Service App;
//     - the app unknown, not authorized for the org, or its client
//     refused (400/403/404): config_error, resumed by a change of the
//     Service App's config;
//     - anything else (5xx, 429, timeouts, the manager backing off):
//     transient, with backoff.

// managerMinValidity is the least time the manager's access token must
// have left to be sent along with a mint.
const managerMinValidity = time.Minute

// serviceAppLeaseTTL is how long a Service App's lease lasts: a refresh
// that Webex rejects, the manager's refresh, a mint, the manager's forced
// refresh and a second mint, each under WebexTimeout, with room for the
// waits and the commit.
func (r *Refresher) serviceAppLeaseTTL() time.Duration { return 5*r.o.WebexTimeout + 30*time.Second }

// leaseTTL is how long the lease on t lasts.
func (r *Refresher) leaseTTL(t *token.Token) time.Duration {
	if t.IsServiceApp() {
		return r.serviceAppLeaseTTL()
	}
	return r.LeaseTTL()
}

// mints reports whether the Webex call for t, leased under m, is a mint.
func (r *Refresher) mints(t *token.Token, m RefreshOptions) bool {
	return t.IsServiceApp() && (m.Force || t.NeedsMint(r.o.Now(), m.MintWithin) || t.WaitsForManager())
}

// managerBack reports whether the Service App t, waiting for its manager,
// may be minted again: the manager is back (Token.ManagerBack). It costs
// a store read, no Webex call.
func (r *Refresher) managerBack(ctx context.Context, t *token.Token) bool {
	manager, err := r.o.Store.Get(ctx, t.Manager)
	switch {
	case errors.Is(err, token.ErrNotFound), errors.Is(err, token.ErrInvalidName):
		manager = nil
	case err != nil:
		return false // the store will answer at the next try
	}
	return t.ManagerBack(manager)
}

// mintAndCommit holds the lease on the Service App t: it mints a new pair
// and records the outcome as afterCall does for a refresh.
func (r *Refresher) mintAndCommit(ctx context.Context, t *token.Token, m RefreshOptions) (Result, error) {
	g, latency, called, err := r.mint(ctx, t, m)
	mm := m
	mm.Trigger = token.TriggerMint
	res, err := r.afterCall(ctx, t, g, err, mm)
	if called {
		r.report(RefreshReport{Name: t.Name, Trigger: token.TriggerMint, Grant: "applications_token", Result: resultOf(res, err), WebexLatency: latency, Token: res.Token})
	}
	return res, err
}

// mint gets the manager's access token and calls the applications
// endpoint with it, retrying once with a refreshed manager token if
// Webex refused the first. called says whether Webex was called at all.
func (r *Refresher) mint(ctx context.Context, t *token.Token, m RefreshOptions) (g token.Grant, latency time.Duration, called bool, err error) {
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return token.Grant{}, 0, false, fmt.Errorf("mint %s: %w: no %s", t.Name, token.ErrNoClientConfig, strings.Join(missing, ", "))
	}
	manager, err := r.managerToken(ctx, t, m, nil)
	if err != nil {
		return token.Grant{}, 0, false, err
	}
	call := func(manager *token.Token) (token.Grant, time.Duration, error) {
		return r.callWebex(ctx, func(ctx context.Context) (token.Grant, error) {
			return r.o.Issuer.Mint(ctx, token.MintRequest{AppID: t.AppID, Client: token.Client{ID: t.ClientID, Secret: t.ClientSecret},
				TargetOrgID: t.TargetOrgID, ManagerToken: manager.AccessToken})
		})
	}
	g, latency, err = call(manager)
	if errors.Is(err, token.ErrManagerTokenRejected) {
		r.o.Logger.Warn("webex refused the manager's token; refreshing the manager once", "token", t.Name, "manager", t.Manager)
		refreshed, merr := r.managerToken(ctx, t, m, manager)
		if merr != nil {
			return token.Grant{}, latency, true, merr
		}
		manager = refreshed
		var again time.Duration
		g, again, err = call(manager)
		latency += again
		if errors.Is(err, token.ErrManagerTokenRejected) {
			// Webex just issued that token: what it refuses is the rest
			// of the request, the Service App's own client.
			err = fmt.Errorf("%w: refused with the manager's fresh token too: %w", token.ErrClientRejected, err)
		}
	}
	if errors.Is(err, token.ErrManagerNotPermitted) {
		gen := manager.Generation
		err = &token.ManagerError{Manager: t.Manager, Generation: &gen, Reauth: true, Err: err}
	}
	return g, latency, true, err
}

// managerToken returns the Service App t's manager with an access token
// to send, obtained through the protocol: refreshed first if it is due.
// rejected, if not nil, is the manager as it was when Webex refused its
// token: the manager is then refreshed now (forced), unless someone has
// refreshed it since. A manager that cannot give a token is a
// *ManagerError (or ErrBadManager if it is a Service App).
func (r *Refresher) managerToken(ctx context.Context, t *token.Token, m RefreshOptions, rejected *token.Token) (*token.Token, error) {
	opts := RefreshOptions{Trigger: m.Trigger, WaitForOthers: true, asManager: true}
	if rejected != nil {
		cur, err := r.o.Store.Get(ctx, t.Manager)
		if err == nil && cur.Generation != rejected.Generation && !cur.IsServiceApp() && cur.Servable(r.o.Now(), managerMinValidity) {
			return cur, nil // refreshed by someone else meanwhile
		}
		opts.Force = true
	}
	mctx, cancel := context.WithTimeout(ctx, r.LeaseTTL())
	defer cancel()
	res, err := r.refresh(mctx, t.Manager, nil, opts)
	manager := res.Token
	switch {
	case errors.Is(err, token.ErrBadManager):
		return nil, fmt.Errorf("mint %s: %w", t.Name, err)
	case errors.Is(err, token.ErrNotFound), errors.Is(err, token.ErrInvalidName):
		return nil, &token.ManagerError{Manager: t.Manager, Reauth: true, Err: fmt.Errorf("no token named %q", t.Manager)}
	case manager != nil && manager.Servable(r.o.Now(), managerMinValidity) &&
		(rejected == nil || manager.Generation != rejected.Generation):
		return manager, nil // whatever else the manager's refresh said
	case errors.Is(err, token.ErrReauthRequired), errors.Is(err, token.ErrNotAuthorized):
		return nil, &token.ManagerError{Manager: t.Manager, Reauth: true, Err: err}
	case err == nil:
		err = fmt.Errorf("its access token has less than %s left", managerMinValidity)
	}
	return nil, &token.ManagerError{Manager: t.Manager, Err: err}
}
