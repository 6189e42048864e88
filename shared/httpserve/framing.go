package httpserve

import "net/http"

// closeOnFaultyFraming closes the connection after answering a request
// whose framing a proxy in front might have read differently (RFC 9112
// section 6.1), so no bytes that followed it on the connection are read
// as another request:
//
//   - any Transfer-Encoding on HTTP/1.1. With both Transfer-Encoding and
//     Content-Length the RFC lets a server process it by
//     Transfer-Encoding if it closes the connection after responding.
//     net/http does process it so, but keeps the connection; and it
//     deletes Content-Length before the handler runs, so "both" cannot be
//     told from chunked alone: every chunked request closes. Clients of
//     these binaries send bodies with a Content-Length; one that streams
//     chunked just opens a new connection.
//   - HTTP/1.0, which the RFC says to close whenever it carries a
//     Transfer-Encoding; net/http drops that header on HTTP/1.0 before
//     the handler runs, frames by Content-Length and honours
//     "Connection: keep-alive", so every HTTP/1.0 request closes.
//
// Everything else costs a length check and a comparison, nothing
// allocated.
func closeOnFaultyFraming(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) != 0 || !r.ProtoAtLeast(1, 1) {
			// The server closes after the reply when the answer says so.
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
