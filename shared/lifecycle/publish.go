package lifecycle

import "github.com/wxcc/tokenservice/shared/token"

// Publish hands events that the caller committed to the outbox itself
// (an admin's delete) to the publisher, as the protocol does with its
// own: without holding up the caller, and waited for by Close. Without a
// publisher, or once Close began, they wait in the outbox for the worker.
func (r *Refresher) Publish(events []token.Event) { r.deliver(events) }
