package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Load: flowClients goroutines, each GETting a token from a random api
// instance flowRate times a second; an administrator acting every few
// seconds. Every request is bounded in time, and the number of clients
// and connections is fixed, so the load is bounded too.
const (
	flowClients = 8
	flowRate    = 3 // per client and second
	adminEvery  = 6 * time.Second
)

// request is one HTTP request of the load and its outcome.
type request struct {
	Kind   string // "get", "probe" (wrong passphrase on purpose), "put", "list", "refresh"
	Token  string
	API    int // index into the campaign's apis
	Start  time.Time
	End    time.Time
	Status int    // 0 when no answer came
	Err    string // "refused", "reset", "timeout", "other: ..." when no answer came
	// Served is the access token a 200 carried.
	Served string
}

func (r request) latency() time.Duration { return r.End.Sub(r.Start) }

// answer is what do got back.
type answer struct {
	Status int
	Body   []byte
	Err    error
}

// do sends one request with the campaign's bounded client.
func (c *campaign) do(ctx context.Context, method, url, body string, headers map[string]string) answer {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{Err: err}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return answer{Status: resp.StatusCode, Body: b, Err: err}
}

func (c *campaign) adminHeader() map[string]string {
	return map[string]string{"x-admin-passphrase": c.adminPassphrase}
}

// errKind names a failed request's error for the report.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other: " + err.Error()
}

// runFlows runs the flow clients until ctx ends.
func (c *campaign) runFlows(ctx context.Context, wg *sync.WaitGroup) {
	var readable []*soakToken
	for _, t := range c.tokens {
		if t.Read {
			readable = append(readable, t)
		}
	}
	for i := range flowClients {
		rng := rand.New(rand.NewPCG(c.s.Seed, c.p.Index*1000+uint64(i)))
		wg.Go(func() {
			tick := time.NewTicker(time.Second / flowRate)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				t := readable[rng.IntN(len(readable))]
				c.get(ctx, t, rng.IntN(len(c.apis())), "get")
			}
		})
	}
}

// get is one flow's GET /?name=N. kind "probe" sends TOKEN_PASSPHRASE to
// a token with a passphrase of its own, which must be refused.
func (c *campaign) get(ctx context.Context, t *soakToken, api int, kind string) {
	pass := c.tokenPassphrase
	if t.Passphrase != "" && kind == "get" {
		pass = t.Passphrase
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	r := request{Kind: kind, Token: t.Name, API: api, Start: time.Now()}
	a := c.do(rctx, http.MethodGet, c.apis()[api].URL()+"/?name="+t.Name, "", map[string]string{"x-token-passphrase": pass})
	r.End = time.Now()
	if a.Status == 0 {
		r.Err = errKind(a.Err)
	}
	r.Status = a.Status
	if a.Status == http.StatusOK {
		var body struct{ Token string }
		_ = json.Unmarshal(a.Body, &body)
		r.Served = body.Token
	}
	c.reqs.add(r)
}

// runAdmin acts as an administrator until ctx ends: lists the tokens,
// changes a token's scopes (PUT never touches the tokens), and refreshes
// a token now when the api offers POST /admin/tokens/N/refresh.
func (c *campaign) runAdmin(ctx context.Context, wg *sync.WaitGroup) {
	rng := rand.New(rand.NewPCG(c.s.Seed, c.p.Index*1000+999))
	// Tokens an admin action may touch: not the sample's (its refreshes
	// must not race ours), not the idle lapse batch.
	var touchable []*soakToken
	for _, t := range c.tokens {
		if t.Read && !t.SampleWrites {
			touchable = append(touchable, t)
		}
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(adminEvery/2 + time.Duration(rng.Int64N(int64(adminEvery)))):
			}
			api := rng.IntN(len(c.apis()))
			t := touchable[rng.IntN(len(touchable))]
			switch n := rng.IntN(3); {
			case n == 0:
				c.admin(ctx, "list", "", api, http.MethodGet, "/admin/tokens", "")
			case n == 1 || !c.adminRefresh:
				scopes := []string{"spark:kms", "cjp:config_read"}
				if rng.IntN(2) == 0 {
					scopes = append(scopes, "cjp:config_write")
				}
				body, _ := json.Marshal(map[string]any{"scopes": scopes})
				c.admin(ctx, "put", t.Name, api, http.MethodPut, "/admin/tokens/"+t.Name, string(body))
			default:
				c.admin(ctx, "refresh", t.Name, api, http.MethodPost, "/admin/tokens/"+t.Name+"/refresh", "")
			}
		}
	})
}

// adminTimeout is when an admin request counts as a hang (the api bounds
// its store calls at 10 s).
const adminTimeout = 15 * time.Second

func (c *campaign) admin(ctx context.Context, kind, name string, api int, method, path, body string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
	defer cancel()
	r := request{Kind: kind, Token: name, API: api, Start: time.Now()}
	a := c.do(rctx, method, c.apis()[api].URL()+path, body, c.adminHeader())
	r.End, r.Status = time.Now(), a.Status
	if a.Status == 0 {
		r.Err = errKind(a.Err)
	}
	c.adminBodies.add(string(a.Body))
	c.reqs.add(r)
}

// probeAdminRefresh finds out whether POST /admin/tokens/N/refresh exists
// (issue 8 builds it): Echo answers an unknown route 404 "Not Found",
// unlike the api's own 404 for an unknown token.
func (c *campaign) probeAdminRefresh(ctx context.Context, t *soakToken) bool {
	a := c.do(ctx, http.MethodPost, c.apis()[0].URL()+"/admin/tokens/"+t.Name+"/refresh", "", c.adminHeader())
	return a.Status != http.StatusNotFound && a.Status != http.StatusMethodNotAllowed
}

// probePassphrases sends TOKEN_PASSPHRASE once per token with a
// passphrase of its own and api: each must be refused (401). Once only:
// failures count toward the throttle. Then each such token is read once
// with its own passphrase from each api, so that the argon2id
// verifications (19 MiB each) happen before t0 rather than inside the
// window in which memory must be flat.
func (c *campaign) probePassphrases(ctx context.Context) {
	for _, t := range c.tokens {
		if t.Passphrase == "" {
			continue
		}
		for api := range c.apis() {
			c.get(ctx, t, api, "probe")
			c.get(ctx, t, api, "get")
		}
	}
}
