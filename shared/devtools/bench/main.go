// Command bench measures the api as issue 12 asks, on this machine, and
// prints a Markdown table:
//
//   - cold start: process start to the first token served (one Firestore
//     read), over several starts;
//   - the hot path: a cached GET /?name= against a bare Echo handler
//     answering the same body (shared/devtools/bench/bareecho), each
//     server pinned to CPU 0 and the load generator (hey) to CPU 1,
//     alternating A/B rounds; the median ratio of throughput and of p99;
//     beside them, the same bare handler sending the api's headers from
//     a server with the api's timeouts ("same answer"), which tells the
//     cost of the api's code from that of what it answers;
//   - memory: resident memory and Go heap of an api instance started on a
//     store of 10 000 tokens, then with all of them cached, under load,
//     and the bytes each cached token costs.
//
// It starts the Firestore and Pub/Sub emulators (unless their variables
// name running ones) and needs bin/api
// (make build), hey and taskset. `make bench` runs it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

const (
	passphrase = "bench-passphrase-0123456789"
	benchName  = "bench"
)

func main() {
	rounds := flag.Int("rounds", 5, "alternating A/B rounds of the hot path")
	duration := flag.Duration("duration", 8*time.Second, "length of one hey run")
	conc := flag.Int("c", 32, "hey's concurrent clients")
	starts := flag.Int("starts", 20, "cold starts measured")
	tokens := flag.Int("tokens", 10000, "tokens cached for the memory figure")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rounds, *duration, *conc, *starts, *tokens); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rounds int, d time.Duration, conc, starts, tokens int) error {
	for _, tool := range []string{"hey", "taskset", "bin/api"} {
		if _, err := exec.LookPath(tool); err != nil && !fileExists(tool) {
			return fmt.Errorf("%s is missing (apt-get install hey util-linux; make build)", tool)
		}
	}
	work, err := os.MkdirTemp("", "bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bare := filepath.Join(work, "bareecho")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bare, "./shared/devtools/bench/bareecho").CombinedOutput(); err != nil {
		return fmt.Errorf("build bareecho: %v\n%s", err, out)
	}

	fmt.Println("starting the Firestore and Pub/Sub emulators (unless running)...")
	procs, err := emulator.StartMissing(emulator.Firestore, emulator.PubSub)
	defer emulator.StopAll(procs)
	if err != nil {
		return err
	}
	fs, err := gfs.NewClient(ctx, emulator.DefaultProject)
	if err != nil {
		return err
	}
	defer fs.Close()
	const collection = "benchtokens"
	if err := seed(ctx, fs, collection, []string{benchName}); err != nil {
		return err
	}
	env := append(os.Environ(),
		"GOOGLE_CLOUD_PROJECT="+emulator.DefaultProject,
		"TOKENS_COLLECTION="+collection,
		"TOKEN_PASSPHRASE="+passphrase,
		"LOG_LEVEL=info",
	)

	var rep report
	fmt.Printf("cold start, %d times...\n", starts)
	for i := 0; i < starts; i++ {
		took, err := coldStart(ctx, env)
		if err != nil {
			return err
		}
		rep.coldStarts = append(rep.coldStarts, took)
	}

	api, err := startServer(ctx, "bin/api", env, 0)
	if err != nil {
		return err
	}
	defer api.stop()
	body, header, err := fetchAnswer(api.url+"/?name="+benchName, passphrase)
	if err != nil {
		return err
	}
	bodyFile, headersFile := filepath.Join(work, "body.json"), filepath.Join(work, "headers.json")
	for _, h := range []string{"Date", "Content-Length", "Content-Type"} { // set by net/http and Echo
		header.Del(h)
	}
	headersJSON, _ := json.Marshal(header)
	if err := errors.Join(os.WriteFile(bodyFile, body, 0o600), os.WriteFile(headersFile, headersJSON, 0o600)); err != nil {
		return err
	}
	baseline, err := startServer(ctx, bare, append(os.Environ(), "BODY_FILE="+bodyFile), 0)
	if err != nil {
		return err
	}
	defer baseline.stop()
	alike, err := startServer(ctx, bare, append(os.Environ(), "BODY_FILE="+bodyFile, "HEADERS_FILE="+headersFile), 0)
	if err != nil {
		return err
	}
	defer alike.stop()
	for _, s := range []*server{baseline, alike} {
		if got, _, err := fetchAnswer(s.url+"/", ""); err != nil || len(got) != len(body) {
			return fmt.Errorf("bare echo answered %d bytes (%v), want %d", len(got), err, len(body))
		}
	}

	fmt.Printf("hot path: %d rounds of hey -c %d -z %s against the api, bare Echo and bare Echo with the api's headers and timeouts, in turn (servers on CPU 0, hey on CPU 1)...\n", rounds, conc, d)
	for i := 0; i < rounds; i++ {
		var r round
		targets := []*heyResult{&r.api, &r.bare, &r.alike}
		servers := []*server{api, baseline, alike}
		for j := range servers {
			k := (i + j) % len(servers) // each round starts with the next one
			s := servers[k]
			cpu0, steal0 := cpuTime(s.cmd.Process.Pid), stealTime()
			res, err := hey(ctx, s.url+"/?name="+benchName, conc, d)
			if err != nil {
				return err
			}
			res.cpuPerReq = (cpuTime(s.cmd.Process.Pid) - cpu0) / time.Duration(max(res.n, 1))
			res.steal = stealTime() - steal0
			*targets[k] = res
		}
		fmt.Printf("  round %d: api %.0f req/s p99 %s CPU %s/req, bare %.0f req/s p99 %s CPU %s/req, same answer %.0f req/s p99 %s CPU %s/req; steal %s, %s, %s\n", i+1,
			r.api.rps, r.api.p99, r.api.cpuPerReq, r.bare.rps, r.bare.p99, r.bare.cpuPerReq, r.alike.rps, r.alike.p99, r.alike.cpuPerReq,
			r.api.steal, r.bare.steal, r.alike.steal)
		rep.rounds = append(rep.rounds, r)
	}
	baseline.stop()
	alike.stop()
	api.stop()

	fmt.Printf("memory: %d tokens in the store, a new api instance caching them all...\n", tokens)
	if err := rep.memory(ctx, fs, env, tokens, conc); err != nil {
		return err
	}
	rep.print(os.Stdout, conc, d)
	return nil
}

type heyResult struct {
	rps  float64
	p99  time.Duration
	n    int // 200 answers
	non2 int

	// Filled in by the caller: the server's CPU time (user + system) per
	// answer, and the time the hypervisor took from this machine's CPUs
	// during the run (a round with much of it says little).
	cpuPerReq, steal time.Duration
}

// round is one round of the hot path: the api, the bare Echo handler, and
// the bare handler with the api's headers and timeouts (same answer).
type round struct{ api, bare, alike heyResult }

type report struct {
	coldStarts []time.Duration
	rounds     []round

	tokens                      int
	rssBefore, rssAfter, rssMax int64
	heapBefore, heapAfter       float64
}

var (
	rpsRe   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re   = regexp.MustCompile(`99% in ([0-9.]+) secs`)
	codesRe = regexp.MustCompile(`\[(\d{3})\]\s+(\d+) responses`)
)

// hey runs the load generator pinned to CPU 1 and parses its summary.
func hey(ctx context.Context, url string, conc int, d time.Duration) (heyResult, error) {
	cmd := exec.CommandContext(ctx, "taskset", "-c", "1", "hey", "-c", strconv.Itoa(conc), "-z", d.String(),
		"-H", "x-token-passphrase: "+passphrase, url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return heyResult{}, fmt.Errorf("hey: %v\n%s", err, out)
	}
	var r heyResult
	m := rpsRe.FindSubmatch(out)
	p := p99Re.FindSubmatch(out)
	if m == nil || p == nil {
		return r, fmt.Errorf("cannot read hey's output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	secs, _ := strconv.ParseFloat(string(p[1]), 64)
	r.p99 = time.Duration(secs * float64(time.Second))
	for _, c := range codesRe.FindAllSubmatch(out, -1) {
		n, _ := strconv.Atoi(string(c[2]))
		if string(c[1]) == "200" {
			r.n += n
		} else {
			r.non2 += n
		}
	}
	if r.non2 > 0 {
		return r, fmt.Errorf("%d answers were not 200:\n%s", r.non2, out)
	}
	return r, nil
}

// server is a child process pinned to CPU 0 (or cpu).
type server struct {
	cmd  *exec.Cmd
	url  string
	once sync.Once
}

func startServer(ctx context.Context, bin string, env []string, cpu int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "taskset", "-c", strconv.Itoa(cpu), bin)
	cmd.Env = append(env, "PORT="+port)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logs
	if f := os.Getenv("BENCH_SERVER_LOG"); f != "" { // keep the servers' logs, to look into a failed run
		if out, err := os.OpenFile(f, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
			cmd.Stderr = io.MultiWriter(&logs, out)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, url: "http://127.0.0.1:" + port}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			c.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s did not listen within 20s:\n%s", bin, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
}

// coldStart times process start to the first token served.
func coldStart(ctx context.Context, env []string) (time.Duration, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "taskset", "-c", "0", "bin/api")
	cmd.Env = append(env, "PORT="+port)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	s := &server{cmd: cmd}
	defer s.stop()
	url := "http://127.0.0.1:" + port + "/?name=" + benchName
	for time.Since(start) < 20*time.Second {
		if _, err := fetch(url, passphrase); err == nil {
			return time.Since(start), nil
		}
		time.Sleep(time.Millisecond)
	}
	return 0, errors.New("no token served within 20s of starting bin/api")
}

var client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func fetch(url, pass string) ([]byte, error) {
	b, _, err := fetchAnswer(url, pass)
	return b, err
}

// fetchAnswer GETs url and returns the body and headers of a 200 answer.
func fetchAnswer(url, pass string) ([]byte, http.Header, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if pass != "" {
		req.Header.Set("x-token-passphrase", pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	return b, resp.Header, err
}

// memory writes n tokens to a collection of their own, starts an api
// instance on it (as one starts in production: the store already full,
// its change feed listing it), and reads the instance's resident memory
// and Go heap once it is up, and then after it has cached every token and
// at most while hey loads it. Writing the tokens first also keeps the
// emulator's way of listening out of the figure: it sends the whole
// collection again at every write, which Firestore does not.
func (r *report) memory(ctx context.Context, fs *gfs.Client, env []string, n, conc int) error {
	r.tokens = n
	const collection = "benchmemory"
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tok-%05d", i)
	}
	if err := seed(ctx, fs, collection, names); err != nil {
		return err
	}
	api, err := startServer(ctx, "bin/api", append(slices.Clone(env), "TOKENS_COLLECTION="+collection), 0)
	if err != nil {
		return err
	}
	defer api.stop()
	if _, err := fetch(api.url+"/?name="+names[0], passphrase); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // the change feed's listing of the collection is over
	r.rssBefore = rss(api.cmd.Process.Pid)
	r.heapBefore = heapInuse(api.url)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var failed error
	var mu sync.Mutex
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := fetch(api.url+"/?name="+name, passphrase); err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return failed
	}
	stop := make(chan struct{})
	var peak int64
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				peak = max(peak, rss(api.cmd.Process.Pid))
			}
		}
	}()
	_, err = hey(ctx, api.url+"/?name="+names[n/2], conc, 5*time.Second)
	close(stop)
	if err != nil {
		return err
	}
	r.rssAfter = rss(api.cmd.Process.Pid)
	r.rssMax = max(peak, r.rssAfter)
	r.heapAfter = heapInuse(api.url)
	return nil
}

// cpuTime is the CPU time pid's threads have run, from the scheduler's
// own accounting in /proc/<pid>/task/*/schedstat (nanoseconds; utime and
// stime in /proc/<pid>/stat are sampled at each tick, which misjudges a
// server that runs in short bursts).
func cpuTime(pid int) time.Duration {
	paths, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			ns, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(ns)
		}
	}
	return sum
}

// clockTick is the unit of the times in /proc/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// stealTime is the time the hypervisor has taken from all CPUs, from
// /proc/stat.
func stealTime() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	v, _ := strconv.ParseInt(f[8], 10, 64)
	return time.Duration(v) * clockTick
}

// rss is the resident set of pid in bytes, from /proc.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

var heapRe = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes ([0-9.e+]+)$`)

// heapInuse reads the api's Go heap in use from /metrics (after the GC
// the metrics handler does not force, so it is an upper bound).
func heapInuse(base string) float64 {
	b, err := fetch(base+"/metrics", "")
	if err != nil {
		return 0
	}
	m := heapRe.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// seed writes names as the Node sample writes them, 500 per batch.
func seed(ctx context.Context, fs *gfs.Client, collection string, names []string) error {
	now := time.Now()
	for start := 0; start < len(names); start += 500 {
		todo := names[start:min(start+500, len(names))]
		// A bulk writer's jobs fail one by one (a busy emulator answers
		// some with an error): each result is checked, and what failed is
		// written again, or the figures would count missing tokens.
		for attempt := 1; len(todo) > 0; attempt++ {
			if attempt > 5 {
				return fmt.Errorf("seed: %d documents still not written", len(todo))
			}
			bw := fs.BulkWriter(ctx)
			jobs := make([]*gfs.BulkWriterJob, len(todo))
			for i, name := range todo {
				doc := map[string]any{
					"clientId": "client-" + name, "clientSecret": "secret-" + name, "redirectUri": "https://example.com/cb",
					"accessToken": "at-" + name + "-0123456789abcdef0123456789abcdef", "refreshToken": "rt-" + name,
					"accessExpires": now.Add(10 * time.Hour).UnixMilli(), "refreshExpires": now.Add(60 * 24 * time.Hour).UnixMilli(),
					"lastRefresh": now.UnixMilli(),
				}
				j, err := bw.Set(fs.Collection(collection).Doc(name), doc)
				if err != nil {
					return err
				}
				jobs[i] = j
			}
			bw.End()
			var again []string
			for i, j := range jobs {
				if _, err := j.Results(); err != nil {
					again = append(again, todo[i])
				}
			}
			todo = again
		}
	}
	return nil
}

func (r *report) print(w io.Writer, conc int, d time.Duration) {
	var tput, p99 []float64
	for _, rd := range r.rounds {
		tput = append(tput, rd.api.rps/rd.bare.rps)
		p99 = append(p99, float64(rd.api.p99)/float64(rd.bare.p99))
	}
	fmt.Fprintf(w, "\n| figure | value | target |\n|---|---|---|\n")
	fmt.Fprintf(w, "| hot path throughput, api / bare Echo (median of %d rounds, hey -c %d -z %s) | **%.2f×** (rounds %s) | ≥ 0.90× |\n",
		len(r.rounds), conc, d, median(tput), list(tput, "%.2f"))
	fmt.Fprintf(w, "| hot path p99, api / bare Echo | **%.2f×** (rounds %s) | ≤ 1.5× |\n", median(p99), list(p99, "%.2f"))
	var cpu, tputAlike, cpuAlike []float64
	var steal time.Duration
	for _, rd := range r.rounds {
		cpu = append(cpu, float64(rd.api.cpuPerReq)/float64(rd.bare.cpuPerReq))
		tputAlike = append(tputAlike, rd.api.rps/rd.alike.rps)
		cpuAlike = append(cpuAlike, float64(rd.api.cpuPerReq)/float64(rd.alike.cpuPerReq))
		steal += rd.api.steal + rd.bare.steal + rd.alike.steal
	}
	fmt.Fprintf(w, "| server CPU per answer, api / bare Echo | %.2f× (rounds %s) | |\n", median(cpu), list(cpu, "%.2f"))
	fmt.Fprintf(w, "| hot path throughput, api / bare Echo with the api's headers and timeouts (same answer) | %.2f× (rounds %s) | |\n",
		median(tputAlike), list(tputAlike, "%.2f"))
	fmt.Fprintf(w, "| server CPU per answer, api / same answer | %.2f× (rounds %s) | |\n", median(cpuAlike), list(cpuAlike, "%.2f"))
	fmt.Fprintf(w, "| CPU time the hypervisor took during the hot path (steal) | %s of %s | |\n", steal, 2*time.Duration(len(r.rounds))*3*d)
	var apiRPS, bareRPS, alikeRPS []float64
	for _, rd := range r.rounds {
		apiRPS, bareRPS, alikeRPS = append(apiRPS, rd.api.rps), append(bareRPS, rd.bare.rps), append(alikeRPS, rd.alike.rps)
	}
	fmt.Fprintf(w, "| api throughput (median) | %.0f req/s | |\n| bare Echo throughput (median) | %.0f req/s | |\n| same answer throughput (median) | %.0f req/s | |\n",
		median(apiRPS), median(bareRPS), median(alikeRPS))
	var cs []float64
	for _, c := range r.coldStarts {
		cs = append(cs, float64(c.Milliseconds()))
	}
	fmt.Fprintf(w, "| cold start to the first token served (p95 of %d; median; min–max) | **%.0f ms** (median %.0f ms; %s) | p95 ≤ 150 ms |\n",
		len(cs), percentile(cs, 95), median(cs), minMax(cs))
	fmt.Fprintf(w, "| api resident memory, %d tokens cached, under load (peak) | **%.1f MiB** (%.1f MiB started, before caching) | ≤ 64 MiB |\n",
		r.tokens, mib(r.rssMax), mib(r.rssBefore))
	fmt.Fprintf(w, "| Go heap per cached token | %.0f bytes | |\n", (r.heapAfter-r.heapBefore)/float64(r.tokens))
	fmt.Fprintf(w, "| resident memory per cached token | %.0f bytes | |\n", float64(r.rssAfter-r.rssBefore)/float64(r.tokens))
}

// percentile is the p-th percentile of v (nearest rank).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func list(v []float64, f string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(parts, " ")
}

func minMax(v []float64) string {
	return fmt.Sprintf("%.0f–%.0f ms", slices.Min(v), slices.Max(v))
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func freePort() (string, error) {
	p, err := freeport.Pick()
	return strconv.Itoa(p), err
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
