// Package lifecycle is everything that changes a token: the refresh
// protocol shared by the worker and the api (refresh.go: lease, one Webex
// call, conditional commit with the event in the outbox), minting Service
// Apps through it (mint.go), completing an authorization (exchange.go),
// and the operators' use cases (saving a client config, setting a
// passphrase, deleting, refreshing now, authorizing, warning of expiry,
// halting a sweep). The binaries turn HTTP into these calls and the
// model's errors into statuses; every write that emits an event goes
// through this package. Like the model, it imports no database driver and
// no HTTP framework.
package lifecycle
