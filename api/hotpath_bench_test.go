package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// discardWriter is a ResponseWriter that keeps nothing, so that the
// handler benchmarks measure the handler, not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHotPathHandler runs a cached GET /?name= through the api's
// handler (every middleware, the passphrase check, the cache, the body)
// and, beside it, a bare Echo handler answering the same body, without a
// network, so that a CPU profile shows where the api's own time goes:
//
//	go test -run '^$' -bench HotPathHandler -cpuprofile cpu.out ./api
func BenchmarkHotPathHandler(b *testing.B) {
	h := newHarness(b, map[string]string{"LOG_LEVEL": "info"})
	a := h.startAPI(nil)
	h.seed("bench", 6*time.Hour, 30*24*time.Hour, nil)
	warm := h.token(a, "bench")
	if warm.code != 200 {
		b.Fatalf("warm-up got %d", warm.code)
	}
	body := []byte(warm.raw)
	bare := echo.New()
	bare.GET("/", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) })

	serve := func(b *testing.B, hd http.Handler) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest(http.MethodGet, "/?name=bench", nil)
			req.RemoteAddr = "192.0.2.7:41234"
			req.Header.Set("x-token-passphrase", h.Env["TOKEN_PASSPHRASE"])
			w := &discardWriter{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				hd.ServeHTTP(w, req)
			}
		})
	}
	b.Run("bare", func(b *testing.B) { serve(b, bare) })
	b.Run("api", func(b *testing.B) { serve(b, a.srv) })
}
