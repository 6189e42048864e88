package cloudrun

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// MaxRequestBytes is Cloud Run's limit on an HTTP/1 request body (32 MiB);
// a larger request gets 413 and never reaches the container.
const MaxRequestBytes = 32 << 20

// DefaultTimeout is Cloud Run's default request timeout.
const DefaultTimeout = 5 * time.Minute

// RemovedSignature replaces an admitted ID token's signature segment.
const RemovedSignature = "SIGNATURE_REMOVED_BY_GOOGLE"

// Service is what the front end knows of the Cloud Run service behind it.
type Service struct {
	// Upstream is the container's base URL, e.g. http://127.0.0.1:8081.
	Upstream string
	// Invokers are the e-mails of the accounts granted roles/run.invoker
	// on the service (compared case-insensitively).
	Invokers []string
	// NoInvokerIAMCheck admits every request without a token, as a
	// service deployed with --no-invoker-iam-check (or allUsers as
	// invoker): the Authorization header then reaches the container
	// unchanged.
	NoInvokerIAMCheck bool
	// CustomAudiences are accepted as aud besides the service's URL.
	CustomAudiences []string
	// Timeout is the request timeout (DefaultTimeout if 0); past it the
	// front end answers 504.
	Timeout time.Duration
	// Log, if not nil, gets one line per request, as Cloud Run's request
	// log, with the reason of a refusal. It never holds a token.
	Log *slog.Logger
}

// Front is a local stand-in for Cloud Run's front end in front of one
// service. Make one with Serve.
type Front struct {
	// URL is the service's URL, the audience its ID tokens carry.
	URL string

	srv       *http.Server
	forwarded atomic.Int64
}

// URLOf is the service URL a front end serving on ln has: give it to the
// service (as its audience) before calling Serve.
func URLOf(ln net.Listener) string { return "http://" + ln.Addr().String() }

// Serve serves s behind the front end on ln until Close, checking ID
// tokens against iss.
func Serve(ln net.Listener, iss *Issuer, s Service) (*Front, error) {
	f := &Front{URL: URLOf(ln)}
	h, err := f.handler(iss, s)
	if err != nil {
		return nil, err
	}
	f.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go f.srv.Serve(ln)
	return f, nil
}

// Close stops serving, letting requests in flight finish for up to 5 s.
func (f *Front) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		return f.srv.Close()
	}
	return nil
}

// Forwarded is how many requests reached the service.
func (f *Front) Forwarded() int64 { return f.forwarded.Load() }

// handler builds the front end's request handling: size, method and
// reserved path checks, the IAM check, then the request rewritten as
// Cloud Run delivers it.
func (f *Front) handler(iss *Issuer, s Service) (http.Handler, error) {
	up, err := url.Parse(s.Upstream)
	if err != nil || up.Scheme == "" || up.Host == "" {
		return nil, fmt.Errorf("upstream %q is not an absolute URL", s.Upstream)
	}
	if iss == nil && !s.NoInvokerIAMCheck {
		return nil, errors.New("an issuer is needed unless NoInvokerIAMCheck")
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	audiences := append([]string{strings.TrimSuffix(f.URL, "/")}, s.CustomAudiences...)
	invokers := map[string]bool{}
	for _, e := range s.Invokers {
		invokers[strings.ToLower(e)] = true
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host // the container sees the service's host
			rewrite(pr.In, pr.Out)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				refuse(w, r, http.StatusRequestEntityTooLarge)
			case errors.Is(err, context.DeadlineExceeded):
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusGatewayTimeout)
				fmt.Fprint(w, "upstream request timeout")
			default:
				refuse(w, r, http.StatusServiceUnavailable)
			}
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		reason := f.serve(rec, r, iss, s, audiences, invokers, proxy)
		if s.Log != nil {
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status(), "latency", time.Since(start).Round(time.Millisecond).String()}
			if reason != "" {
				attrs = append(attrs, "reason", reason)
			}
			s.Log.Info("request", attrs...)
		}
	}), nil
}

// serve answers one request and returns why it was refused ("" if it was
// forwarded).
func (f *Front) serve(w http.ResponseWriter, r *http.Request, iss *Issuer, s Service, audiences []string, invokers map[string]bool, proxy *httputil.ReverseProxy) string {
	if r.ContentLength > MaxRequestBytes {
		refuse(w, r, http.StatusRequestEntityTooLarge)
		return "request larger than 32 MiB"
	}
	if r.Method == http.MethodTrace || r.Method == http.MethodConnect {
		refuse(w, r, http.StatusMethodNotAllowed)
		return "method not delivered by Cloud Run"
	}
	if reserved(r.URL.Path) {
		refuse(w, r, http.StatusNotFound)
		return "path reserved by Cloud Run"
	}
	admitted := false
	if !s.NoInvokerIAMCheck {
		authz := r.Header.Get("Authorization")
		if authz == "" {
			refuse(w, r, http.StatusForbidden)
			return "The request was not authenticated. Either allow unauthenticated invocations or set the proper Authorization header."
		}
		scheme, tok, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			unauthorized(w, r)
			return "The request was not authorized to invoke this service: Authorization is not a bearer ID token"
		}
		c, err := iss.Verify(strings.TrimSpace(tok))
		if err != nil {
			unauthorized(w, r)
			return "The request was not authorized to invoke this service: " + err.Error()
		}
		audOK := false
		for _, a := range audiences {
			audOK = audOK || c.Audience == a
		}
		if !audOK {
			unauthorized(w, r)
			return "The request was not authorized to invoke this service: audience is neither the service URL nor a custom audience"
		}
		if !c.EmailVerified || !invokers[strings.ToLower(c.Email)] {
			refuse(w, r, http.StatusForbidden)
			return "The caller does not have permission (run.routes.invoke)"
		}
		admitted = true
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	ctx, cancel := context.WithTimeout(r.Context(), s.Timeout)
	defer cancel()
	r = r.WithContext(ctx)
	if admitted {
		r.Header.Set("Authorization", withoutSignature(r.Header.Get("Authorization")))
	}
	f.forwarded.Add(1)
	proxy.ServeHTTP(w, r)
	return ""
}

// rewrite sets the headers Cloud Run adds: the client's address appended
// to X-Forwarded-For, X-Forwarded-Proto https, a trace context.
func rewrite(in, out *http.Request) {
	client := in.RemoteAddr
	if host, _, err := net.SplitHostPort(client); err == nil {
		client = host
	}
	prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", ")
	if prior != "" {
		client = prior + ", " + client
	}
	out.Header.Set("X-Forwarded-For", client)
	out.Header.Set("X-Forwarded-Proto", "https")
	trace := newTraceID()
	if m := cloudTrace.FindStringSubmatch(in.Header.Get("X-Cloud-Trace-Context")); m != nil {
		trace = strings.ToLower(m[1]) // a caller's trace goes on
	}
	span := newSpanID()
	out.Header.Set("X-Cloud-Trace-Context", fmt.Sprintf("%s/%d;o=1", trace, span))
	out.Header.Set("Traceparent", fmt.Sprintf("00-%s-%016x-01", trace, span))
}

// cloudTrace matches X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS.
var cloudTrace = regexp.MustCompile(`^([0-9a-fA-F]{32})(/[0-9]+)?(;o=[0-9]+)?$`)

func newTraceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newSpanID() uint64 {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return binary.BigEndian.Uint64(b) >> 1 // a positive int64, as Cloud Trace's span IDs
}

// withoutSignature replaces the JWT's signature segment in a bearer
// Authorization value with RemovedSignature.
func withoutSignature(authz string) string {
	scheme, tok, _ := strings.Cut(authz, " ")
	tok = strings.TrimSpace(tok)
	if i := strings.LastIndexByte(tok, '.'); i >= 0 {
		tok = tok[:i+1] + RemovedSignature
	}
	return scheme + " " + tok
}

// reserved reports whether Cloud Run answers path itself. Its known issues
// name /eventlogz, paths under /_ah/ and "some paths ending with z"; the
// front end takes every one-segment path ending in z (/healthz, /readyz,
// /statusz...), the safe side of "some".
func reserved(path string) bool {
	if path == "/eventlogz" || strings.HasPrefix(path, "/_ah/") {
		return true
	}
	return strings.Count(path, "/") == 1 && strings.HasSuffix(path, "z")
}

// refuse answers with Google's front end's kind of HTML error page.
func refuse(w http.ResponseWriter, r *http.Request, code int) {
	var title, text string
	p := html.EscapeString(r.URL.Path)
	switch code {
	case http.StatusForbidden:
		title, text = "Error: Forbidden", "Your client does not have permission to get URL <code>"+p+"</code> from this server."
	case http.StatusUnauthorized:
		title, text = "Error: Unauthorized", "Your client does not have permission to the requested URL <code>"+p+"</code>."
	case http.StatusNotFound:
		title, text = "Error: Not Found", "The requested URL <code>"+p+"</code> was not found on this server."
	case http.StatusRequestEntityTooLarge:
		title, text = "Error: Request Entity Too Large", "Your client issued a request that was too large."
	case http.StatusMethodNotAllowed:
		title, text = "Error: Method Not Allowed", "The request method "+html.EscapeString(r.Method)+" is inappropriate for the URL <code>"+p+"</code>."
	default:
		title, text = "Error: Service Unavailable", "The service you requested is not available yet. Please try again in 30 seconds."
	}
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n<title>%d %s</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>%s</h1>\n<h2>%s</h2>\n<h2></h2>\n</body></html>\n",
		code, http.StatusText(code), title, text)
}

// unauthorized is the 401 of a token that does not verify.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token" error_description="The access token could not be verified"`)
	refuse(w, r, http.StatusUnauthorized)
}

// statusRecorder remembers the status written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}
