package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// Fault kinds.
const (
	faultKillAPI    = "sigkill-api"
	faultKillWorker = "sigkill-worker"
	faultTermAPI    = "sigterm-api"
	faultTermWorker = "sigterm-worker"
	faultFirestore  = "firestore-unreachable"
	faultPubSub     = "pubsub-unreachable"
	faultWebex5xx   = "webex-5xx"
	faultWebex429   = "webex-429"
	faultWebexSlow  = "webex-slow"
	faultWebexReset = "webex-reset"
	faultWebexLost  = "webex-lost-answer"
	// faultGrantCut: Firestore cut the moment Webex answers a refresh,
	// for grantCutFor: the grant is in hand and cannot be stored.
	faultGrantCut     = "firestore-cut-after-grant"
	faultWarmup       = 10 * time.Second // no fault before this
	faultTail         = 5 * time.Second  // margin after the last recovery deadline
	faultOverlapShare = 4                // one fault in this many starts during the previous one
)

// plannedFault is one fault of the schedule: what, when (after t0), for
// how long, on which instance. Process faults never hit the first api
// and the first worker: they live through the whole run, so that
// invariant 6 always has long-lived processes to test (as a service
// scaled on Cloud Run has some instances that live long and some that
// come and go).
type plannedFault struct {
	Kind   string
	At     time.Duration
	For    time.Duration
	Target int    // instance index for process faults
	Param  string // status code, Retry-After, ...
}

// kindWeights: how often each kind is drawn.
var kindWeights = []struct {
	kind   string
	weight int
}{
	{faultKillAPI, 2}, {faultKillWorker, 2}, {faultTermAPI, 2}, {faultTermWorker, 2},
	{faultFirestore, 3}, {faultPubSub, 3},
	{faultWebex5xx, 2}, {faultWebex429, 2}, {faultWebexSlow, 2}, {faultWebexReset, 2}, {faultWebexLost, 1},
}

// The Firestore cut after a grant: it is armed at its planned time and
// starts with the next refresh grant (or after grantCutArm without one),
// once per started grantCutEvery of a run long enough to recover from it
// (grantCutMinRun); no other fault overlaps it.
const (
	grantCutFor    = 60 * time.Second
	grantCutArm    = 30 * time.Second
	grantCutEvery  = 20 * time.Minute
	grantCutMinRun = 3 * time.Minute
)

// fleet is how many instances of each binary a profile runs.
type fleet struct{ APIs, Workers int }

func (c *campaign) fleet() fleet { return fleet{c.s.APIs, c.s.Workers} }

var defaultFleet = fleet{defaultAPIs, defaultWorkers}

// isFirestoreFault says whether kind makes Firestore unreachable.
func isFirestoreFault(kind string) bool { return kind == faultFirestore || kind == faultGrantCut }

// isProcessFault says whether kind ends a process.
func isProcessFault(kind string) bool {
	switch kind {
	case faultKillAPI, faultKillWorker, faultTermAPI, faultTermWorker:
		return true
	}
	return false
}

// Invariant 4's bounds, counted from the clocks recoveryClocks gives:
// every token with a valid grant active within two sweep intervals, and
// servable within that plus the protocol's backoff floor (which the
// configuration cannot compress); the outbox empty within one sweep
// interval, plus the period of the health samples that measure it.
const (
	activeWithin   = 2 * sweepInterval
	servableWithin = 2*sweepInterval + backoffFloor
	outboxWithin   = sweepInterval + time.Second
)

// recoveryClocks are when invariant 4's clocks start after a fault of kind
// that started at start and ended at end: at its end, except that after a
// SIGKILL the tokens' clock starts when the dead process's leases have
// expired, and after any process fault the outbox's clock starts when
// the events it left behind are old enough for a sweep to publish them
// (the outbox settle time).
func recoveryClocks(kind string, start, end time.Time) (tokens, outbox time.Time) {
	tokens, outbox = end, end
	switch kind {
	case faultKillAPI, faultKillWorker:
		// The dead process's leases expire, and are taken over once
		// seen expired for the takeover grace.
		tokens = later(end, start.Add(leaseTTL)).Add(takeoverGrace)
	case faultGrantCut:
		// Leases taken before the cut expired during it: whatever no
		// holder stores at once is taken over after the grace.
		tokens = end.Add(takeoverGrace)
	}
	if isProcessFault(kind) {
		outbox = later(end, start.Add(outboxSettle))
	}
	return tokens, outbox
}

// recoveredBy is when invariant 4 wants everything whole after a fault.
func recoveredBy(kind string, start, end time.Time) time.Time {
	tokens, outbox := recoveryClocks(kind, start, end)
	return later(tokens.Add(servableWithin), outbox.Add(outboxWithin))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// finalParam marks the last Pub/Sub outage of a schedule.
const finalParam = "final"

// lateOnboardingRoom is how long after the final Pub/Sub outage begins
// the late tokens are onboarded, before any other fault joins it.
const lateOnboardingRoom = 3 * time.Second

// planFaults draws the schedule of one profile from seed: faults one
// after the other with gaps, some overlapping the previous one, and last
// a Pub/Sub outage longer than a publish's timeout with another fault in
// its middle. Early in that outage, an administrator onboards the late
// tokens, whose events cannot be delivered then: the recovery after the
// last fault (invariant 4) always covers both the tokens and an outbox
// with events in it.
func planFaults(seed uint64, stream uint64, d time.Duration, n fleet) []plannedFault {
	rng := rand.New(rand.NewPCG(seed, stream))
	var t0 time.Time
	// until is when the fault f has recovered, after t0; for a grant cut,
	// counting the wait for its grant.
	until := func(f plannedFault) time.Duration {
		at := f.At
		if f.Kind == faultGrantCut {
			at += grantCutArm
		}
		return recoveredBy(f.Kind, t0.Add(at), t0.Add(at+f.For)).Sub(t0)
	}
	fits := func(f plannedFault, horizon time.Duration) bool { return until(f)+faultTail <= horizon }
	final := plannedFault{Kind: faultPubSub, For: seconds(rng, 14, 18), Param: finalParam}
	final.At = max(faultWarmup, d-faultTail-recoveredBy(final.Kind, t0, t0.Add(final.For)).Sub(t0))

	// The grant cuts first, spread over the run; the other faults keep
	// out of their way.
	var cuts []plannedFault
	if d >= grantCutMinRun {
		k := 1 + int((d-grantCutMinRun)/grantCutEvery)
		for i := range k {
			f := plannedFault{Kind: faultGrantCut, For: grantCutFor,
				At: faultWarmup + time.Duration(i)*(final.At-faultWarmup)/time.Duration(k) + seconds(rng, 0, 10)}
			if f.At+grantCutArm+f.For+3*time.Second <= final.At && fits(f, d) {
				cuts = append(cuts, f)
			}
		}
	}
	clash := func(f plannedFault) (time.Duration, bool) {
		for _, c := range cuts {
			if f.At <= until(c)+3*time.Second && c.At <= until(f)+3*time.Second {
				return until(c) + 3*time.Second, true
			}
		}
		return 0, false
	}

	out := append([]plannedFault(nil), cuts...)
	at := faultWarmup
	lost := 0
	for misses := 0; misses < 20; {
		f := drawFault(rng, at, kindWeights, n)
		if f.Kind == faultWebexLost && lost >= 1+int(d/(3*time.Minute)) {
			continue // each lost answer spends a token's grant for good: keep them rare
		}
		if after, ok := clash(f); ok {
			at = after + seconds(rng, 0, 5)
			continue
		}
		if !fits(f, d) || f.At+f.For+3*time.Second > final.At {
			misses++ // a kind that needs less time to recover may still fit
			continue
		}
		if f.Kind == faultWebexLost {
			lost++
		}
		out = append(out, f)
		if rng.IntN(faultOverlapShare) == 0 {
			at = f.At + time.Duration(rng.Int64N(int64(f.For)+1)) // everything at once
		} else {
			at = f.At + f.For + seconds(rng, 3, 10)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	out = append(out, final)
	companions := []struct {
		kind   string
		weight int
	}{
		// No process fault: one that stops an instance after the late
		// tokens' events were committed would let them wait for the
		// outbox settle time as possible orphans.
		{faultWebex5xx, 1}, {faultWebex429, 1}, {faultWebexSlow, 1}, {faultWebexReset, 1}, {faultFirestore, 2},
	}
	for range 20 {
		f := drawFault(rng, final.At+lateOnboardingRoom+time.Duration(rng.Int64N(int64(final.For/3))), companions, n)
		if f.At+f.For <= final.At+final.For && fits(f, d) {
			out = append(out, f)
			break
		}
	}
	return out
}

// drawFault draws a fault of one of kinds, by weight, starting at at.
func drawFault(rng *rand.Rand, at time.Duration, kinds []struct {
	kind   string
	weight int
}, fl fleet) plannedFault {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := rng.IntN(total)
	var kind string
	for _, k := range kinds {
		if n < k.weight {
			kind = k.kind
			break
		}
		n -= k.weight
	}
	f := plannedFault{Kind: kind, At: at}
	switch kind {
	case faultKillAPI, faultTermAPI:
		f.Target, f.For = 1+rng.IntN(fl.APIs-1), seconds(rng, 1, 4)
	case faultKillWorker, faultTermWorker:
		f.Target, f.For = 1+rng.IntN(fl.Workers-1), seconds(rng, 1, 4)
	case faultFirestore:
		f.For = seconds(rng, 3, 12)
	case faultPubSub:
		f.For = seconds(rng, 4, 15)
	case faultWebex5xx:
		f.For, f.Param = seconds(rng, 2, 9), []string{"500", "502", "503"}[rng.IntN(3)]
	case faultWebex429:
		f.For, f.Param = seconds(rng, 2, 9), []string{"1", "3", "5"}[rng.IntN(3)]
	case faultWebexSlow, faultWebexReset:
		f.For = seconds(rng, 2, 8)
	case faultWebexLost:
		f.For = webexTimeout
	}
	return f
}

func seconds(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo)*time.Second + time.Duration(rng.Int64N(int64(hi-lo)*int64(time.Second)))
}

// fault is a fault as it happened.
type fault struct {
	plannedFault
	Target string    // instance name, for process faults
	Start  time.Time // when it was injected
	// End is when it stopped: the proxy restored, the fake well again,
	// the instance restarted and ready.
	End time.Time
	// Note says what happened beyond the plan (exit status after SIGTERM,
	// a restart that failed).
	Note string
	// Granted is the refresh grant a grant cut followed (nil if none).
	Granted *webexfake.Granted
}

// faultLog records the faults of one profile.
type faultLog struct {
	mu   sync.Mutex
	list []*fault
}

func (l *faultLog) add(f *fault) {
	l.mu.Lock()
	l.list = append(l.list, f)
	l.mu.Unlock()
}

func (l *faultLog) set(f *fault, fn func(*fault)) {
	l.mu.Lock()
	fn(f)
	l.mu.Unlock()
}

func (l *faultLog) all() []fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]fault, len(l.list))
	for i, f := range l.list {
		out[i] = *f
	}
	return out
}

// runFaults injects the schedule, relative to t0, until it is done or ctx
// ends. Each fault runs in its own goroutine so that faults can overlap;
// faults of the same resource (the same instance, the same proxy, the
// fake) are serialized by a lock per resource.
func (c *campaign) runFaults(ctx context.Context, t0 time.Time, wg *sync.WaitGroup) {
	locks := map[string]*sync.Mutex{}
	lockOf := func(key string) *sync.Mutex {
		if locks[key] == nil {
			locks[key] = &sync.Mutex{}
		}
		return locks[key]
	}
	for _, pf := range c.plan {
		key := pf.Kind
		switch pf.Kind {
		case faultFirestore, faultGrantCut:
			key = "firestore"
		case faultKillAPI, faultTermAPI:
			key = fmt.Sprintf("api-%d", pf.Target)
		case faultKillWorker, faultTermWorker:
			key = fmt.Sprintf("worker-%d", pf.Target)
		case faultWebex5xx, faultWebex429, faultWebexSlow, faultWebexReset, faultWebexLost:
			key = "webex"
		}
		mu := lockOf(key)
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(t0.Add(pf.At))):
			}
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			c.inject(ctx, pf)
		})
	}
}

// inject performs one fault and undoes it after its duration.
func (c *campaign) inject(ctx context.Context, pf plannedFault) {
	f := &fault{plannedFault: pf, Start: time.Now()}
	c.faults.add(f)
	hold := func() {
		select {
		case <-ctx.Done():
		case <-time.After(pf.For):
		}
	}
	switch pf.Kind {
	case faultKillAPI, faultKillWorker, faultTermAPI, faultTermWorker:
		var p *proc
		if pf.Kind == faultKillAPI || pf.Kind == faultTermAPI {
			p = c.apis()[pf.Target]
		} else {
			p = c.workers()[pf.Target]
		}
		sig := syscall.SIGKILL
		if pf.Kind == faultTermAPI || pf.Kind == faultTermWorker {
			sig = syscall.SIGTERM
		}
		c.faults.set(f, func(f *fault) { f.Target = p.Name })
		// The grace after SIGTERM is Cloud Run's 10 s; invariant 7 checks
		// that the process used no more and exited 0.
		l := p.Signal(sig, 12*time.Second)
		hold()
		_, err := p.Start(context.WithoutCancel(ctx))
		c.faults.set(f, func(f *fault) {
			f.End = time.Now()
			if l != nil {
				s := p.snapshot(l)
				f.Note = fmt.Sprintf("%s-%d ended after %v: %s", p.Name, s.N, s.Ended.Sub(s.ToldAt).Round(time.Millisecond), s.Exit)
			}
			if err != nil {
				f.Note += "; restart failed: " + err.Error()
			}
		})
		return
	case faultFirestore:
		c.fsProxy.Cut()
		hold()
		c.fsProxy.Heal()
	case faultGrantCut:
		if !c.cutAfterGrant(ctx, f) {
			return
		}
		hold()
		c.fsProxy.Heal()
	case faultPubSub:
		c.psProxy.Cut()
		hold()
		c.psProxy.Heal()
	case faultWebex5xx:
		status := 500
		fmt.Sscan(pf.Param, &status)
		c.webexFails(webexfake.ServerError(status), hold)
	case faultWebex429:
		c.webexFails(webexfake.RateLimited(pf.Param), hold)
	case faultWebexSlow:
		c.fake.SetLatency(webexTimeout + 3*time.Second)
		hold()
		c.fake.SetLatency(0)
	case faultWebexReset:
		c.webexFails(webexfake.Fault{Kind: webexfake.FaultReset}, hold)
	case faultWebexLost:
		c.fake.FailNext(1, webexfake.Fault{Kind: webexfake.FaultLostAnswer})
		hold() // the next call takes it and waits WEBEX_TIMEOUT for nothing
	}
	c.faults.set(f, func(f *fault) { f.End = time.Now() })
}

// webexFails makes the token endpoint and the Service Apps endpoint show
// ft while hold lasts.
func (c *campaign) webexFails(ft webexfake.Fault, hold func()) {
	c.fake.FailAlways(ft)
	c.fake.FailMintAlways(ft)
	hold()
	c.fake.ClearFaults()
	c.fake.ClearMintFaults()
}

// runRevocations revokes the revoke group's integrations at their times.
func (c *campaign) runRevocations(ctx context.Context, t0 time.Time, wg *sync.WaitGroup) {
	for _, t := range c.tokens {
		if t.RevokeAfter == 0 {
			continue
		}
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(t0.Add(t.RevokeAfter))):
			}
			c.fake.RevokeClientGrants(t.ClientID)
			c.revokedMu.Lock()
			t.Revoked = time.Now()
			c.revokedMu.Unlock()
		})
	}
}
