package passphrase

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"
)

// ErrBusy reports a check that was not run: the queue for its caller's
// priority, or the caller's share of it, was full, or it waited longer
// than the queue allows. Answer it with 429 and Retry-After.
var ErrBusy = errors.New("passphrase checks are busy")

// Priority orders queued checks: a lower value runs first.
type Priority uint8

// The priorities, from first to last.
const (
	// Vouched: the caller's address recently presented a right
	// passphrase (which an attacker cannot arrange without one) and has
	// not failed for this token.
	Vouched Priority = iota
	// Unknown: the caller's address has no recent failure.
	Unknown
	// Retrying: as Unknown, but the caller's address was recently
	// refused a place (ErrBusy). An address that asks once goes before
	// it, so that a crowd of first guesses retrying at full speed cannot
	// keep a newcomer out of the line.
	Retrying
	// Suspect: the caller's address failed recently.
	Suspect
	numPriorities
)

// A Caller is who asks for a check: Key (the client address) is what
// fairness is counted by, and Priority says how soon it may run.
type Caller struct {
	Key      string
	Priority Priority
}

// LaneLimits bound the checks waiting at one priority: Waiting in all,
// PerKey for one caller key.
type LaneLimits struct {
	Waiting, PerKey int
}

// QueueConfig configures a Queue; zero fields take the defaults.
type QueueConfig struct {
	// Workers is how many argon2id computations run at once. Default:
	// half of GOMAXPROCS, at least 1, so that checks, however many are
	// asked for, leave CPU to serve tokens.
	Workers int
	// MaxWait is the longest a check waits for a worker before ErrBusy.
	// Default 1s: a flow's HTTP request commonly gives up after 2s.
	MaxWait time.Duration
	// Limits per priority. Defaults: DefaultLaneLimits.
	Limits [numPriorities]LaneLimits
	// SuspectShare is the most of the workers' time Suspect checks may
	// take, between 0 and 1; after each, Suspect checks wait so long that
	// this share holds (the others do not). Default 0.5: guessing never
	// takes all the CPU the checks may use, and runs at half speed.
	SuspectShare float64
}

// DefaultLaneLimits leave room for a burst of first requests from flows
// behind one address (after a deploy, every token's first request needs a
// check), as much again for the retries of those refused, and one waiting
// check per address that failed recently.
var DefaultLaneLimits = [numPriorities]LaneLimits{
	Vouched:  {Waiting: 64, PerKey: 32},
	Unknown:  {Waiting: 32, PerKey: 16},
	Retrying: {Waiting: 32, PerKey: 16},
	Suspect:  {Waiting: 8, PerKey: 1},
}

// A Queue runs expensive checks a few at a time, in priority order, and
// round-robin among caller keys within a priority, so that no address gets
// more than its turn; Suspect checks take at most a share of the workers'
// time. What cannot wait gets ErrBusy at once rather than a
// place in an ever longer line: the memory a burst can take is bounded by
// the limits (a waiting check holds a goroutine; only running ones hold
// argon2id's memory). A Queue is safe for concurrent use.
type Queue struct {
	workers int
	maxWait time.Duration
	limits  [numPriorities]LaneLimits
	// suspectRest is how long Suspect checks rest after one that took 1s.
	suspectRest float64
	now         func() time.Time

	mu      sync.Mutex
	running int
	lanes   [numPriorities]lane
	// suspectNext is when the next Suspect check may start; wake is set
	// while a timer will dispatch one then.
	suspectNext time.Time
	wake        *time.Timer
}

// lane holds the checks waiting at one priority.
type lane struct {
	order   []string             // keys with waiting checks, next turn first
	byKey   map[string][]*waiter // each key's checks, oldest first
	waiting int
}

type waiter struct{ ready chan struct{} }

// NewQueue returns a Queue configured by cfg.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = time.Second
	}
	if cfg.SuspectShare <= 0 || cfg.SuspectShare > 1 {
		cfg.SuspectShare = 0.5
	}
	q := &Queue{workers: cfg.Workers, maxWait: cfg.MaxWait, limits: cfg.Limits,
		suspectRest: (1/cfg.SuspectShare - 1) / float64(cfg.Workers), now: time.Now}
	for p := range q.lanes {
		if q.limits[p] == (LaneLimits{}) {
			q.limits[p] = DefaultLaneLimits[p]
		}
		q.lanes[p].byKey = map[string][]*waiter{}
	}
	return q
}

// Run runs fn when a worker is free and c's turn has come, or returns
// ErrBusy (no room to wait, or no turn within MaxWait) or ctx's error
// without running it.
func (q *Queue) Run(ctx context.Context, c Caller, fn func()) error {
	if c.Priority >= numPriorities {
		c.Priority = Suspect
	}
	if err := q.acquire(ctx, c); err != nil {
		return err
	}
	start := q.now()
	defer func() { q.release(c.Priority, q.now().Sub(start)) }()
	fn()
	return nil
}

func (q *Queue) acquire(ctx context.Context, c Caller) error {
	q.mu.Lock()
	// With a worker free, nothing but resting Suspect checks waits.
	if q.running < q.workers && (c.Priority != Suspect || q.lanes[Suspect].waiting == 0 && !q.now().Before(q.suspectNext)) {
		q.running++
		q.mu.Unlock()
		return nil
	}
	l, lim := &q.lanes[c.Priority], q.limits[c.Priority]
	if l.waiting >= lim.Waiting || len(l.byKey[c.Key]) >= lim.PerKey {
		q.mu.Unlock()
		return ErrBusy
	}
	w := &waiter{ready: make(chan struct{})}
	if len(l.byKey[c.Key]) == 0 {
		l.order = append(l.order, c.Key)
	}
	l.byKey[c.Key] = append(l.byKey[c.Key], w)
	l.waiting++
	q.dispatch() // a resting Suspect check needs the timer
	q.mu.Unlock()

	timer := time.NewTimer(q.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = ErrBusy
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-w.ready: // its turn came meanwhile: take it
		return nil
	default:
	}
	l.remove(c.Key, w)
	return err
}

func (q *Queue) release(p Priority, took time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running--
	if p == Suspect {
		q.suspectNext = q.now().Add(time.Duration(float64(took) * q.suspectRest))
	}
	q.dispatch()
}

// dispatch gives free workers to waiting checks, by priority; Suspect
// checks only once they have rested, else a timer comes back for them.
// Called with q.mu held.
func (q *Queue) dispatch() {
	for q.running < q.workers {
		var w *waiter
		for p := range Suspect {
			if w = q.lanes[p].next(); w != nil {
				break
			}
		}
		if w == nil && q.lanes[Suspect].waiting > 0 {
			if wait := q.suspectNext.Sub(q.now()); wait > 0 {
				if q.wake == nil {
					q.wake = time.AfterFunc(wait, func() {
						q.mu.Lock()
						defer q.mu.Unlock()
						q.wake = nil
						q.dispatch()
					})
				}
				return
			}
			w = q.lanes[Suspect].next()
		}
		if w == nil {
			return
		}
		q.running++
		close(w.ready)
	}
}

// next takes the oldest check of the key whose turn it is, and moves that
// key to the end of the line if it has more.
func (l *lane) next() *waiter {
	if l.waiting == 0 {
		return nil
	}
	key := l.order[0]
	ws := l.byKey[key]
	w := ws[0]
	l.order = l.order[1:]
	if len(ws) == 1 {
		delete(l.byKey, key)
	} else {
		l.byKey[key] = ws[1:]
		l.order = append(l.order, key)
	}
	l.waiting--
	return w
}

// remove takes a check that gave up out of the line.
func (l *lane) remove(key string, w *waiter) {
	ws := l.byKey[key]
	i := slices.Index(ws, w)
	if i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	l.waiting--
	if len(ws) > 0 {
		l.byKey[key] = ws
		return
	}
	delete(l.byKey, key)
	l.order = slices.DeleteFunc(l.order, func(k string) bool { return k == key })
}

// Waiting returns how many checks wait, for tests and metrics.
func (q *Queue) Waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for p := range q.lanes {
		n += q.lanes[p].waiting
	}
	return n
}
