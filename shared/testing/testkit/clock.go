package testkit

import (
	"sync/atomic"
	"time"
)

// Clock is the binaries' clock in a test: real time plus an offset that
// the test moves forward, so that waiting out CACHE_MAX_AGE or a lease
// costs no real time. The store, the refresh protocol and the api's cache
// all read it; Firestore's own timestamps and the fake Webex do not. Safe
// for concurrent use; the zero value is real time.
type Clock struct{ offset atomic.Int64 }

// Now is the current time of the clock.
func (c *Clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Set moves the clock to t, forward or back.
func (c *Clock) Set(t time.Time) { c.offset.Store(int64(time.Until(t))) }
