package firestore

import (
	"context"
	"fmt"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// The last sweep is the map field "last" of the document "sweeps" in the
// meta collection (DESIGN: sweeps/last of META_COLLECTION). Times are
// integer milliseconds, as in token documents.
const (
	sweepsDoc = "sweeps"
	fLast     = "last"
)

// RecordSweep stores rec as the last sweep, replacing the one before.
func (s *Store) RecordSweep(ctx context.Context, rec token.SweepRecord) error {
	last := map[string]any{
		"at":         rec.At.UnixMilli(),
		"instance":   rec.Instance,
		"scanned":    int64(rec.Scanned),
		"due":        int64(rec.Due),
		"refreshed":  int64(rec.Refreshed),
		"failed":     int64(rec.Failed),
		"skipped":    int64(rec.Skipped),
		"warned":     int64(rec.Warned),
		"published":  int64(rec.Published),
		"halted":     rec.Halted,
		"durationMs": rec.Duration.Milliseconds(),
	}
	putString(last, "error", rec.Error)
	if _, err := s.meta.Doc(sweepsDoc).Set(ctx, map[string]any{fLast: last}); err != nil {
		return fmt.Errorf("record sweep: %w", translate(err, false))
	}
	return nil
}

// LastSweep reads the last sweep recorded; token.ErrNotFound if none was.
func (s *Store) LastSweep(ctx context.Context) (*token.SweepRecord, error) {
	snap, err := s.meta.Doc(sweepsDoc).Get(ctx)
	s.reads.Add(1)
	if err != nil {
		return nil, fmt.Errorf("last sweep: %w", translate(err, false))
	}
	m, ok := snap.Data()[fLast].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("last sweep: %w", token.ErrNotFound)
	}
	var bad []string
	d := decoder{data: m, bad: &bad}
	count := func(f string) int { n, _ := d.int(f); return int(n) }
	ms, _ := d.int("durationMs")
	rec := &token.SweepRecord{
		At: d.millis("at"), Instance: d.string("instance"),
		Scanned: count("scanned"), Due: count("due"), Refreshed: count("refreshed"), Failed: count("failed"),
		Skipped: count("skipped"), Warned: count("warned"), Published: count("published"),
		Halted: d.bool("halted"), Error: d.string("error"), Duration: time.Duration(ms) * time.Millisecond,
	}
	if len(bad) > 0 {
		s.log.Warn("ignoring malformed fields of the last sweep record", "fields", bad)
	}
	return rec, nil
}
