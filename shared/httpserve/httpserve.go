// Package httpserve runs the binaries' HTTP servers the way Cloud Run
// expects: timeouts on every phase of a request, the listener opened by the
// caller before serving, and a graceful shutdown that fits in the 10 s
// between SIGTERM and SIGKILL.
package httpserve

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// ShutdownGrace is how long in-flight requests get after SIGTERM.
const ShutdownGrace = 5 * time.Second

// Options tune a server; zero values take safe defaults.
type Options struct {
	// WriteTimeout bounds writing a response (default 30s).
	WriteTimeout time.Duration
	// Ready, if not nil, receives the listening address once serving.
	Ready chan<- string
}

// Serve runs h on ln until ctx ends, then shuts down within ShutdownGrace.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, o Options) error {
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	if o.Ready != nil {
		o.Ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			hs.Close()
			return nil
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Listen opens the TCP listener for port ("0" picks a free one).
func Listen(port string) (net.Listener, error) {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return nil, fmt.Errorf("listen on port %s: %w", port, err)
	}
	return ln, nil
}

// HolderID names this instance in leases: kind, the Cloud Run revision
// (K_REVISION, read through getenv) or else the host name, the process ID
// and a random part, so two instances never share one.
func HolderID(kind string, getenv func(string) string) string {
	host := getenv("K_REVISION")
	if host == "" {
		host, _ = os.Hostname()
	}
	return kind + "/" + host + "/" + strconv.Itoa(os.Getpid()) + "/" + rand.Text()[:8]
}
