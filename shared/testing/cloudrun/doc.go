// Package cloudrun imitates, on one machine, the parts of Cloud Run's front
// end that the token service relies on, so that tests and the local stack
// deliver requests to the binaries as Cloud Run does:
//
//   - Issuer stands in for Google's ID token issuer: its own RSA key, its
//     JWK set and discovery document at its own URL, and ID tokens minted
//     as Cloud Scheduler or a Pub/Sub push subscription sends them (iss
//     https://accounts.google.com, aud, azp, sub, email, email_verified,
//     iat, exp one hour later).
//   - Serve puts a front end before a service: the IAM check (a bearer ID
//     token verified against the Issuer, for the service's URL or a custom
//     audience, from an invoker; refused with 403 or 401 as Cloud Run
//     refuses), or no check at all for a public service; then, for an
//     admitted request, the token's signature replaced with
//     SIGNATURE_REMOVED_BY_GOOGLE, the client address appended to
//     X-Forwarded-For, X-Forwarded-Proto https, X-Cloud-Trace-Context;
//     reserved paths and requests over 32 MiB answered by the front end
//     itself.
//
// What it imitates and what it does not is written down in
// shared/docs/local-cloud-run.md. It imports no framework, only the
// standard library, so tests and developer commands can both use it.
package cloudrun
