package token

import "time"

// SweepRecord is what the worker keeps of its last sweep, so that the api
// can show whether the worker is running and what it did (DESIGN section
// 2a). It holds counts only, never a token.
type SweepRecord struct {
	// At is when the sweep ended; Instance is the worker that ran it.
	At       time.Time
	Instance string
	// The counts of the sweep's summary (POST /run).
	Scanned, Due, Refreshed, Failed, Skipped, Warned, Published int
	// Halted: the brake stopped the sweep.
	Halted bool
	// Error is a short, secret-free reason when the sweep itself failed
	// or halted.
	Error    string
	Duration time.Duration
}
