// Package passphrase handles the passphrases that open tokens.
//
// A token's own passphrase is stored only as a salted argon2id hash in PHC
// string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), made by Hash
// and checked by Verify. Verifier puts an in-memory memo of verified
// passphrases in front of Verify, so the hot path costs a map lookup rather
// than tens of milliseconds of argon2id, and a Queue behind it, so that
// argon2id cannot be made the way to take the service down: a few
// computations at a time, callers that recently presented a right
// passphrase first, fair between addresses, and ErrBusy (429) for what
// cannot wait. Configured checks a caller's passphrase
// against the service-wide TOKEN_PASSPHRASE and TOKEN_PASSPHRASE_PREVIOUS in
// constant time.
//
// The package imports no database or HTTP framework.
package passphrase
