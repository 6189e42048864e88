package main

import (
	"context"
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
// re-seal; it fails only if the walk itself did.
func reseal(ctx context.Context, store *firestore.Store, stdout io.Writer, log *slog.Logger) error {
	n, err := store.Reseal(ctx, resealPageSize, func(name string, err error) {
		log.Error("cannot re-seal token", "token", name, "error", err.Error())
	})
	writeJSON(stdout, resealSummary{Scanned: n.Scanned, Resealed: n.Resealed, AlreadyCurrent: n.Current, Failed: n.Failed})
	if err != nil {
		return err
	}
	log.Info("re-seal done", "scanned", n.Scanned, "resealed", n.Resealed, "already_current", n.Current, "failed", n.Failed)
	return nil
}
