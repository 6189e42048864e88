package webexfake

import (
	"net"
	"net/http"
)

// FaultKind is a way the token endpoint misbehaves.
type FaultKind int

// Fault kinds. Every kind but FaultLostAnswer answers before looking at
// the grant, so the fake's tokens and codes are left as they were.
const (
	// FaultStatus answers Fault.Status (500 if 0) with a JSON error body.
	FaultStatus FaultKind = iota + 1
	// FaultRateLimit answers 429 with Fault.RetryAfter as Retry-After
	// (no header if empty).
	FaultRateLimit
	// FaultInvalidGrant answers 400 invalid_grant, whatever was sent.
	FaultInvalidGrant
	// FaultMalformed answers 200 with a body that is not JSON.
	FaultMalformed
	// FaultHang answers nothing until the request's context ends.
	FaultHang
	// FaultLostAnswer makes the grant (a rotated refresh token replaces
	// the old one, a code is used up) and then hangs like FaultHang: the
	// client never learns the result.
	FaultLostAnswer
	// FaultReset resets the connection (TCP RST) without an answer.
	FaultReset
)

// Fault is one misbehaviour of the token endpoint.
type Fault struct {
	Kind FaultKind
	// Status is the HTTP status of FaultStatus (default 500).
	Status int
	// RetryAfter is the Retry-After header of FaultRateLimit (or
	// FaultStatus), seconds or an HTTP-date, sent verbatim.
	RetryAfter string
}

// ServerError is a FaultStatus with status.
func ServerError(status int) Fault { return Fault{Kind: FaultStatus, Status: status} }

// RateLimited is a FaultRateLimit with the given Retry-After value.
func RateLimited(retryAfter string) Fault { return Fault{Kind: FaultRateLimit, RetryAfter: retryAfter} }

// FailNext makes the next n calls of the token endpoint show fault, after
// any already queued. Queued faults come before one set by FailAlways.
func (f *Fake) FailNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.queue(n, fault)
}

// FailAlways makes every call of the token endpoint show fault, once the
// queued ones are used up, until ClearFaults.
func (f *Fake) FailAlways(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults.always = &fault
}

// ClearFaults removes queued faults and the one set by FailAlways.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faultQueue{}
}

// A faultQueue is one endpoint's faults: those queued by its Fail…Next,
// each shown once, then the standing one of its Fail…Always. The zero
// value shows none. The Fake's mutex guards it.
type faultQueue struct {
	queued []Fault
	always *Fault
}

// queue adds n faults after those already queued.
func (q *faultQueue) queue(n int, ft Fault) {
	for range n {
		q.queued = append(q.queued, ft)
	}
}

// next takes the fault for this call, if any.
func (q *faultQueue) next() (Fault, bool) {
	if len(q.queued) > 0 {
		ft := q.queued[0]
		q.queued = q.queued[1:]
		return ft, true
	}
	if q.always != nil {
		return *q.always, true
	}
	return Fault{}, false
}

// answerFault writes the answer of every kind but the lost answer.
func answerFault(w http.ResponseWriter, r *http.Request, ft Fault, stop <-chan struct{}) {
	switch ft.Kind {
	case FaultRateLimit:
		if ft.RetryAfter != "" {
			w.Header().Set("Retry-After", ft.RetryAfter)
		}
		writeError(w, http.StatusTooManyRequests, "rate_limited", "Too many requests.")
	case FaultInvalidGrant:
		writeError(w, http.StatusBadRequest, "invalid_grant", "The refresh token provided is expired, revoked, malformed, or invalid.")
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token": "fake-at-trunc`))
	case FaultHang, FaultLostAnswer:
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	case FaultReset:
		reset(w)
	default:
		status := ft.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if ft.RetryAfter != "" {
			w.Header().Set("Retry-After", ft.RetryAfter)
		}
		writeError(w, status, "server_error", http.StatusText(status))
	}
}

// reset closes the connection under w with SO_LINGER 0, so the client
// sees a reset rather than an answer. Without a hijackable connection
// (HTTP/2) it aborts the answer instead.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
