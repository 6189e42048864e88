// Package devtools holds developer commands that are not part of the
// service: withemulators (runs a command, such as the test suite, with the
// Firestore and Pub/Sub emulators started once for the whole run),
// localstack (the whole service on one machine, for `make run`),
// cloudrunfront (a local Cloud Run front end before a binary started by
// hand), soak (the soak and fault campaign, for `make soak` and part of
// `make test`), bench (`make bench`), attackbench and throttlecheck (what
// an attacker costs the service) and vulncheck (`make vulncheck`).
package devtools
