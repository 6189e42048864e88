package main

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxcc/tokenservice/shared/lifecycle"
)

// Time compressed through configuration (DESIGN section 6 names): a token
// lives a minute instead of twelve hours, and every period of the service
// shrinks with it. Periods the configuration cannot set keep their real
// values, and the checks allow for them (see below).
const (
	accessLifetime   = 60 * time.Second // the fake's SetExpiresIn
	refreshLifetime  = 24 * time.Hour   // refresh tokens that do not lapse in the run
	refreshThreshold = 20 * time.Second // REFRESH_THRESHOLD
	refreshLead      = 10 * time.Second // REFRESH_LEAD: the worker refreshes at 30 s left
	// sweepInterval is SWEEP_INTERVAL. 10 s rather than 5 s: the issue's
	// bound for an instance's own failed deliveries is 10 s, and the
	// outbox must be empty within one sweep interval after the last fault.
	sweepInterval = 10 * time.Second
	sweepTimeout  = 20 * time.Second        // SWEEP_TIMEOUT
	minValidity   = 5 * time.Second         // MIN_TOKEN_VALIDITY
	cacheMaxAge   = 10 * time.Second        // CACHE_MAX_AGE
	inlineTimeout = 1500 * time.Millisecond // INLINE_REFRESH_TIMEOUT (the default)
	webexTimeout  = 3 * time.Second         // WEBEX_TIMEOUT
	expiryWarning = 30 * time.Second        // REFRESH_EXPIRY_WARNING

	// Not configurable, so not compressed:
	// leaseTTL is how long a lease outlives its holder (WEBEX_TIMEOUT + 15 s).
	leaseTTL = webexTimeout + 15*time.Second
	// takeoverGrace is how long an instance must have seen another
	// holder's lease expired before it takes over (the protocol's).
	takeoverGrace = lifecycle.TakeoverGrace
	// backoffFloor is the refresh protocol's shortest backoff after a
	// transient failure (lifecycle.RefresherConfig.BackoffBase's default).
	backoffFloor = 15 * time.Second
	// outboxSettle is how old an event must be before a sweep publishes
	// it for an instance that may have died (the relay's settle time
	// before issue 10; since, the worker's drain publishes at once, and
	// this allowance is only generous).
	outboxSettle = 30 * time.Second
	// storeRetry is how long the api serves a cached token without asking
	// Firestore again after Firestore failed to answer.
	storeRetry = 5 * time.Second
)

// Bounds the checks use beyond the configuration.
const (
	// requestTimeout is when a GET counts as a hang: far beyond the
	// documented INLINE_REFRESH_TIMEOUT "plus a little".
	requestTimeout = 5 * time.Second
	// flowTimeout is how long a flow waits for a token: WxCC Flow
	// Designer's HTTP Request commonly gives up at 2 s, and the README
	// promises that the api answers within INLINE_REFRESH_TIMEOUT
	// (1.5 s) even when it has to refresh. Every GET must be answered
	// within it.
	flowTimeout = 2 * time.Second
	// answerSlack is added to Firestore outage windows: what was asked
	// during the outage may be answered a little after it.
	answerSlack = 2 * time.Second
	// validitySlack keeps requests at the edge of MIN_TOKEN_VALIDITY
	// out of the strict rule: clocks are read at slightly different times.
	validitySlack = time.Second
	// resourceEvery is how often /metrics, the outbox and health are sampled.
	resourceEvery = 2 * time.Second
)

// settings are what the person running the campaign chooses.
type settings struct {
	// Duration is how long each profile runs once its processes are
	// ready: warm-up, faults, then a quiet tail in which recovery is
	// measured.
	Duration time.Duration
	// Seed draws the fault schedule, the population and the load.
	Seed uint64
	// ReportRoot is the directory under which the run's report directory
	// is made.
	ReportRoot string
	// Race builds the binaries with the race detector (a data race then
	// fails invariant 7).
	Race bool
	// Profiles are the profiles to run, by name.
	Profiles []string
	// Binaries, if set, is a directory holding api and worker built
	// beforehand: the campaign then builds nothing.
	Binaries string
	// APIs and Workers are the instances of each binary per profile.
	APIs, Workers int
}

// Instances per profile, unless SOAK_APIS and SOAK_WORKERS say otherwise.
// Process faults spare the first of each, so there are at least two.
const (
	defaultAPIs    = 3
	defaultWorkers = 2
	minInstances   = 2
	maxInstances   = 8
)

// defaultDuration is what `make soak` runs.
const defaultDuration = 10 * time.Minute

// minDuration leaves room for warm-up, at least one fault and the tail.
const minDuration = 75 * time.Second

// parseSettings reads the environment (SOAK_DURATION, SOAK_SEED,
// SOAK_REPORT_DIR, SOAK_RACE, SOAK_PROFILES, SOAK_APIS, SOAK_WORKERS),
// then flags of the same meaning, which win.
func parseSettings(args []string, getenv func(string) string) (settings, error) {
	s := settings{Duration: defaultDuration, ReportRoot: "soak-reports", Profiles: []string{"plain", "encrypted"},
		APIs: defaultAPIs, Workers: defaultWorkers}
	for _, v := range []struct {
		name string
		n    *int
	}{{"SOAK_APIS", &s.APIs}, {"SOAK_WORKERS", &s.Workers}} {
		if e := getenv(v.name); e != "" {
			n, err := strconv.Atoi(e)
			if err != nil {
				return s, fmt.Errorf("%s=%q is not a number", v.name, e)
			}
			*v.n = n
		}
	}
	if v := getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return s, fmt.Errorf("SOAK_DURATION=%q is not a duration such as 90s or 10m", v)
		}
		s.Duration = d
	}
	seed := getenv("SOAK_SEED")
	if v := getenv("SOAK_REPORT_DIR"); v != "" {
		s.ReportRoot = v
	}
	if v := getenv("SOAK_RACE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("SOAK_RACE=%q is not true or false", v)
		}
		s.Race = b
	}
	s.Binaries = getenv("SOAK_BINARIES")
	profiles := strings.Join(s.Profiles, ",")
	if v := getenv("SOAK_PROFILES"); v != "" {
		profiles = v
	}

	fl := flag.NewFlagSet("soak", flag.ContinueOnError)
	fl.DurationVar(&s.Duration, "duration", s.Duration, "how long each profile runs (SOAK_DURATION)")
	fl.StringVar(&seed, "seed", seed, "seed of the fault schedule, population and load; empty: random (SOAK_SEED)")
	fl.StringVar(&s.ReportRoot, "reports", s.ReportRoot, "directory for the report directories (SOAK_REPORT_DIR)")
	fl.BoolVar(&s.Race, "race", s.Race, "build the binaries with the race detector (SOAK_RACE)")
	fl.StringVar(&profiles, "profiles", profiles, "profiles to run: plain, encrypted (SOAK_PROFILES)")
	fl.StringVar(&s.Binaries, "binaries", s.Binaries, "directory with api and worker built beforehand; empty: build them (SOAK_BINARIES)")
	fl.IntVar(&s.APIs, "apis", s.APIs, "api instances per profile (SOAK_APIS)")
	fl.IntVar(&s.Workers, "workers", s.Workers, "worker instances per profile (SOAK_WORKERS)")
	if err := fl.Parse(args); err != nil {
		return s, err
	}
	for _, n := range []int{s.APIs, s.Workers} {
		if n < minInstances || n > maxInstances {
			return s, fmt.Errorf("%d instances: use %d to %d of each binary (process faults spare the first)", n, minInstances, maxInstances)
		}
	}
	if s.Duration < minDuration {
		return s, fmt.Errorf("duration %v is too short: at least %v (warm-up, faults, and a quiet tail to measure recovery)", s.Duration, minDuration)
	}
	if seed == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.Seed = binary.LittleEndian.Uint64(b[:]) % 1_000_000_000
	} else {
		n, err := strconv.ParseUint(seed, 10, 64)
		if err != nil {
			return s, fmt.Errorf("seed %q is not a non-negative integer", seed)
		}
		s.Seed = n
	}
	s.Profiles = nil
	for _, p := range strings.Split(profiles, ",") {
		p = strings.TrimSpace(p)
		if _, ok := profileByName[p]; !ok {
			return s, fmt.Errorf("unknown profile %q: use plain, encrypted", p)
		}
		s.Profiles = append(s.Profiles, p)
	}
	return s, nil
}

// profile is one configuration of the service under test.
type profile struct {
	Name string
	// Encrypted sets TOKEN_ENCRYPTION_KEYS.
	Encrypted bool
	// Sample runs the stand-in of the old Node sample. Only without
	// encryption: the sample would serve ciphertext.
	Sample bool
	// Index separates the profiles' random streams.
	Index uint64
}

var profileByName = map[string]profile{
	"plain":     {Name: "plain", Sample: true, Index: 1},
	"encrypted": {Name: "encrypted", Encrypted: true, Index: 2},
}
