// Package bootstrap builds the parts both binaries share from the configuration:
// the Firestore store (with encryption at rest when keys are configured),
// the Webex client, the event relay, the metrics and the refresh protocol.
// Each binary's main only adds its own HTTP wiring.
package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/metrics"
	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

// Core is the shared machinery of one process.
type Core struct {
	Store   *firestore.Store
	Webex   *webex.Client
	Relay   *pubsub.Relay // nil when Pub/Sub could not be reached
	Metrics *metrics.Metrics
	// Service is the refresh protocol and the use cases over the store.
	Service *lifecycle.Service
	// Activity records who did what (DESIGN 2b) into Store.Activity()
	// and the log; Close flushes it after the refresher, before the
	// Firestore client closes.
	Activity *activity.Async
	closers  []func()
}

// Options are what Open needs beyond the configuration. Tests inject
// their own clients and clock; the binaries leave them nil.
type Options struct {
	// Kind ("api" or "worker") names this instance in leases.
	Kind string
	// Metrics are the binary's own (metrics.New(metrics.API) or Worker);
	// nil: a set that nobody serves.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Getenv reads the environment of the process (K_REVISION).
	Getenv func(string) string
	// Firestore and PubSub, if set, are used instead of connecting; they
	// stay the caller's to close.
	Firestore *gfs.Client
	PubSub    *gps.Client
	// Now is the clock of the store and the refresh protocol (time.Now).
	Now func() time.Time
	// Relay's non-zero fields replace what Open derives from the
	// configuration (tests shorten PublishTimeout).
	Relay pubsub.Options
}

// Open connects to Firestore and Pub/Sub (or their emulators) and builds
// the parts.
func Open(ctx context.Context, cfg *config.Config, o Options) (*Core, error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	c := &Core{}
	client := o.Firestore
	if client == nil {
		var err error
		client, err = gfs.NewClient(ctx, cfg.Project)
		if err != nil {
			return nil, fmt.Errorf("connect to firestore: %w", err)
		}
		c.closers = append(c.closers, func() { client.Close() })
	}
	sealer, primary, err := firestore.WithKeys(cfg.EncryptionKeys)
	if err != nil {
		c.Close()
		return nil, err
	}
	if primary != "" {
		log.Info("encryption at rest on", "primary_key", primary)
	}
	c.Store = firestore.New(client, cfg.Collection, sealer, firestore.WithLogger(log), firestore.WithClock(o.Now),
		firestore.WithMetaCollection(cfg.MetaCollection), firestore.WithActivity(cfg.ActivityCollection, cfg.ActivityRetention))
	c.Activity = activity.NewAsync(c.Store.Activity(), activity.Options{Logger: log, Now: o.Now})
	c.closers = append(c.closers, c.Activity.Close)
	c.Webex, err = webex.New(webex.Options{TokenURL: cfg.WebexTokenURL, AuthorizeURL: cfg.WebexAuthorizeURL, APIURL: cfg.WebexAPIURL, Timeout: cfg.WebexTimeout})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Metrics = o.Metrics
	if c.Metrics == nil {
		c.Metrics = metrics.New(metrics.API)
	}
	var publisher token.Publisher
	relayOpts := o.Relay
	if relayOpts.Topic == "" {
		relayOpts.Topic = cfg.EventsTopic
	}
	if relayOpts.Source == "" {
		relayOpts.Source = pubsub.Source(cfg.Project, cfg.Collection)
	}
	if relayOpts.Logger == nil {
		relayOpts.Logger = log
	}
	var relay *pubsub.Relay
	if o.PubSub != nil {
		relay = pubsub.New(o.PubSub, c.Store, relayOpts)
		c.closers = append(c.closers, relay.Close)
	} else if r, closeRelay, err := pubsub.Dial(ctx, cfg.Project, c.Store, relayOpts); err != nil {
		// Tokens matter more than events: serve and refresh anyway; the
		// events wait in the outbox for a process that can publish them.
		log.Error("pub/sub unavailable: events wait in the outbox", "error", err.Error())
	} else {
		relay = r
		c.closers = append(c.closers, closeRelay)
	}
	if relay != nil {
		c.Relay, publisher = relay, relay
		c.Metrics.WatchEvents(func() metrics.EventStats {
			st := relay.Stats()
			return metrics.EventStats{Published: st.Published, Failed: st.Failed, Backlog: st.Backlog}
		})
	}
	refresher := lifecycle.NewRefresher(lifecycle.RefresherConfig{
		Store: c.Store, Issuer: c.Webex, Publisher: publisher, OnRefresh: c.Metrics.Refresh,
		Now:          o.Now,
		Holder:       lifecycle.HolderID(o.Kind, o.Getenv),
		Threshold:    cfg.RefreshThreshold,
		WebexTimeout: cfg.WebexTimeout,
		Logger:       log,
	})
	deps := lifecycle.Deps{Store: c.Store, Activity: c.Activity, People: c.Webex, HashPassphrase: passphrase.Hash,
		Links: c.Store.Links(), LinkTTL: cfg.AuthorizeLinkTTL}
	if relay != nil {
		deps.Alerts = relay
	}
	c.Service = lifecycle.New(refresher, deps)
	// Closed first: aborts Webex calls, releases leases, waits for deliveries.
	c.closers = append(c.closers, refresher.Close)
	return c, nil
}

// Close releases everything, in reverse order of opening.
func (c *Core) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}
