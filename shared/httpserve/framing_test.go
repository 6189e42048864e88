package httpserve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// serveEcho runs Serve on a free port with a handler that answers
// "<method> <path> body=<body>", or 400 when the body cannot be read.
func serveEcho(t *testing.T) string {
	t.Helper()
	ln, err := Listen("0")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.Path+" body="+string(b))
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, slog.New(slog.DiscardHandler), Options{Ready: ready}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "127.0.0.1:" + portOf(<-ready)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

type answer struct {
	status int
	close  bool // the answer says Connection: close
	body   string
}

// exchange writes raw to a new connection as it is and reads up to want
// answers; fewer come back when the server closes the connection first.
func exchange(t *testing.T, addr, raw string, want int) []answer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // a guard against hanging, not an assertion
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var got []answer
	for len(got) < want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer and no close after %d answers", len(got))
			}
			break // closed (EOF or reset)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, answer{resp.StatusCode, resp.Close, string(b)})
	}
	return got
}

const second = "GET /second HTTP/1.1\r\nHost: x\r\n\r\n"

// TestFramingOnRawConnections: what a client writing raw bytes gets from
// an httpserve server, request by request. A second request follows on
// the same connection each time: it is answered only if the connection
// was kept.
func TestFramingOnRawConnections(t *testing.T) {
	addr := serveEcho(t)
	tests := []struct {
		name string
		raw  string
		want []answer
	}{
		{
			// A proxy framing by Content-Length sees one request with a
			// 40-byte body; net/http frames by Transfer-Encoding and would
			// read the rest as a request of its own, were the connection
			// kept.
			name: "content-length and transfer-encoding",
			raw: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []answer{{200, true, "POST /a body="}},
		},
		{
			name: "chunked",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + second,
			want: []answer{{200, true, "POST /a body=hello"}},
		},
		{
			// net/http ignores Transfer-Encoding on HTTP/1.0 and frames by
			// Content-Length; the RFC says to close.
			name: "http/1.0 keep-alive with transfer-encoding",
			raw:  "POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello" + second,
			want: []answer{{200, true, "POST /a body=hello"}},
		},
		{
			name: "content-length only keeps the connection",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" + second,
			want: []answer{{200, false, "POST /a body=hello"}, {200, false, "GET /second body="}},
		},
		{
			// RFC 9112 section 2.2: a recipient MAY take a bare LF as the
			// end of a line in the start line and the fields; net/http
			// does, the same way for every line, and so do we.
			name: "bare LF line ends",
			raw:  "POST /a HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello" + second,
			want: []answer{{200, false, "POST /a body=hello"}, {200, false, "GET /second body="}},
		},
		{
			// Where a line end decides the body's length, net/http
			// wants CRLF: the body does not read, and the connection
			// closes.
			name: "bare LF in chunked framing",
			raw:  "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + second,
			want: []answer{{400, true, "unreadable body\n"}},
		},
		{
			name: "bare CR in a field",
			raw:  "GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n" + second,
			want: []answer{{400, true, "400 Bad Request"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exchange(t, addr, tt.raw, 2)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d answers %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("answer %d: got %+v, want %+v", i+1, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestFramingCheckAllocatesNothing: the check runs on every request,
// the api's cached GET /?name= included.
func TestFramingCheckAllocatesNothing(t *testing.T) {
	h := closeOnFaultyFraming(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/?name=x", nil)
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Fatalf("got %v allocations per request, want 0", n)
	}
	if w.Header().Get("Connection") != "" {
		t.Fatalf("a plain GET got Connection: %q", w.Header().Get("Connection"))
	}
}

func BenchmarkFramingCheck(b *testing.B) {
	h := closeOnFaultyFraming(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/?name=x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
