// Package wire builds the parts both binaries share from the configuration:
// the Firestore store (with encryption at rest when keys are configured),
// the Webex client, the event relay, the metrics and the refresh protocol.
// Each binary's main only adds its own HTTP wiring.
package wire

import (
	"context"
	"fmt"
	"log/slog"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/events"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/httpserve"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

// Core is the shared machinery of one process.
type Core struct {
	Store     *firestore.Store
	Webex     *webex.Client
	Relay     *events.Relay // nil when Pub/Sub could not be reached
	Metrics   *metrics.Metrics
	Refresher *token.Refresher
	closers   []func()
}

// Open connects to Firestore and Pub/Sub (or their emulators) and builds
// the parts. kind ("api" or "worker") names this instance in leases.
func Open(ctx context.Context, cfg *config.Config, kind string, log *slog.Logger) (*Core, error) {
	c := &Core{}
	client, err := gfs.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("connect to firestore: %w", err)
	}
	c.closers = append(c.closers, func() { client.Close() })
	sealer, primary, err := firestore.WithKeys(cfg.EncryptionKeys)
	if err != nil {
		c.Close()
		return nil, err
	}
	if primary != "" {
		log.Info("encryption at rest on", "primary_key", primary)
	}
	c.Store = firestore.New(client, cfg.Collection, sealer, firestore.WithLogger(log))
	c.Webex, err = webex.New(webex.Options{TokenURL: cfg.WebexTokenURL, AuthorizeURL: cfg.WebexAuthorizeURL, Timeout: cfg.WebexTimeout})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Metrics = metrics.New()
	var publisher token.Publisher
	relay, closeRelay, err := events.Dial(ctx, cfg.Project, c.Store, events.Options{
		Topic: cfg.EventsTopic, Source: events.Source(cfg.Project, cfg.Collection), Logger: log,
	})
	if err != nil {
		// Tokens matter more than events: serve and refresh anyway; the
		// events wait in the outbox for a process that can publish them.
		log.Error("pub/sub unavailable: events wait in the outbox", "error", err.Error())
	} else {
		c.Relay, publisher = relay, relay
		c.closers = append(c.closers, closeRelay)
		c.Metrics.WatchEvents(func() metrics.EventStats {
			st := relay.Stats()
			return metrics.EventStats{Published: st.Published, Failed: st.Failed, Backlog: st.Backlog}
		})
	}
	c.Refresher = token.NewRefresher(token.RefresherOptions{
		Store: c.Store, Issuer: c.Webex, Publisher: publisher, OnRefresh: c.Metrics.Refresh,
		Holder:       httpserve.HolderID(kind),
		Threshold:    cfg.RefreshThreshold,
		WebexTimeout: cfg.WebexTimeout,
		Logger:       log,
	})
	// Closed first: aborts Webex calls, releases leases, waits for deliveries.
	c.closers = append(c.closers, c.Refresher.Close)
	return c, nil
}

// Close releases everything, in reverse order of opening.
func (c *Core) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}
