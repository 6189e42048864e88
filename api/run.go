package main

import (
	"context"
	"fmt"
	"io"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/events"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/httpserve"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

// run starts the api and blocks until ctx ends. It logs JSON to logOut.
// When ready is not nil it receives the listening address (tests use port 0).
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := config.Load(config.API, getenv)
	if err != nil {
		return err
	}
	log := logging.New(logOut, logging.ParseLevel(getenv("LOG_LEVEL")))
	if cfg.CORSAllowsAll() {
		log.Warn("CORS_ALLOW_ORIGINS is *: any web page may call this api from a browser; set it to your agent desktop origins")
	}
	if cfg.LegacyState {
		log.Warn("LEGACY_STATE=true: /callback accepts a raw token name as state, so anyone can bind their own Webex account to a token (login CSRF)")
	}

	client, err := gfs.NewClient(ctx, cfg.Project)
	if err != nil {
		return fmt.Errorf("connect to firestore: %w", err)
	}
	defer client.Close()
	sealer, primary, err := firestore.WithKeys(cfg.EncryptionKeys)
	if err != nil {
		return err
	}
	if primary != "" {
		log.Info("encryption at rest on", "primary_key", primary)
	}
	store := firestore.New(client, cfg.Collection, sealer, firestore.WithLogger(log))

	issuer, err := webex.New(webex.Options{TokenURL: cfg.WebexTokenURL, AuthorizeURL: cfg.WebexAuthorizeURL, Timeout: cfg.WebexTimeout})
	if err != nil {
		return err
	}
	relay, closeRelay, err := events.Dial(ctx, cfg.Project, store, events.Options{
		Topic: cfg.EventsTopic, Source: events.Source(cfg.Project, cfg.Collection), Logger: log,
	})
	if err != nil {
		return err
	}
	defer closeRelay()
	m := metrics.New()
	m.WatchEvents(func() metrics.EventStats {
		st := relay.Stats()
		return metrics.EventStats{Published: st.Published, Failed: st.Failed, Backlog: st.Backlog}
	})
	refresher := token.NewRefresher(token.RefresherOptions{
		OnRefresh:    m.Refresh,
		Publisher:    relay,
		Store:        store,
		Issuer:       issuer,
		Holder:       httpserve.HolderID("api"),
		Threshold:    cfg.RefreshThreshold,
		WebexTimeout: cfg.WebexTimeout,
		Logger:       log,
	})
	defer refresher.Close()

	srv := newServer(deps{cfg: cfg, store: store, refresher: refresher, ping: store.Ping,
		admin: store, authorizeURL: issuer.AuthorizeURL, logger: log, metrics: m})

	ln, err := httpserve.Listen(cfg.Port)
	if err != nil {
		return err
	}
	return httpserve.Serve(ctx, ln, srv, log, httpserve.Options{Ready: ready})
}
