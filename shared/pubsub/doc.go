// Package pubsub is the Pub/Sub adapter: it publishes token events to Pub/Sub (DESIGN section 4).
//
// NewMessage maps a token.Event to a CloudEvents binary-mode Pub/Sub
// message: ce-* attributes, the plain attributes name and generation, the
// token name as ordering key and JSON metadata as data. Events carry no
// token and no secret; this package has no way to add one.
//
// A Relay implements token.Publisher over an Outbox (the store's outbox
// of committed events): Deliver publishes events just committed and, when
// that fails, the Relay retries them in the background until they are
// out; Drain publishes whatever other instances left behind (the worker
// calls it on every sweep). Each event is deleted from the outbox only
// after Pub/Sub accepted it, so an outage or a missing topic delays
// events but never loses one. Delivery is at-least-once: subscribers drop
// duplicates by ce-id and order by the generation attribute (see the
// example).
package pubsub
