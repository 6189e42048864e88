package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/wxcc/tokenservice/shared/firestore"
)

// resealSummary is what worker -reseal prints on stdout.
type resealSummary struct {
	Scanned        int `json:"scanned"`
	Resealed       int `json:"resealed"`
	AlreadyCurrent int `json:"alreadyCurrent"`
	Failed         int `json:"failed"`
}

// resealPageSize is how many documents one query of the walk reads.
const resealPageSize = 300

// reseal seals every token's secrets under the primary key of
// TOKEN_ENCRYPTION_KEYS now (worker -reseal), through the store's
// conditional writes, so a concurrent refresh is never overwritten. It
// prints the counts as JSON on stdout and logs each token it could not
// re-seal. It fails if the walk failed or any token could not be
// re-sealed: a key rotation must not move on (and retire the old key)
// while a value is still sealed under it, and a job's exit status is what
// an operator or a script looks at.
func reseal(ctx context.Context, store *firestore.Store, stdout io.Writer, log *slog.Logger) error {
	n, err := store.Reseal(ctx, resealPageSize, func(name string, err error) {
		log.Error("cannot re-seal token", "token", name, "error", err.Error())
	})
	writeJSON(stdout, resealSummary{Scanned: n.Scanned, Resealed: n.Resealed, AlreadyCurrent: n.Current, Failed: n.Failed})
	if err != nil {
		return err
	}
	log.Info("re-seal done", "scanned", n.Scanned, "resealed", n.Resealed, "already_current", n.Current, "failed", n.Failed)
	if n.Failed > 0 {
		return fmt.Errorf("re-seal: %d of %d tokens failed (the log names each and the key id it lacks); keep every key until a run reports none", n.Failed, n.Scanned)
	}
	return nil
}
