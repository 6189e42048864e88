package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPropagationLatency measures, on the emulator, how long a change
// made through one of three api instances takes to be honoured by the
// two others, for each kind of change, with CACHE_MAX_AGE 60 s: the
// time from the admin answer to the first request (or, for a client
// config, which no request shows, the first look at the cache) that
// shows it. It is a measurement, not a check, and runs only when
// PROPAGATION_CHANGES (changes of each kind) is set:
//
//	make bench-agreement
//	PROPAGATION_CHANGES=200 go test -run '^TestPropagationLatency$' -v ./api   # emulators running
func TestPropagationLatency(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PROPAGATION_CHANGES"))
	if n <= 0 {
		t.Skip("a measurement: set PROPAGATION_CHANGES (make bench-agreement)")
	}
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass, "CACHE_MAX_AGE": "60s",
		"AUTH_FAILURE_LIMIT": "1000000", "LOG_LEVEL": "warn"})
	h.Secret(adminPass)
	apis := []*api{h.startAPI(nil), h.startAPI(nil), h.startAPI(nil)}
	first, others := apis[0], apis[1:]
	pass := h.Env["TOKEN_PASSPHRASE"]

	// ask answers GET /?name= from a in process (no network in the way).
	ask := func(a *api, name, passphrase string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/?name="+name, nil)
		req.RemoteAddr = "192.0.2.9:4000"
		req.Header.Set("x-token-passphrase", passphrase)
		w := httptest.NewRecorder()
		a.srv.ServeHTTP(w, req)
		body := w.Body.String()
		_, tok, _ := strings.Cut(body, `"token":"`)
		tok, _, _ = strings.Cut(tok, `"`)
		return w.Code, tok
	}
	warm := func(name, passphrase string) {
		for _, a := range apis {
			if code, _ := ask(a, name, passphrase); code != 200 {
				t.Fatalf("warm-up of %s: got %d", name, code)
			}
		}
	}
	// measure makes change through the first instance, then polls the
	// others until honoured says so, and returns each one's delay.
	results := map[string][]time.Duration{} // from the admin answer
	fromAsk := map[string][]time.Duration{} // from the admin request
	reads := map[string]int{}
	measure := func(kind string, change func(), honoured func(a *api) bool) {
		before := 0
		for _, a := range others {
			before += a.store.Reads()
		}
		asked := time.Now()
		change()
		done := time.Now()
		var wg sync.WaitGroup
		delays := make([]time.Duration, len(others))
		for i, a := range others {
			wg.Go(func() {
				limit := done.Add(2 * time.Minute)
				for !honoured(a) {
					if time.Now().After(limit) {
						t.Errorf("%s: instance %d never honoured the change", kind, i+2)
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
				delays[i] = time.Since(done)
			})
		}
		wg.Wait()
		results[kind] = append(results[kind], delays...)
		for _, d := range delays {
			fromAsk[kind] = append(fromAsk[kind], d+done.Sub(asked))
		}
		for _, a := range others {
			reads[kind] += a.store.Reads()
		}
		reads[kind] -= before
	}

	// Deletions: a token of its own each.
	for i := range n {
		name := fmt.Sprintf("del-%03d", i)
		h.seed(name, 6*time.Hour, 30*24*time.Hour, nil)
		warm(name, pass)
		measure("delete → 404", func() {
			if r := do(t, http.MethodDelete, first.url+"/admin/tokens/"+name, "", admin(nil)); r.code != 200 {
				t.Fatalf("delete: %d %s", r.code, r.raw)
			}
		}, func(a *api) bool { code, _ := ask(a, name, pass); return code == 404 })
	}

	// Passphrases: one token whose own passphrase changes each time; the
	// previous one must be refused.
	h.seed("pass", 6*time.Hour, 30*24*time.Hour, nil)
	old := pass
	for i := range n {
		own := fmt.Sprintf("own-passphrase-%04d-abcdefgh", i)
		h.Secret(own)
		warm("pass", old)
		measure("passphrase → old refused", func() {
			if r := do(t, http.MethodPut, first.url+"/admin/tokens/pass", `{"passphrase":"`+own+`"}`, admin(nil)); r.code != 200 {
				t.Fatalf("passphrase: %d %s", r.code, r.raw)
			}
		}, func(a *api) bool { code, _ := ask(a, "pass", old); return code == 401 })
		old = own
	}

	// Client configs: the cache shows the new client ID.
	h.seed("config", 6*time.Hour, 30*24*time.Hour, nil)
	for i := range n {
		id := fmt.Sprintf("client-%04d", i)
		warm("config", pass)
		measure("client config → cached", func() {
			body := `{"clientId":"` + id + `","clientSecret":"secret-` + id + `","redirectUri":"https://x.example/callback"}`
			if r := do(t, http.MethodPut, first.url+"/admin/tokens/config", body, admin(nil)); r.code != 200 {
				t.Fatalf("client config: %d %s", r.code, r.raw)
			}
		}, func(a *api) bool {
			e := a.srv.cache.get("config")
			return e != nil && e.tok != nil && e.tok.ClientID == id
		})
	}

	// Rotations: Refresh now through the first instance; the others serve
	// the new access token.
	h.seed("rotated", 6*time.Hour, 30*24*time.Hour, nil)
	for range n {
		warm("rotated", pass)
		var fresh string
		measure("rotation → new token served", func() {
			if r := do(t, http.MethodPost, first.url+"/admin/tokens/rotated/refresh", "", admin(nil)); r.code != 200 {
				t.Fatalf("refresh now: %d %s", r.code, r.raw)
			}
			_, fresh = ask(first, "rotated", pass)
			h.Secret(fresh)
		}, func(a *api) bool { _, tok := ask(a, "rotated", pass); return tok == fresh })
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\nPropagation over %d changes of each kind, 3 api instances, CACHE_MAX_AGE 60s (delay from the admin answer to the other instance honouring it; 2 instances each):\n\n", n)
	b.WriteString("| change | samples | p50 | p99 | max | p50, p99 from the admin request | store reads per change per other instance |\n|---|---|---|---|---|---|---|\n")
	for _, kind := range []string{"delete → 404", "passphrase → old refused", "client config → cached", "rotation → new token served"} {
		d, a := results[kind], fromAsk[kind]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		slices.Sort(a)
		q := func(d []time.Duration, p float64) time.Duration {
			return d[min(len(d)-1, int(p*float64(len(d))))].Round(100 * time.Microsecond)
		}
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %v | %v, %v | %.2f |\n", kind, len(d), q(d, 0.5), q(d, 0.99), q(d, 1),
			q(a, 0.5), q(a, 0.99), float64(reads[kind])/float64(n*len(others)))
	}
	fmt.Print(b.String())
}
