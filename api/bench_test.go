package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/token"
)

// countingStore counts reads of the real Firestore store underneath.
type countingStore struct {
	Store
	reads atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, name string) (*token.Token, error) {
	c.reads.Add(1)
	return c.Store.Get(ctx, name)
}

// BenchmarkTokenVsBareEcho serves a cached GET /?name= through the whole
// api stack (Echo, middleware, passphrase check, cache, JSON) and, in the
// same run, a bare Echo handler answering a constant body of the same size,
// both over loopback HTTP with keep-alive and the same client. It prints
// the throughput ratio (target: at least 0.8) and the Firestore reads per
// request once the cache is warm (target: 0).
func BenchmarkTokenVsBareEcho(b *testing.B) {
	// The production log level: a 200 writes no log line.
	h := newHarness(b, map[string]string{"LOG_LEVEL": "info"})
	a := h.startAPI(nil)
	counting := &countingStore{Store: a.srv.store}
	a.srv.store = counting
	h.seed("bench", 6*time.Hour, 30*24*time.Hour, nil)
	pass := h.Env["TOKEN_PASSPHRASE"]
	warm := h.token(a, "bench")
	if warm.code != 200 {
		b.Fatalf("warm-up got %d", warm.code)
	}
	body := []byte(warm.raw)

	e := echo.New()
	e.GET("/", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) })
	bare := httptest.NewServer(e)
	b.Cleanup(bare.Close)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	hit := func(b *testing.B, url string) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("x-token-passphrase", pass)
			for pb.Next() {
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	// Rounds alternate, so that neither side profits from warm-up or from
	// a quiet moment of the machine; the median of the rounds' ratios is
	// reported.
	const rounds = 3
	var ratios []float64
	var reads int64
	var n int
	for round := 1; round <= rounds; round++ {
		var bareNs, apiNs float64
		b.Run(fmt.Sprintf("bare/round%d", round), func(b *testing.B) {
			hit(b, bare.URL+"/")
			bareNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
		before := counting.reads.Load()
		b.Run(fmt.Sprintf("token/round%d", round), func(b *testing.B) {
			hit(b, a.url+"/?name=bench")
			apiNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			n += b.N
		})
		reads += counting.reads.Load() - before
		if bareNs > 0 && apiNs > 0 {
			ratios = append(ratios, bareNs/apiNs)
		}
	}
	if len(ratios) == rounds {
		sort.Float64s(ratios)
		fmt.Printf("api/bare throughput ratio: median %.2f of %.2f (target >= 0.80); Firestore reads: %d for %d cached requests\n",
			ratios[rounds/2], ratios, reads, n)
	}
}
