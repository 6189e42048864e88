// Package httpserve runs the binaries' HTTP servers the way Cloud Run
// expects: timeouts on every phase of a request, the listener opened by the
// caller before serving, and a graceful shutdown that fits in the 10 s
// between SIGTERM and SIGKILL.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
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
	// Metrics, if not nil, is served on a listener of its own
	// (METRICS_ADDR) next to the main one, and shut down with it.
	Metrics *Metrics
}

// Metrics is GET /metrics on its own listener, typically on loopback for
// a sidecar to scrape, so that it never shows on the public port.
type Metrics struct {
	Listener net.Listener
	Handler  http.Handler
}

// Serve runs h on ln (and o.Metrics on its listener) until ctx ends, then
// shuts both down together within ShutdownGrace. If either server stops
// on its own, the other is shut down and the error returned.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, o Options) error {
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	servers := []*http.Server{newServer(h, o.WriteTimeout, log)}
	listeners := []net.Listener{ln}
	if o.Metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", o.Metrics.Handler) // GET patterns match HEAD too
		servers = append(servers, newServer(mux, 10*time.Second, log))
		listeners = append(listeners, o.Metrics.Listener)
	}
	errc := make(chan error, len(servers))
	for i, hs := range servers {
		go func() { errc <- hs.Serve(listeners[i]) }()
	}
	log.Info("listening", "addr", ln.Addr().String())
	if o.Metrics != nil {
		log.Info("serving /metrics", "addr", o.Metrics.Listener.Addr().String())
	}
	if o.Ready != nil {
		o.Ready <- ln.Addr().String()
	}
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	shutdownErrs := make(chan error, len(servers))
	for _, hs := range servers {
		go func() { shutdownErrs <- shutdown(sctx, hs) }()
	}
	for range servers {
		if err := <-shutdownErrs; err != nil && serveErr == nil {
			serveErr = err
		}
	}
	return serveErr
}

func newServer(h http.Handler, writeTimeout time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: closeOnFaultyFraming(h),
		// One read deadline: ReadTimeout also bounds the headers (net/http
		// uses it when ReadHeaderTimeout is zero), so a client that
		// dribbles its request is cut off after 10 s, and each request
		// costs one deadline less.
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   writeTimeout,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// shutdown lets hs finish its requests until ctx ends, then closes it.
func shutdown(ctx context.Context, hs *http.Server) error {
	if err := hs.Shutdown(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			hs.Close()
			return nil
		}
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Listen opens the TCP listener for port ("0" picks a free one) on every
// interface, as Cloud Run requires. For local runs port may also be
// host:port: the local stack binds 127.0.0.1:N, so that nothing it starts
// is reachable from the network.
func Listen(port string) (net.Listener, error) {
	addr := ":" + port
	if strings.Contains(port, ":") {
		addr = port
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on port %s: %w", port, err)
	}
	return ln, nil
}

// ListenMetrics opens the listener of METRICS_ADDR (host:port, port 0
// picks a free one) for h; "" opens none and returns nil.
func ListenMetrics(addr string, h http.Handler) (*Metrics, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on METRICS_ADDR %s: %w", addr, err)
	}
	return &Metrics{Listener: ln, Handler: h}, nil
}
