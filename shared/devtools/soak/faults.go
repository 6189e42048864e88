package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// Fault kinds.
const (
	faultKillAPI      = "sigkill-api"
	faultKillWorker   = "sigkill-worker"
	faultTermAPI      = "sigterm-api"
	faultTermWorker   = "sigterm-worker"
	faultFirestore    = "firestore-unreachable"
	faultPubSub       = "pubsub-unreachable"
	faultWebex5xx     = "webex-5xx"
	faultWebex429     = "webex-429"
	faultWebexSlow    = "webex-slow"
	faultWebexReset   = "webex-reset"
	faultWebexLost    = "webex-lost-answer"
	faultWarmup       = 10 * time.Second // no fault before this
	faultTail         = 5 * time.Second  // margin after the last recovery deadline
	faultOverlapShare = 4                // one fault in this many starts during the previous one
)

// plannedFault is one fault of the schedule: what, when (after t0), for
// how long, on which instance.
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

// isProcessFault says whether kind ends a process.
func isProcessFault(kind string) bool {
	switch kind {
	case faultKillAPI, faultKillWorker, faultTermAPI, faultTermWorker:
		return true
	}
	return false
}

// recoveryDeadlines are when, by invariant 4, the service must be whole
// again after a fault of kind that started at start and ended at end:
// every token with a valid grant active and servable within two sweep
// intervals (plus the protocol's backoff floor, which the configuration
// cannot compress), and the outbox empty within one sweep interval.
// After a SIGKILL the clock starts when the dead process's lease has
// expired; after a process fault, when its orphaned events are old enough
// for a sweep to publish them (the outbox settle time).
func recoveryDeadlines(kind string, start, end time.Time) (tokens, outbox time.Time) {
	tokensFrom, outboxFrom := end, end
	if kind == faultKillAPI || kind == faultKillWorker {
		tokensFrom = later(end, start.Add(leaseTTL))
	}
	if isProcessFault(kind) {
		outboxFrom = later(end, start.Add(outboxSettle))
	}
	return tokensFrom.Add(2*sweepInterval + backoffFloor), outboxFrom.Add(sweepInterval)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// planFaults draws the schedule of one profile from seed: faults one
// after the other with gaps, some overlapping the previous one, each
// placed so that its recovery deadline falls inside the run.
func planFaults(seed uint64, stream uint64, d time.Duration) []plannedFault {
	rng := rand.New(rand.NewPCG(seed, stream))
	total := 0
	for _, k := range kindWeights {
		total += k.weight
	}
	var out []plannedFault
	at := faultWarmup
	lost := 0
	for misses := 0; misses < 20; {
		n := rng.IntN(total)
		var kind string
		for _, k := range kindWeights {
			if n < k.weight {
				kind = k.kind
				break
			}
			n -= k.weight
		}
		f := plannedFault{Kind: kind, At: at}
		switch kind {
		case faultKillAPI, faultTermAPI:
			f.Target, f.For = rng.IntN(apiInstances), seconds(rng, 1, 4)
		case faultKillWorker, faultTermWorker:
			f.Target, f.For = rng.IntN(workerInstances), seconds(rng, 1, 4)
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
			// One lost answer spends one token's refresh token for good
			// (rotation is on): rare, so the population stays mostly alive.
			if lost >= 1+int(d/(3*time.Minute)) {
				continue
			}
			f.For = webexTimeout
		}
		var t0 time.Time
		tokens, outbox := recoveryDeadlines(kind, t0.Add(f.At), t0.Add(f.At+f.For))
		if later(tokens, outbox).Sub(t0)+faultTail > d {
			misses++ // a kind that needs less time to recover may still fit
			continue
		}
		if kind == faultWebexLost {
			lost++
		}
		out = append(out, f)
		if rng.IntN(faultOverlapShare) == 0 {
			at = f.At + time.Duration(rng.Int64N(int64(f.For)+1)) // everything at once
		} else {
			at = f.At + f.For + seconds(rng, 3, 10)
		}
	}
	return out
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
		p := c.workers()[min(pf.Target, len(c.workers())-1)]
		sig := syscall.SIGKILL
		if pf.Kind == faultKillAPI || pf.Kind == faultTermAPI {
			p = c.apis()[pf.Target]
		}
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
		c.fsProxy.Restore()
	case faultPubSub:
		c.psProxy.Cut()
		hold()
		c.psProxy.Restore()
	case faultWebex5xx:
		status := 500
		fmt.Sscan(pf.Param, &status)
		c.fake.FailAlways(webexfake.ServerError(status))
		hold()
		c.fake.ClearFaults()
	case faultWebex429:
		c.fake.FailAlways(webexfake.RateLimited(pf.Param))
		hold()
		c.fake.ClearFaults()
	case faultWebexSlow:
		c.fake.SetLatency(webexTimeout + 3*time.Second)
		hold()
		c.fake.SetLatency(0)
	case faultWebexReset:
		c.fake.FailAlways(webexfake.Fault{Kind: webexfake.FaultReset})
		hold()
		c.fake.ClearFaults()
	case faultWebexLost:
		c.fake.FailNext(1, webexfake.Fault{Kind: webexfake.FaultLostAnswer})
		hold() // the next call takes it and waits WEBEX_TIMEOUT for nothing
	}
	c.faults.set(f, func(f *fault) { f.End = time.Now() })
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
