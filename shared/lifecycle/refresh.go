package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/token"
)

// The refresh protocol (DESIGN section 5), used by the worker on schedule and
// by the api inline:
//
//  1. Read the token. If it has more than threshold+lead left, someone
//     already refreshed it: done.
//  2. Skip what must not be sent to Webex (Token.HeldBack, the one rule):
//     no tokens yet, reauth_required, config_error with an unchanged
//     client, backing off, or a refresh token that is missing or has
//     itself expired (that one is marked reauth_required, with no call).
//  3. Take a lease with a conditional write, only if nobody else holds an
//     unexpired one, nor one this instance has not yet seen expired for
//     TakeoverGrace (grants.go says why). Losers do not call Webex: the
//     api waits briefly for the winner's generation, the worker skips.
//  4. Call Webex outside any transaction, under WebexTimeout. The lease
//     outlives that timeout, so no one else calls meanwhile.
//  5. Commit in one store transaction only if generation is unchanged: new
//     tokens, generation+1, lease and errors cleared, the event into the
//     outbox. Then hand the event to the publisher. If the store does not
//     answer, the grant is kept and written as soon as it does, for as
//     long as the process lives (grants.go); meanwhile it is served.
//  6. On failure classify: grant rejected → reauth_required; client
//     rejected → config_error; transient → back off (honouring
//     Retry-After). Each is recorded with the lease released.
//
// A Service App (DESIGN 5a) goes through the same steps, but in step 4
// its pair is minted instead of refreshed when it has no usable one, an
// operator forced it, it waits for its manager, or Webex rejected its
// refresh token (mint.go); a lapsed refresh token is no reason to stop
// in step 2, and its manager needing re-authorization is recorded in
// step 6 as reauth_required naming the manager.
//
// A refresh runs detached from the caller's context, so a caller that gives
// up (the api's inline timeout) does not abort the Webex call: the refresh
// completes in the background and the next caller finds the new token.

// Outcome says what a Refresh call did.
type Outcome int

// Outcomes of Refresh.
const (
	// Fresh: the token had enough time left; nothing was done.
	Fresh Outcome = iota
	// Refreshed: this call (or the singleflight it joined) stored a new token.
	Refreshed
	// RefreshedElsewhere: another holder committed a new generation.
	RefreshedElsewhere
	// Skipped: another holder has the lease and the caller did not wait.
	Skipped
	// Failed: the refresh did not happen; the error says why.
	Failed
	// Pending: Webex answered, the store has not taken the grant yet
	// (ErrGrantPending); Result.Token is the token with it applied.
	Pending
)

func (o Outcome) String() string {
	switch o {
	case Fresh:
		return "fresh"
	case Refreshed:
		return "refreshed"
	case RefreshedElsewhere:
		return "refreshed_elsewhere"
	case Skipped:
		return "skipped"
	case Pending:
		return "pending"
	default:
		return "failed"
	}
}

// RefreshOptions is how a caller wants a refresh done.
type RefreshOptions struct {
	// Lead is added to the threshold: the worker refreshes early.
	Lead time.Duration
	// Trigger goes into the events.
	Trigger token.Trigger
	// WaitForOthers: when another holder has the lease, poll for its
	// result instead of skipping.
	WaitForOthers bool
	// Force refreshes a token that is not due, and one that is backing
	// off (an operator's "Refresh now"), unless its generation moves on
	// meanwhile: then someone else just refreshed it (RefreshedElsewhere),
	// and across all instances it is still one Webex call. What else
	// holds a token back (Token.HeldBack) still does. A forced refresh
	// of a Service App mints a new pair.
	Force bool
	// MintWithin: a Service App whose refresh token expires within it is
	// minted again even if its access token is not due (the worker passes
	// REFRESH_EXPIRY_WARNING).
	MintWithin time.Duration

	// asManager: the token is wanted as a Service App's manager; a
	// Service App is refused (ErrBadManager), never minted for it.
	asManager bool
}

// Result is the token after a Refresh (the new one, or the current one
// when nothing was stored) and what happened.
type Result struct {
	Token   *token.Token
	Outcome Outcome
}

// RefresherConfig configures a Refresher. Threshold and WebexTimeout are
// required; the other zero values take the protocol's own defaults.
type RefresherConfig struct {
	Store     token.Store
	Issuer    token.Issuer
	Publisher token.Publisher // may be nil: events then wait in the outbox
	Now       func() time.Time
	// Holder identifies this instance in leases.
	Holder string
	// Threshold: refresh when less than this is left (REFRESH_THRESHOLD).
	Threshold time.Duration
	// WebexTimeout bounds every Webex call (WEBEX_TIMEOUT).
	WebexTimeout time.Duration
	// BackoffBase and BackoffMax bound the transient-failure backoff.
	BackoffBase, BackoffMax time.Duration
	// PollInterval is how often a waiting loser re-reads the token.
	PollInterval time.Duration
	Logger       *slog.Logger
	// Activity, if set, records the service's own rotations, mints and
	// failures (New sets it from Deps).
	Activity activity.Recorder
	// OnRefresh, if set, is told about every Webex call (for metrics).
	OnRefresh func(RefreshReport)
}

// RefreshReport describes one Webex call of the protocol and its result.
type RefreshReport struct {
	Name    string
	Trigger token.Trigger
	// Grant is "refresh_token" or "authorization_code".
	Grant string
	// Result is refreshed, refreshed_elsewhere (another holder committed
	// first; this grant was discarded), reauth_required, config_error,
	// rejected (an authorization code or its client), transient or
	// store_error.
	Result       string
	WebexLatency time.Duration
	// Token is the token after the call, if known.
	Token *token.Token
}

func (r *Refresher) report(rep RefreshReport) {
	if r.o.OnRefresh != nil {
		r.o.OnRefresh(rep)
	}
}

// resultOf names the result of a Webex call for RefreshReport: the
// outcome's name on success, else the failure's class.
func resultOf(res Result, err error) string {
	switch {
	case err == nil:
		return res.Outcome.String()
	case errors.Is(err, ErrGrantPending):
		return "pending"
	case errors.Is(err, token.ErrReauthRequired):
		return "reauth_required"
	case errors.Is(err, token.ErrConfigError):
		return "config_error"
	case token.RejectedByWebex(err): // an authorization code or its client
		return "rejected"
	case errors.As(err, new(*token.BackoffError)), errors.As(err, new(*token.TransientError)):
		return "transient"
	default:
		return "store_error"
	}
}

// Refresher runs the refresh protocol. One per process; safe for
// concurrent use.
type Refresher struct {
	o      RefresherConfig
	group  singleflight.Group
	base   context.Context
	cancel context.CancelFunc

	// work counts refreshes and deliveries in flight, for Close. It is
	// only added to under mu while open, so that no Add races Close's Wait.
	mu     sync.Mutex
	closed bool
	work   sync.WaitGroup

	// deliveries ends DeliveryGrace after Close: event deliveries are
	// not bounded otherwise (the Publisher bounds each step), and their
	// events are safe in the outbox if cut off.
	deliveries     context.Context
	stopDeliveries context.CancelFunc
	// grants ends GrantGrace after Close: writes of grants in hand,
	// which nothing else ends (grants.go); calls, CallGrace after Close:
	// Webex calls in flight (callWebex).
	grants     context.Context
	stopGrants context.CancelFunc
	calls      context.Context
	stopCalls  context.CancelFunc

	// claims are the names whose lease a run of this process holds
	// (claim).
	claimMu sync.Mutex
	claims  map[string]chan struct{}

	// held are the grants in hand the store has not taken yet, by token
	// name; stale, other holders' leases seen expired (grants.go).
	heldMu  sync.Mutex
	held    map[string]*grantWrite
	staleMu sync.Mutex
	stale   map[string]staleLease
}

// DeliveryGrace is how long Close lets event deliveries in flight finish.
const DeliveryGrace = 2 * time.Second

// CallGrace is how long Close lets a Webex call in flight answer. It is
// shorter than GrantGrace, so that a grant answered late still has time
// to be written.
const CallGrace = 2 * time.Second

// NewRefresher returns a Refresher; Close it to abort refreshes in flight
// and release their leases.
func NewRefresher(o RefresherConfig) *Refresher {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Threshold <= 0 || o.WebexTimeout <= 0 {
		// Their defaults live in the configuration (REFRESH_THRESHOLD,
		// WEBEX_TIMEOUT), not restated here.
		panic("lifecycle: RefresherConfig needs Threshold and WebexTimeout")
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = 15 * time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 10 * time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	deliveries, stopDeliveries := context.WithCancel(context.Background())
	grants, stopGrants := context.WithCancel(context.Background())
	calls, stopCalls := context.WithCancel(context.Background())
	return &Refresher{o: o, base: base, cancel: cancel, deliveries: deliveries, stopDeliveries: stopDeliveries,
		grants: grants, stopGrants: stopGrants, calls: calls, stopCalls: stopCalls,
		claims: map[string]chan struct{}{}, held: map[string]*grantWrite{}, stale: map[string]staleLease{}}
}

// LeaseTTL is how long a lease lasts: longer than the Webex call it
// guards, with room for the commit.
func (r *Refresher) LeaseTTL() time.Duration { return r.o.WebexTimeout + 15*time.Second }

// Holder is this instance's name in leases.
func (r *Refresher) Holder() string { return r.o.Holder }

// Threshold is the configured refresh threshold.
func (r *Refresher) Threshold() time.Duration { return r.o.Threshold }

// Close aborts refreshes in flight, releases their leases and waits for
// them: a Webex call already sent gets CallGrace to answer, event
// deliveries DeliveryGrace, the writes of grants in hand GrantGrace.
func (r *Refresher) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	cutoff := time.AfterFunc(DeliveryGrace, r.stopDeliveries)
	callsCut := time.AfterFunc(CallGrace, r.stopCalls)
	lastWrite := time.AfterFunc(GrantGrace, r.stopGrants)
	r.work.Wait()
	cutoff.Stop()
	callsCut.Stop()
	lastWrite.Stop()
	r.stopDeliveries()
	r.stopCalls()
	r.stopGrants()
}

// track counts one piece of work for Close, unless Close has begun; the
// caller calls r.work.Done when it started and the work is done.
func (r *Refresher) track() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.work.Add(1)
	return true
}

// errShuttingDown is returned for work refused once Close has begun.
var errShuttingDown = fmt.Errorf("shutting down: %w", token.ErrUnavailable)

// Refresh refreshes the named token if it is due. Concurrent calls for one
// name in this process share one run. The run is detached from ctx: when ctx
// ends first, Refresh returns ctx's error and the run goes on.
func (r *Refresher) Refresh(ctx context.Context, name string, m RefreshOptions) (Result, error) {
	return r.refresh(ctx, name, nil, m)
}

// RefreshFrom is Refresh starting from a snapshot the caller just read
// (the worker's due query), which saves one store read per token.
func (r *Refresher) RefreshFrom(ctx context.Context, t *token.Token, m RefreshOptions) (Result, error) {
	return r.refresh(ctx, t.Name, t, m)
}

func (r *Refresher) refresh(ctx context.Context, name string, snapshot *token.Token, m RefreshOptions) (Result, error) {
	if err := token.ValidateName(name); err != nil {
		return Result{Outcome: Failed}, err
	}
	key := name
	if m.Force {
		key += "\x00force" // never answered by a run that found the token fresh
	}
	if m.asManager {
		key += "\x00manager"
	}
	ch := r.group.DoChan(key, func() (any, error) {
		if !r.track() {
			return Result{Outcome: Failed}, fmt.Errorf("refresh %s: %w", name, errShuttingDown)
		}
		defer r.work.Done()
		rctx, cancel := context.WithTimeout(r.base, r.serviceAppLeaseTTL()+10*time.Second)
		defer cancel()
		return r.run(rctx, name, snapshot, m)
	})
	select {
	case <-ctx.Done():
		return Result{Outcome: Failed}, ctx.Err()
	case v := <-ch:
		res, _ := v.Val.(Result)
		return res, v.Err
	}
}

// run is one pass of the protocol for name.
func (r *Refresher) run(ctx context.Context, name string, snapshot *token.Token, m RefreshOptions) (Result, error) {
	const maxRounds = 5
	var t *token.Token
	var forcedFrom int64 // the generation a forced refresh replaces
	for round := 0; round < maxRounds; round++ {
		if p := r.Pending(name); p != nil {
			// Webex answered already; a second call would send a
			// refresh token that may be spent.
			return Result{Token: p, Outcome: Pending}, fmt.Errorf("refresh %s: %w", name, ErrGrantPending)
		}
		if round == 0 && snapshot != nil {
			t = snapshot
		} else {
			var err error
			t, err = r.o.Store.Get(ctx, name)
			if err != nil {
				return Result{Outcome: Failed}, err // the store names the token
			}
		}
		now := r.o.Now()
		switch {
		case m.asManager && t.IsServiceApp():
			return Result{Token: t, Outcome: Failed}, fmt.Errorf("%w: %q is itself a Service App", token.ErrBadManager, name)
		case m.Force && round == 0:
			forcedFrom = t.Generation
		case m.Force && t.Generation != forcedFrom:
			return Result{Token: t, Outcome: RefreshedElsewhere}, nil
		case !m.Force && t.HasAccessToken() && !t.Due(now, r.o.Threshold+m.Lead) &&
			!t.NeedsMint(now, m.MintWithin) && !t.WaitsForManager():
			return Result{Token: t, Outcome: Fresh}, nil
		}
		if err := heldBack(t, now, m.Force); err != nil {
			switch {
			case errors.Is(err, token.ErrRefreshTokenLapsed):
				if marked := r.markReauth(ctx, t, err.Error(), m); marked != nil {
					t = marked
				}
			case errors.Is(err, token.ErrWaitingForManager) && r.managerBack(ctx, t):
				err = nil // minted below
			}
			if err != nil {
				return Result{Token: t, Outcome: Failed}, err
			}
		}
		if r.heldElsewhere(t, now) {
			if !m.WaitForOthers {
				return Result{Token: t, Outcome: Skipped}, nil
			}
			if res, done, err := r.waitForOther(ctx, t); done || err != nil {
				return res, err
			}
			continue
		}
		letGo, busy := r.claim(name)
		if busy != nil {
			// Another run of this process holds the lease: wait for it
			// as for another holder, then look again.
			if !m.WaitForOthers {
				return Result{Token: t, Outcome: Skipped}, nil
			}
			select {
			case <-ctx.Done():
				return Result{Token: t, Outcome: Failed}, ctx.Err()
			case <-busy:
			}
			continue
		}
		res, again, err := r.leaseAndCall(ctx, t, now, m)
		letGo()
		if again {
			continue // someone wrote in between: look again
		}
		return res, err
	}
	return Result{Token: t, Outcome: Skipped}, nil
}

// claim makes the calling run the only one of this process that may take
// name's lease and call Webex for it. A lease names the process, not the
// run, so without it two runs with different singleflight keys (an
// operator's forced refresh and a flow's inline one) would both take the
// lease and send the same refresh token, the second one spent. It returns
// the func that lets go, or, while another run holds the claim, a channel
// closed when that run lets go.
func (r *Refresher) claim(name string) (letGo func(), busy <-chan struct{}) {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	if ch, ok := r.claims[name]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	r.claims[name] = ch
	return func() {
		r.claimMu.Lock()
		delete(r.claims, name)
		r.claimMu.Unlock()
		close(ch)
	}, nil
}

// leaseAndCall takes t's lease and calls Webex under it, with the claim
// on t's name held; again reports that t changed in between.
func (r *Refresher) leaseAndCall(ctx context.Context, t *token.Token, now time.Time, m RefreshOptions) (res Result, again bool, err error) {
	if p := r.Pending(t.Name); p != nil {
		// The run that held the claim until now left a grant in hand.
		return Result{Token: p, Outcome: Pending}, false, fmt.Errorf("refresh %s: %w", t.Name, ErrGrantPending)
	}
	leased, err := r.o.Store.TryLease(ctx, t, token.Lease{Holder: r.o.Holder, Until: now.Add(r.leaseTTL(t))})
	if errors.Is(err, token.ErrConflict) {
		return Result{}, true, nil
	}
	if err != nil {
		if !errors.Is(err, token.ErrNotFound) {
			// The write may have landed with its answer lost (a
			// shutdown cancels it in flight): let go of it if so.
			r.release(t)
		}
		return Result{Token: t, Outcome: Failed}, false, err
	}
	res, err = r.callAndCommit(ctx, leased, m)
	return res, false, err
}

// heldBack is what holds t back from this refresh (Token.HeldBack), a
// backoff aside when forced.
func heldBack(t *token.Token, now time.Time, forced bool) error {
	if forced {
		return t.HeldBackFromForced(now)
	}
	return t.HeldBack(now)
}

// waitForOther polls until the lease holder commits a new generation
// (done), releases or loses its lease (not done: try again), or ctx ends.
func (r *Refresher) waitForOther(ctx context.Context, t *token.Token) (Result, bool, error) {
	tick := time.NewTicker(r.o.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return Result{Token: t, Outcome: Failed}, true, ctx.Err()
		case <-tick.C:
		}
		cur, err := r.o.Store.Get(ctx, t.Name)
		if err != nil {
			return Result{Token: t, Outcome: Failed}, true, err
		}
		if cur.Generation != t.Generation {
			return Result{Token: cur, Outcome: RefreshedElsewhere}, true, nil
		}
		if !r.heldElsewhere(cur, r.o.Now()) || cur.Status != t.Status {
			return Result{Token: cur}, false, nil
		}
	}
}

// callAndCommit holds the lease on t: it calls Webex and records the
// outcome. A Service App is minted when it needs a pair (mint.go), and
// also when Webex rejects its refresh token: no person is needed.
func (r *Refresher) callAndCommit(ctx context.Context, t *token.Token, m RefreshOptions) (Result, error) {
	if r.mints(t, m) {
		return r.mintAndCommit(ctx, t, m)
	}
	g, latency, err := r.callWebex(ctx, func(ctx context.Context) (token.Grant, error) {
		return r.o.Issuer.Refresh(ctx, token.Client{ID: t.ClientID, Secret: t.ClientSecret, RedirectURI: t.RedirectURI}, t.RefreshToken)
	})
	if t.IsServiceApp() && errors.Is(err, token.ErrGrantRejected) {
		r.o.Logger.Warn("webex rejected a Service App's refresh token; minting a new pair", "token", t.Name, "error", err.Error())
		r.report(RefreshReport{Name: t.Name, Trigger: m.Trigger, Grant: "refresh_token", Result: "rejected", WebexLatency: latency, Token: t})
		return r.mintAndCommit(ctx, t, m)
	}
	res, err := r.afterCall(ctx, t, g, err, m)
	r.report(RefreshReport{Name: t.Name, Trigger: m.Trigger, Grant: "refresh_token", Result: resultOf(res, err), WebexLatency: latency, Token: res.Token})
	return res, err
}

// callWebex makes one Webex call under WebexTimeout. An answer without an
// access token or expiry is a transient failure; the grant is returned
// all the same, since its refresh token may be new.
//
// The call is not cut when ctx ends or Close begins, only CallGrace after
// Close: Webex may have spent the refresh token or code sent already, and
// an answer thrown away is a grant lost. The grant's write then has what
// is left of GrantGrace.
func (r *Refresher) callWebex(ctx context.Context, call func(context.Context) (token.Grant, error)) (token.Grant, time.Duration, error) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(r.calls, cancel)()
	start := time.Now()
	g, err := call(cctx) // the Issuer bounds it by WEBEX_TIMEOUT (token.Issuer)
	latency := time.Since(start)
	if err == nil && (g.AccessToken == "" || g.ExpiresIn <= 0) {
		err = &token.TransientError{Err: errors.New("webex answered without an access token or expiry")}
	}
	return g, latency, err
}

// afterCall records the outcome of the Webex call made under t's lease.
func (r *Refresher) afterCall(ctx context.Context, t *token.Token, g token.Grant, err error, m RefreshOptions) (Result, error) {
	var rotated *token.Grant
	if err != nil && g.RefreshToken != "" && g.RefreshToken != t.RefreshToken {
		// Unusable answer, but Webex may have retired the refresh token
		// we sent: keep the new one or re-authorization looms.
		rotated = &g
	}
	if err != nil {
		if r.base.Err() != nil && rotated == nil {
			// Shutting down: not a failure of the token, just let go.
			r.release(t)
			return Result{Token: t, Outcome: Failed}, fmt.Errorf("refresh %s: %w", t.Name, token.ErrUnavailable)
		}
		r.o.Logger.Warn("webex refresh failed", "token", t.Name, "error", err.Error(), "permanent", token.IsPermanent(err))
		return r.recordFailure(ctx, t, err, m, rotated)
	}
	saved, err := r.storeGrant(ctx, t, g, m.Trigger, func(cur *token.Token) error {
		if cur.Generation != t.Generation {
			return token.ErrConflict
		}
		return nil
	}, nil)
	switch {
	case errors.Is(err, ErrGrantPending):
		return Result{Token: saved, Outcome: Pending}, err
	case errors.Is(err, token.ErrConflict):
		r.o.Logger.Warn("another instance committed first; grant discarded", "token", t.Name, "generation", t.Generation)
		dctx, cancel := detached(ctx)
		defer cancel()
		cur, gerr := r.o.Store.Get(dctx, t.Name)
		if gerr != nil {
			return Result{Token: t, Outcome: Failed}, gerr
		}
		return Result{Token: cur, Outcome: RefreshedElsewhere}, nil
	case err != nil:
		return Result{Token: t, Outcome: Failed}, err
	}
	return Result{Token: saved, Outcome: Refreshed}, nil
}

// commitTimeout bounds a bookkeeping write that must land whatever
// happens to the caller: storing a grant once Webex answered, recording a
// failure, releasing a lease.
const commitTimeout = 5 * time.Second

// detached returns a context for such a write: free of ctx's
// cancellation (a shutdown, a caller who gave up), bounded by commitTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
}

// applyGrant stores a Webex answer as the next generation and clears every
// trace of earlier failures. A grant without a refresh token keeps the old one.
func applyGrant(cur *token.Token, g token.Grant, now time.Time) {
	cur.AccessToken = g.AccessToken
	cur.AccessExpires = now.Add(g.ExpiresIn)
	if g.RefreshToken != "" {
		cur.RefreshToken = g.RefreshToken
	}
	if g.RefreshExpiresIn > 0 {
		cur.RefreshExpires = now.Add(g.RefreshExpiresIn)
	}
	cur.LastRefresh = now
	cur.Generation++
	cur.Lease = token.Lease{}
	cur.Status = token.StatusActive
	cur.LastError = nil
	cur.Failures = 0
	cur.ConfigFingerprint = ""
	cur.FailureReported = nil
	cur.ManagerGeneration = nil
	switch org := token.OrgOfAccessToken(cur.AccessToken); {
	case cur.IsServiceApp():
		cur.OrgID = cur.TargetOrgID
	case org != "":
		cur.OrgID = org
	}
}

// shortLivedBackoff is when to try again after a grant: immediately
// (zero) unless Webex handed out a token shorter than the threshold, when
// refreshing again at once would loop; then wait half its lifetime.
func (r *Refresher) shortLivedBackoff(g token.Grant, now time.Time) time.Time {
	if g.ExpiresIn >= r.o.Threshold {
		return time.Time{}
	}
	return now.Add(max(g.ExpiresIn/2, r.o.BackoffBase))
}

// recordFailure classifies err and stores it with the lease released,
// unless someone else has moved the token on meanwhile. rotated, if not
// nil, is an unusable answer whose new refresh token is stored too.
func (r *Refresher) recordFailure(ctx context.Context, t *token.Token, cause error, m RefreshOptions, rotated *token.Grant) (Result, error) {
	var events []token.Event
	var result error
	apply := func(cur *token.Token) ([]token.Event, error) {
		if cur.Generation != t.Generation {
			return nil, token.ErrConflict
		}
		now := r.o.Now()
		events = nil
		if cur.Lease.Holder == r.o.Holder {
			cur.Lease = token.Lease{}
		}
		if rotated != nil {
			cur.RefreshToken = rotated.RefreshToken
			if rotated.RefreshExpiresIn > 0 {
				cur.RefreshExpires = now.Add(rotated.RefreshExpiresIn)
			}
		}
		le := &token.LastError{At: now, Message: cause.Error()}
		var te *token.TransientError
		var me *token.ManagerError
		switch {
		case errors.As(cause, &me) && me.Reauth:
			// A Service App whose manager must be authorized again: no
			// person acts on the Service App itself.
			le.Permanent = true
			cur.ManagerGeneration = me.GenerationCopy()
			if cur.Status != token.StatusReauthRequired {
				cur.Status = token.StatusReauthRequired
				e := token.NewEvent(token.EventReauthorizationRequired, cur, m.Trigger, now)
				e.Message = me.Summary()
				events = append(events, e)
			}
			result = fmt.Errorf("mint %s: %w", t.Name, cause)
		case errors.Is(cause, token.ErrGrantRejected):
			le.Permanent = true
			if cur.Status != token.StatusReauthRequired {
				cur.Status = token.StatusReauthRequired
				events = append(events, token.NewEvent(token.EventReauthorizationRequired, cur, m.Trigger, now))
			}
			result = fmt.Errorf("refresh %s: %w: %w", t.Name, token.ErrReauthRequired, cause)
		case errors.Is(cause, token.ErrClientRejected), errors.Is(cause, token.ErrBadManager), errors.Is(cause, token.ErrNoClientConfig):
			le.Permanent = true
			cur.Status = token.StatusConfigError
			cur.ConfigFingerprint = t.ClientFingerprint()
			events = append(events, r.failedOnce(cur, m, now)...)
			result = fmt.Errorf("refresh %s: %w: %w", t.Name, token.ErrConfigError, cause)
		default:
			if cur.WaitsForManager() {
				// The manager is back: what failed now is no longer it.
				cur.Status, cur.ManagerGeneration = token.StatusPending, nil
				if cur.HasAccessToken() {
					cur.Status = token.StatusActive
				}
			}
			cur.Failures++
			wait := r.backoff(cur.Failures, cur.Remaining(now))
			if errors.As(cause, &te) && te.RetryAfter > wait {
				wait = te.RetryAfter
			}
			cur.NextAttempt = now.Add(wait)
			if cur.Remaining(now) < r.o.Threshold {
				events = append(events, r.failedOnce(cur, m, now)...)
			}
			result = &token.BackoffError{Until: cur.NextAttempt, Err: fmt.Errorf("refresh %s: %w", t.Name, cause)}
		}
		cur.LastError = le
		return events, nil
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	saved, err := r.o.Store.Update(ctx, t.Name, apply)
	if errors.Is(err, token.ErrConflict) {
		cur, gerr := r.o.Store.Get(ctx, t.Name)
		if gerr == nil {
			return Result{Token: cur, Outcome: RefreshedElsewhere}, nil
		}
		return Result{Token: t, Outcome: Failed}, gerr
	}
	if err != nil {
		r.o.Logger.Error("refresh failure could not be recorded", "token", t.Name, "error", err.Error())
		return Result{Token: t, Outcome: Failed}, fmt.Errorf("refresh %s: %w", t.Name, cause)
	}
	r.recordFailureActivity(ctx, saved, events, cause)
	r.deliver(events)
	return Result{Token: saved, Outcome: Failed}, result
}

// recordSelf writes an activity entry of the service itself.
func (r *Refresher) recordSelf(ctx context.Context, action activity.Action, name string, outcome activity.Outcome, detail string) {
	recordActivity(ctx, r.o.Activity, activity.Entry{At: r.o.Now(), ActorKind: activity.ByService, Actor: r.o.Holder,
		Action: action, Token: name, Outcome: outcome, Detail: detail})
}

// recordFailureActivity writes the activity entry of a failed refresh: the
// failure's class and Webex's message, and whether a person must now
// authorize again. A transient failure that published nothing (the
// token still has time) is left to the log.
func (r *Refresher) recordFailureActivity(ctx context.Context, t *token.Token, events []token.Event, cause error) {
	for _, e := range events {
		switch e.Type {
		case token.EventReauthorizationRequired:
			r.recordSelf(ctx, activity.ReauthRequired, t.Name, activity.Failed, failureDetail(cause))
		case token.EventRefreshFailed:
			r.recordSelf(ctx, activity.RefreshFailed, t.Name, activity.Failed, failureDetail(cause))
		}
	}
}

// failureDetail is a failure's class and message for the activity record.
func failureDetail(cause error) string {
	class := "transient"
	switch {
	case errors.Is(cause, token.ErrGrantRejected), errors.Is(cause, token.ErrReauthRequired):
		class = "grant rejected"
	case errors.Is(cause, token.ErrClientRejected), errors.Is(cause, token.ErrBadManager), errors.Is(cause, token.ErrNoClientConfig):
		class = "client rejected"
	}
	return errorDetail(fmt.Errorf("%s: %w", class, cause))
}

// failedOnce returns token.refresh_failed unless it was already published
// for this generation.
func (r *Refresher) failedOnce(cur *token.Token, m RefreshOptions, now time.Time) []token.Event {
	if cur.FailureReported != nil && *cur.FailureReported == cur.Generation {
		return nil
	}
	g := cur.Generation
	cur.FailureReported = &g
	return []token.Event{token.NewEvent(token.EventRefreshFailed, cur, m.Trigger, now)}
}

// backoff is exponential in the number of consecutive failures, but never
// so long that a token with little time left is not retried before it
// becomes unusable.
func (r *Refresher) backoff(failures int, remaining time.Duration) time.Duration {
	d := r.o.BackoffBase
	for i := 1; i < failures && d < r.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.o.BackoffMax)
	if limit := remaining / 4; d > limit {
		d = max(limit, r.o.BackoffBase)
	}
	return d
}

// markReauth records, without calling Webex, that t's refresh token is
// unusable: reauth_required and its event, once. It returns the token as
// stored, or nil if it was not (someone else moved it on, or the store
// failed: the next attempt tries again).
func (r *Refresher) markReauth(ctx context.Context, t *token.Token, why string, m RefreshOptions) *token.Token {
	ctx, cancel := detached(ctx)
	defer cancel()
	var events []token.Event
	saved, err := r.o.Store.Update(ctx, t.Name, func(cur *token.Token) ([]token.Event, error) {
		if cur.Generation != t.Generation || cur.Status == token.StatusReauthRequired {
			return nil, token.ErrConflict
		}
		now := r.o.Now()
		cur.Status = token.StatusReauthRequired
		cur.LastError = &token.LastError{At: now, Message: why, Permanent: true}
		events = []token.Event{token.NewEvent(token.EventReauthorizationRequired, cur, m.Trigger, now)}
		return events, nil
	})
	if err != nil {
		return nil
	}
	r.o.Logger.Warn("token needs re-authorization", "token", t.Name, "reason", why)
	r.recordSelf(ctx, activity.ReauthRequired, t.Name, activity.Failed, why)
	r.deliver(events)
	return saved
}

// release gives up this instance's lease on t without recording anything.
func (r *Refresher) release(t *token.Token) {
	ctx, cancel := detached(r.base)
	defer cancel()
	_, err := r.o.Store.Update(ctx, t.Name, func(cur *token.Token) ([]token.Event, error) {
		if cur.Lease.Holder != r.o.Holder {
			return nil, token.ErrConflict
		}
		cur.Lease = token.Lease{}
		return nil, nil
	})
	if err != nil && !errors.Is(err, token.ErrConflict) {
		r.o.Logger.Warn("lease not released; it expires by itself", "token", t.Name, "error", err.Error())
	}
}

// deliver hands committed events to the publisher without holding up the
// caller; Close waits for it.
func (r *Refresher) deliver(events []token.Event) {
	if r.o.Publisher == nil || len(events) == 0 || !r.track() {
		return // after Close began, the events wait in the outbox
	}
	go func() {
		defer r.work.Done()
		r.o.Publisher.Deliver(r.deliveries, events)
	}()
}
