// Package emulator is test support for packages that need the Firestore or
// Pub/Sub emulator. In TestMain, Main reuses an emulator named by
// FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST (CI starts them once per
// run) or starts a private one on a free loopback port and stops it after
// the tests. An emulator that cannot start is an error, never a skip.
//
// Start, StartFirestore and StartPubSub are exported for a local stack that
// wants the same start and stop logic outside of tests.
package emulator
