// Command attackbench measures what guessing and misconfiguration cost
// the flows that use the api correctly (issue 12 item 2): the p99 of
// correct requests, cached and first-time (a token with its own
// passphrase, not yet verified by the process: one Firestore read and one
// argon2id), without load and under each attack, and the api's resident
// memory.
//
// It seeds a collection on the Firestore emulator (FIRESTORE_EMULATOR_HOST),
// then for every round and scenario starts a fresh api process from each
// binary given (so "before" and "after" builds alternate in one run, under
// the same conditions), and measures while the scenario runs:
//
//   - unloaded: correct requests only;
//   - misconfigured: a flow behind the same address as the correct ones
//     repeats a wrong passphrase for a token with its own passphrase, from
//     -flood connections at full speed;
//   - guessers: -guessers client addresses (TRUSTED_PROXY_HOPS=1 and
//     X-Forwarded-For), one connection each at full speed, guess the own
//     passphrases of 30 tokens, ignoring 429s.
//
// Correct requests are sent open-loop (on a fixed schedule, latency counted
// from the scheduled time): cached GET /?name= at -cached-rate, first-time
// requests from the flows' address (which presented a right passphrase
// before) at -first-rate, and first-time requests from a new address each
// at half that rate. Resident memory is sampled every 100 ms. It reports,
// per scenario, the median over rounds of each round's p99 (one stall of
// the machine sets a round's p99; the median of rounds is robust to it).
//
//	make build
//	go run ./shared/devtools/withemulators -- go run ./shared/devtools/attackbench -api bin/api
//	go run ./shared/devtools/withemulators -- go run ./shared/devtools/attackbench -api /tmp/before/api,bin/api
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

const (
	tokenPassphrase = "attackbench-flow-passphrase"
	firstPassphrase = "attackbench-own-passphrase"
	flowsAddr       = "192.0.2.10"
	targets         = 30
)

type options struct {
	apis                   []string
	phase, rampUp          time.Duration
	rounds                 int
	cachedRate, firstRate  float64
	guessers, flood        int
	scenarios              []string
	project, collection    string
	firstTokens, newTokens int
	apiLog                 string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "attack" {
		attack(os.Args[2:])
		return
	}
	var o options
	var apis, scenarios string
	flag.StringVar(&apis, "api", "bin/api", "api binaries to compare, comma-separated")
	flag.DurationVar(&o.phase, "phase", 10*time.Second, "how long each scenario is measured in a round")
	flag.DurationVar(&o.rampUp, "ramp-up", 2*time.Second, "how long an attack runs before measuring starts")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; the median of their p99s is reported")
	flag.Float64Var(&o.cachedRate, "cached-rate", 200, "cached requests per second")
	flag.Float64Var(&o.firstRate, "first-rate", 4, "first-time requests per second from the flows' address")
	flag.IntVar(&o.guessers, "guessers", 100, "guessing client addresses")
	flag.IntVar(&o.flood, "flood", 16, "connections of the misconfigured flow")
	flag.StringVar(&o.apiLog, "api-log", "", "append the api processes' stderr to this file")
	flag.StringVar(&scenarios, "scenarios", "unloaded,misconfigured,guessers", "scenarios to run")
	flag.Parse()
	o.apis = strings.Split(apis, ",")
	o.scenarios = strings.Split(scenarios, ",")
	o.project = emulator.Project()
	o.collection = "attackbench_" + randomHex(4)
	o.firstTokens = int(o.firstRate*(o.phase+o.rampUp).Seconds()) + 10
	o.newTokens = o.firstTokens/2 + 10
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "attackbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		return fmt.Errorf("FIRESTORE_EMULATOR_HOST is not set: run under shared/devtools/withemulators")
	}
	for _, bin := range o.apis {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("api binary: %w (make build)", err)
		}
	}
	fs, err := gfs.NewClient(ctx, o.project)
	if err != nil {
		return err
	}
	defer fs.Close()
	start := time.Now()
	if err := seed(ctx, fs, o); err != nil {
		return err
	}
	fmt.Printf("seeded %d tokens in %s (collection %s); %d rounds of %s per scenario, GOMAXPROCS of the api: %d CPUs\n",
		1+o.firstTokens+o.newTokens+targets, time.Since(start).Round(time.Millisecond), o.collection, o.rounds, o.phase, numCPU())

	var results []result
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range o.scenarios {
			for _, bin := range o.apis {
				r, err := measure(ctx, o, bin, sc)
				if err != nil {
					return fmt.Errorf("%s %s round %d: %w", bin, sc, round, err)
				}
				r.round = round
				results = append(results, r)
				r.print()
			}
		}
	}
	summarize(o, results)
	return nil
}

// seed writes the tokens: "cached" opens with TOKEN_PASSPHRASE; "first-N"
// and "new-N" have their own passphrase (one passphrase, a salt each, so
// every token costs one argon2id the first time); "target-N" have their
// own unknown passphrases.
func seed(ctx context.Context, fs *gfs.Client, o options) error {
	type doc struct {
		name, pass string
	}
	docs := []doc{{"cached", ""}}
	for i := range o.firstTokens {
		docs = append(docs, doc{fmt.Sprintf("first-%d", i), firstPassphrase})
	}
	for i := range o.newTokens {
		docs = append(docs, doc{fmt.Sprintf("new-%d", i), firstPassphrase})
	}
	for i := range targets {
		docs = append(docs, doc{fmt.Sprintf("target-%d", i), "secret-" + randomHex(12)})
	}
	hashes := make([]string, len(docs))
	var wg sync.WaitGroup
	var hashErr atomic.Value
	sem := make(chan struct{}, numCPU())
	for i, d := range docs {
		if d.pass == "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			h, err := passphrase.Hash(d.pass)
			if err != nil {
				hashErr.Store(err)
			}
			hashes[i] = h
		})
	}
	wg.Wait()
	if err, _ := hashErr.Load().(error); err != nil {
		return err
	}
	bw := fs.BulkWriter(ctx)
	now := time.Now()
	for i, d := range docs {
		f := map[string]any{
			"clientId": "client", "clientSecret": "secret", "redirectUri": "https://flows.example.com/callback",
			"accessToken": "at-" + d.name, "refreshToken": "rt-" + d.name,
			"accessExpires": now.Add(6 * time.Hour).UnixMilli(), "refreshExpires": now.Add(60 * 24 * time.Hour).UnixMilli(),
			"lastRefresh": now.UnixMilli(), "status": "active",
		}
		if hashes[i] != "" {
			f["passphraseHash"] = hashes[i]
		}
		if _, err := bw.Set(fs.Collection(o.collection).Doc(d.name), f); err != nil {
			return err
		}
	}
	bw.End()
	return nil
}

// result is one scenario on one binary in one round.
type result struct {
	bin, scenario string
	round         int
	cached        latencies
	first, newAdr latencies
	attack        map[int]int // status → count
	attackErrs    int
	peakRSS       int64 // KiB
	hwm           int64 // KiB
}

type latencies struct {
	d      []time.Duration
	status map[int]int
	errs   int
}

func (l *latencies) add(d time.Duration, code int, err error) {
	if err != nil {
		l.errs++
		return
	}
	if l.status == nil {
		l.status = map[int]int{}
	}
	l.status[code]++
	l.d = append(l.d, d)
}

func (l latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// notOK counts answers other than 200 and errors.
func (l latencies) notOK() int {
	n := l.errs
	for code, c := range l.status {
		if code != 200 {
			n += c
		}
	}
	return n
}

func (r result) print() {
	fmt.Printf("%-22s %-13s round %d: cached p50 %7s p99 %7s (%d not 200) | first p50 %7s p99 %7s (%d not 200) | first, new address p99 %7s (%d not 200) | attack %v errs %d | RSS peak %d MiB, HWM %d MiB\n",
		filepath.Base(filepath.Dir(r.bin))+"/"+filepath.Base(r.bin), r.scenario, r.round,
		ms(r.cached.pct(50)), ms(r.cached.pct(99)), r.cached.notOK(),
		ms(r.first.pct(50)), ms(r.first.pct(99)), r.first.notOK(),
		ms(r.newAdr.pct(99)), r.newAdr.notOK(),
		r.attack, r.attackErrs, r.peakRSS/1024, r.hwm/1024)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms" }

func measure(ctx context.Context, o options, bin, scenario string) (result, error) {
	res := result{bin: bin, scenario: scenario, attack: map[int]int{}}
	port, err := freeport.Pick()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+o.project,
		"TOKENS_COLLECTION="+o.collection,
		"TOKEN_PASSPHRASE="+tokenPassphrase,
		"TRUSTED_PROXY_HOPS=1",
		"CORS_ALLOW_ORIGINS=https://desktop.example.com",
		"WEBEX_TOKEN_URL=http://127.0.0.1:9/never",
		"LOG_LEVEL=error",
		"PORT="+strconv.Itoa(port),
	)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if o.apiLog != "" {
		f, err := os.OpenFile(o.apiLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return res, err
		}
		defer f.Close()
		fmt.Fprintf(f, "=== %s %s\n", bin, scenario)
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHealthy(base); err != nil {
		return res, err
	}
	good := newClient(64)
	// The flows' address has fetched a token before, as every WxCC egress has.
	if code, err := get(good, base+"/?name=cached", tokenPassphrase, flowsAddr); err != nil || code != 200 {
		return res, fmt.Errorf("warm-up: %d %v", code, err)
	}

	// The attack runs in a process of its own, so that its goroutines do
	// not delay the measuring ones in this process's scheduler.
	var attacker *exec.Cmd
	var attackOut strings.Builder
	switch scenario {
	case "unloaded":
	case "misconfigured", "guessers":
		self, err := os.Executable()
		if err != nil {
			return res, err
		}
		attacker = exec.Command(self, "attack", scenario, base, strconv.Itoa(o.flood), strconv.Itoa(o.guessers))
		attacker.Stdout, attacker.Stderr = &attackOut, os.Stderr
		if err := attacker.Start(); err != nil {
			return res, err
		}
	default:
		return res, fmt.Errorf("unknown scenario %q", scenario)
	}
	stopAttack := func() {
		if attacker == nil {
			return
		}
		attacker.Process.Signal(syscall.SIGTERM)
		attacker.Wait()
		for _, f := range strings.Fields(attackOut.String()) {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.Atoi(v)
			if k == "err" {
				res.attackErrs = n
			} else if code, err := strconv.Atoi(k); err == nil {
				res.attack[code] = n
			}
		}
	}
	defer stopAttack()
	time.Sleep(o.rampUp)

	rss := sampleRSS(cmd.Process.Pid)
	var wg sync.WaitGroup
	var cmu sync.Mutex
	next := 0
	newNext := 0
	openLoop(&wg, o.cachedRate, o.phase, func(late time.Duration) {
		start := time.Now().Add(-late)
		code, err := get(good, base+"/?name=cached", tokenPassphrase, flowsAddr)
		cmu.Lock()
		res.cached.add(time.Since(start), code, err)
		cmu.Unlock()
	})
	openLoop(&wg, o.firstRate, o.phase, func(late time.Duration) {
		start := time.Now().Add(-late)
		cmu.Lock()
		i := next
		next++
		cmu.Unlock()
		code, err := get(good, base+fmt.Sprintf("/?name=first-%d", i%o.firstTokens), firstPassphrase, flowsAddr)
		cmu.Lock()
		res.first.add(time.Since(start), code, err)
		cmu.Unlock()
	})
	openLoop(&wg, o.firstRate/2, o.phase, func(late time.Duration) {
		start := time.Now().Add(-late)
		cmu.Lock()
		i := newNext
		newNext++
		cmu.Unlock()
		code, err := get(good, base+fmt.Sprintf("/?name=new-%d", i%o.newTokens), firstPassphrase, fmt.Sprintf("192.0.2.%d", 100+i%150))
		cmu.Lock()
		res.newAdr.add(time.Since(start), code, err)
		cmu.Unlock()
	})
	wg.Wait()
	res.peakRSS = rss()
	res.hwm = procStatus(cmd.Process.Pid, "VmHWM")
	return res, nil
}

// attack is the attacking process: attack scenario base flood guessers.
// It runs until SIGTERM, then prints the answers it got by status.
func attack(args []string) {
	scenario, base := args[0], args[1]
	flood, _ := strconv.Atoi(args[2])
	guessers, _ := strconv.Atoi(args[3])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	counts := map[string]int{}
	record := func(code int, err error) {
		k := strconv.Itoa(code)
		if err != nil {
			k = "err"
		}
		mu.Lock()
		counts[k]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	switch scenario {
	case "misconfigured":
		c := newClient(flood)
		for range flood {
			wg.Go(func() {
				for ctx.Err() == nil {
					record(get(c, base+"/?name=target-0", "outdated-passphrase-2023", flowsAddr))
				}
			})
		}
	case "guessers":
		c := newClient(guessers)
		for g := range guessers {
			wg.Go(func() {
				addr := fmt.Sprintf("10.1.%d.%d", g/250, g%250+1)
				for i := 0; ctx.Err() == nil; i++ {
					name := fmt.Sprintf("target-%d", (g+i)%targets)
					record(get(c, base+"/?name="+name, "guess-"+randomHex(6), addr))
				}
			})
		}
	}
	<-ctx.Done()
	wg.Wait()
	for k, v := range counts {
		fmt.Printf("%s=%d ", k, v)
	}
	fmt.Println()
}

// openLoop calls fn rate times per second for d, each call in its own
// goroutine at its scheduled time; fn gets how late it started.
func openLoop(wg *sync.WaitGroup, rate float64, d time.Duration, fn func(late time.Duration)) {
	if rate <= 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / rate)
	wg.Go(func() {
		start := time.Now()
		for i := 0; ; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.Sub(start) >= d {
				return
			}
			time.Sleep(time.Until(at))
			wg.Go(func() { fn(max(0, time.Since(at))) })
		}
	})
}

func newClient(conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2, IdleConnTimeout: time.Minute}}
}

func get(c *http.Client, url, pass, addr string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-token-passphrase", pass)
	req.Header.Set("X-Forwarded-For", addr)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func waitHealthy(base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("api at %s not healthy within 30s", base)
}

// sampleRSS samples pid's VmRSS every 100 ms until the returned function
// is called, which returns the peak in KiB.
func sampleRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procStatus(pid, "VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(stop); <-done; return peak.Load() }
}

// procStatus reads a "kB" field of /proc/pid/status.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// summarize prints, per binary and scenario, the median over rounds of
// each round's p99, with the lowest and highest: on a shared machine one
// stall of half a second (seen with no load at all) sets a whole round's
// p99, and the median of rounds is robust to a few such rounds.
func summarize(o options, results []result) {
	fmt.Println()
	fmt.Printf("median of the %d rounds' p99 [lowest-highest]; ratio: against the same binary's unloaded median (target <= 3.0)\n", o.rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "api\tscenario\tcached p99\tratio\tfirst p99\tratio\tfirst, new address p99\tratio\tcorrect not 200\tpeak RSS MiB")
	for _, bin := range o.apis {
		base := [3]time.Duration{}
		for _, sc := range o.scenarios {
			var p99 [3][]time.Duration
			var rss int64
			bad := 0
			for _, r := range results {
				if r.bin == bin && r.scenario == sc {
					for i, l := range []latencies{r.cached, r.first, r.newAdr} {
						p99[i] = append(p99[i], l.pct(99))
						bad += l.notOK()
					}
					rss = max(rss, r.peakRSS)
				}
			}
			cols := []string{bin, sc}
			for i := range p99 {
				slices.Sort(p99[i])
				m := p99[i][len(p99[i])/2]
				if sc == "unloaded" {
					base[i] = m
				}
				cols = append(cols, fmt.Sprintf("%s [%s-%s]", ms(m), ms(p99[i][0]), ms(p99[i][len(p99[i])-1])), ratio(m, base[i]))
			}
			cols = append(cols, strconv.Itoa(bad), strconv.FormatInt(rss/1024, 10))
			fmt.Fprintln(tw, strings.Join(cols, "\t"))
		}
	}
	tw.Flush()
}

func ratio(d, base time.Duration) string {
	if base <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(base), 'f', 1, 64) + "x"
}

func numCPU() int { return runtime.NumCPU() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
