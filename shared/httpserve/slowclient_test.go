package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestSlowClientsAreCutOff: with ReadTimeout the only read deadline, a
// client that never finishes its headers (slowloris), or keeps them
// coming a byte at a time, still loses its connection, and the handler
// never runs for it.
func TestSlowClientsAreCutOff(t *testing.T) {
	ln, err := Listen("0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served <- struct{}{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, slog.New(slog.DiscardHandler), Options{}) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, tc := range []struct {
		name    string
		dribble bool
	}{
		{name: "headers never finished"},
		{name: "headers dribbled a byte a second", dribble: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: example.com\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(c) // returns once the server closes the connection
				closed <- err
			}()
			// Far beyond ReadTimeout: the server must have given up by then.
			limit := time.After(time.Minute)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-closed:
					select {
					case <-served:
						t.Fatal("the handler ran for a request whose headers never ended")
					default:
					}
					return
				case <-tick.C:
					if tc.dribble {
						_, _ = io.WriteString(c, "x") // fails once the server closed
					}
				case <-limit:
					t.Fatal("the server still holds the connection of a client that never finished its headers")
				}
			}
		})
	}
}
