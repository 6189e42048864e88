package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wxcc/tokenservice/api/console"
	"github.com/wxcc/tokenservice/shared/bootstrap"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/httpserve"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/webexlogin"
)

// run starts the api and blocks until ctx ends. It logs JSON to logOut.
// When ready is not nil it receives the listening address (tests use port 0).
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := config.Load(config.API, getenv)
	if err != nil {
		return err
	}
	log := logging.New(logOut, logging.ParseLevel(getenv("LOG_LEVEL")))

	core, err := bootstrap.Open(ctx, cfg, bootstrap.Options{Kind: "api", Metrics: metrics.New(metrics.API, metrics.TokenNames(cfg.MetricsAddr != "")), Logger: log, Getenv: getenv})
	if err != nil {
		return err
	}
	defer core.Close()

	srv, err := newAPI(cfg, core, log, time.Now)
	if err != nil {
		return err
	}
	for _, w := range srv.startWarnings {
		log.Warn(w)
	}
	// Stopped before core.Close (deferred calls run last first).
	defer srv.startFollowing(ctx, core.Store)()

	private, err := httpserve.ListenMetrics(cfg.MetricsAddr, core.Metrics.Handler())
	if err != nil {
		return err
	}
	ln, err := httpserve.Listen(cfg.Port)
	if err != nil {
		if private != nil {
			private.Listener.Close()
		}
		return err
	}
	return httpserve.Serve(ctx, ln, srv, log, httpserve.Options{Ready: ready, Metrics: private})
}

// newAPI builds the api over the parts both binaries share.
func newAPI(cfg *config.Config, core *bootstrap.Core, log *slog.Logger, now func() time.Time) (*server, error) {
	d := deps{cfg: cfg, store: core.Store, service: core.Service,
		sessions: core.Store.Sessions(), activity: core.Store.Activity(), recorder: core.Activity,
		authorizeURL: core.Webex.AuthorizeURL, logger: log, metrics: core.Metrics, now: now}
	if cfg.SignInWithWebex() {
		access, err := people.NewAccess(cfg.ConsoleOperators, cfg.ConsoleViewers, cfg.ConsoleOrgID)
		if err != nil {
			return nil, fmt.Errorf("console sign-in: %w", err)
		}
		login, err := webexlogin.New(webexlogin.Options{Issuer: cfg.ConsoleOIDCIssuer, ClientID: cfg.ConsoleOIDCClientID,
			ClientSecret: cfg.ConsoleOIDCClientSecret, RedirectURL: cfg.ConsoleURL + console.WebexCallbackPath,
			People: core.Webex, Timeout: cfg.WebexTimeout, Now: now})
		if err != nil {
			return nil, fmt.Errorf("console sign-in: %w", err)
		}
		d.access, d.login = access, login
	}
	return newServer(d), nil
}
