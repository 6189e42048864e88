package webex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/token"
)

// serve answers every call with status, header and body.
func serve(t *testing.T, status int, header map[string]string, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(testOptions(Options{TokenURL: srv.URL + "/v1/access_token", Timeout: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// webexBody is an error in the format of Webex's API gateway.
func webexBody(status int, code, desc string) string {
	msg := fmt.Sprintf("POST failed: HTTP/1.1 %d (url = https://idbroker.webex.com/idb/oauth2/v1/access_token, request/response TrackingId = ROUTER_5F3C, error = '(%s) %s')", status, code, desc)
	return fmt.Sprintf(`{"message":%q,"errors":[{"description":%q}],"trackingId":"ROUTER_5F3C-AB12"}`, msg, msg)
}

func TestOddAnswers(t *testing.T) {
	html := map[string]string{"Content-Type": "text/html"}
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		want       string
		wantCode   string
		retryAfter time.Duration
		noStatus   bool // oauth2 reports unusable 2xx answers without their status
	}{
		{name: "webex gateway invalid_grant", status: 400, body: webexBody(400, "invalid_grant", "Refresh token provided in the request is invalid or expired."), want: "grant", wantCode: "invalid_grant"},
		{name: "webex gateway invalid_client", status: 400, body: webexBody(400, "invalid_client", "The client authentication failed."), want: "client", wantCode: "invalid_client"},
		{name: "webex gateway 401 without code", status: 401, body: `{"message":"The request requires a valid access token set in the Authorization request header.","trackingId":"ROUTER_1"}`, want: "client"},
		{name: "401 without body", status: 401, body: "", want: "client"},
		{name: "400 unauthorized_client", status: 400, body: `{"error":"unauthorized_client"}`, want: "client", wantCode: "unauthorized_client"},
		{name: "400 invalid_grant without description", status: 400, body: `{"error":"invalid_grant"}`, want: "grant", wantCode: "invalid_grant"},
		{name: "400 invalid_request naming an invalid refresh token", status: 400, body: `{"error":"invalid_request","error_description":"Refresh token is invalid or has already been claimed."}`, want: "grant", wantCode: "invalid_request"},
		{name: "400 invalid_request naming an expired code", status: 400, body: `{"error":"invalid_request","error_description":"Invalid or expired code parameter."}`, want: "grant", wantCode: "invalid_request"},
		{name: "400 invalid_request missing parameter", status: 400, body: `{"error":"invalid_request","error_description":"The refresh_token parameter is missing."}`, want: "transient", wantCode: "invalid_request"},
		{name: "400 unsupported_grant_type", status: 400, body: `{"error":"unsupported_grant_type","error_description":"Invalid grant_type."}`, want: "transient", wantCode: "unsupported_grant_type"},
		{name: "400 html", status: 400, header: html, body: "<html>bad request</html>", want: "transient"},
		{name: "403 html", status: 403, header: html, body: "<html>forbidden</html>", want: "transient"},
		{name: "404", status: 404, header: html, body: "not found", want: "transient"},
		{name: "408", status: 408, body: "", want: "transient"},
		{name: "502 html", status: 502, header: html, body: "<html>bad gateway</html>", want: "transient"},
		{name: "503 naming an expired token is still transient", status: 503, body: `{"error":"invalid_grant","error_description":"token expired"}`, want: "transient", wantCode: "invalid_grant"},
		{name: "429 retry-after date", status: 429, header: map[string]string{"Retry-After": "Fri, 02 Jan 2026 03:05:05 GMT"}, body: "{}", want: "transient", retryAfter: time.Minute},
		{name: "429 retry-after past date", status: 429, header: map[string]string{"Retry-After": "Fri, 02 Jan 2026 03:00:00 GMT"}, body: "{}", want: "transient"},
		{name: "429 retry-after huge", status: 429, header: map[string]string{"Retry-After": "99999999"}, body: "{}", want: "transient", retryAfter: MaxRetryAfter},
		{name: "429 retry-after garbage", status: 429, header: map[string]string{"Retry-After": "soon"}, body: "{}", want: "transient"},
		{name: "302 is not followed", status: 302, header: map[string]string{"Location": "https://elsewhere.test/"}, body: "", want: "transient"},
		{name: "200 with invalid_grant", status: 200, body: `{"error":"invalid_grant"}`, want: "grant", wantCode: "invalid_grant"},
		{name: "200 without access_token", status: 200, body: `{"expires_in":3600}`, want: "transient", noStatus: true},
		{name: "200 not JSON", status: 200, body: `<html>ok</html>`, want: "transient", noStatus: true},
		{name: "200 truncated JSON", status: 200, body: `{"access_token":"at`, want: "transient", noStatus: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, tt.status, tt.header, tt.body)
			c.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
			_, err := c.Refresh(context.Background(), testClient, "rt-123")
			if got := class(err); got != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
			var te *token.TransientError
			if errors.As(err, &te) && te.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter: got %s, want %s", te.RetryAfter, tt.retryAfter)
			}
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("got %T, want it to wrap *webex.Error", err)
			}
			wantStatus := tt.status
			if tt.noStatus {
				wantStatus = 0
			}
			if we.Op != "refresh" || we.Status != wantStatus || we.Code != tt.wantCode {
				t.Errorf("got op %q status %d code %q, want refresh %d %q", we.Op, we.Status, we.Code, wantStatus, tt.wantCode)
			}
		})
	}
}

func TestGoodAnswers(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   token.Grant
	}{
		{
			name: "numbers",
			body: `{"access_token":"at","expires_in":43199,"refresh_token":"rt-new","refresh_token_expires_in":5183999,"token_type":"Bearer"}`,
			want: token.Grant{AccessToken: "at", ExpiresIn: 43199 * time.Second, RefreshToken: "rt-new", RefreshExpiresIn: 5183999 * time.Second},
		},
		{
			name: "strings",
			body: `{"access_token":"at","expires_in":"3600","refresh_token":"rt-new","refresh_token_expires_in":"7200"}`,
			want: token.Grant{AccessToken: "at", ExpiresIn: time.Hour, RefreshToken: "rt-new", RefreshExpiresIn: 2 * time.Hour},
		},
		{
			name: "no refresh token",
			body: `{"access_token":"at","expires_in":3600,"refresh_token_expires_in":7200}`,
			want: token.Grant{AccessToken: "at", ExpiresIn: time.Hour},
		},
		{
			name: "empty refresh token",
			body: `{"access_token":"at","expires_in":3600,"refresh_token":""}`,
			want: token.Grant{AccessToken: "at", ExpiresIn: time.Hour},
		},
		{
			name: "null refresh token",
			body: `{"access_token":"at","expires_in":3600,"refresh_token":null}`,
			want: token.Grant{AccessToken: "at", ExpiresIn: time.Hour},
		},
		{
			name: "no expiries",
			body: `{"access_token":"at","refresh_token":"rt-new"}`,
			want: token.Grant{AccessToken: "at", RefreshToken: "rt-new"},
		},
		{
			name:   "form encoded",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body:   "access_token=at&expires_in=3600&refresh_token=12345&refresh_token_expires_in=7200",
			want:   token.Grant{AccessToken: "at", ExpiresIn: time.Hour, RefreshToken: "12345", RefreshExpiresIn: 2 * time.Hour},
		},
		{
			name:   "form encoded without refresh token",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body:   "access_token=at&expires_in=3600",
			want:   token.Grant{AccessToken: "at", ExpiresIn: time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := serve(t, 200, tt.header, tt.body)
			g, err := c.Refresh(context.Background(), testClient, "rt-old")
			if err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestShape checks what Webex receives: one form-encoded POST with
// the client credentials in the body, never in a header.
func TestRequestShape(t *testing.T) {
	var (
		mu          sync.Mutex
		calls       int
		got         url.Values
		auth, ctype string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		calls++
		got, auth, ctype = r.PostForm, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
	}))
	defer srv.Close()
	c, _ := New(testOptions(Options{TokenURL: srv.URL}))

	tests := []struct {
		name string
		call func() error
		want url.Values
	}{
		{"refresh", func() error { _, err := c.Refresh(context.Background(), testClient, "rt-1"); return err }, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {"rt-1"}, "client_id": {testClient.ID}, "client_secret": {testClient.Secret},
		}},
		{"exchange", func() error { _, err := c.Exchange(context.Background(), testClient, "code-1"); return err }, url.Values{
			"grant_type": {"authorization_code"}, "code": {"code-1"}, "redirect_uri": {testClient.RedirectURI},
			"client_id": {testClient.ID}, "client_secret": {testClient.Secret},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			calls = 0
			mu.Unlock()
			if err := tt.call(); !errors.Is(err, token.ErrClientRejected) {
				t.Errorf("got %v, want ErrClientRejected", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if n := calls; n != 1 {
				t.Errorf("calls: got %d, want 1 (no retry, no auth style probing)", n)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
			if auth != "" || !strings.HasPrefix(ctype, "application/x-www-form-urlencoded") {
				t.Errorf("got Authorization %q, Content-Type %q; want none and a form", auth, ctype)
			}
		})
	}
}

// TestNoSecretInErrors makes Webex echo everything it received (form,
// query and headers) in every field an error message could draw from, for
// every class of failure, and checks that no returned error text holds the
// client secret, the refresh token, the code or an access token.
func TestNoSecretInErrors(t *testing.T) {
	const (
		rt          = "rt-NmY4ZTk4Y2EyMTYtZjljMS00OWIxLTgwZWEtNzVkZmIwODAx_PF84_c6f92e5d"
		code        = "code+/=ZTk4Y2EyMTYt&x"
		accessToken = "at-ZjljMS00OWIxLTgwZWEtNzVkZmIwODAxZThmZjcxYjlhNDItYjdh"
	)
	secrets := []string{testClient.Secret, url.QueryEscape(testClient.Secret), rt, code, url.QueryEscape(code), accessToken}

	answers := []struct {
		name   string
		status int
		ctype  string
		body   func(echo string) string
	}{
		{"oauth error", 400, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":"invalid_grant","error_description":%q}`, e)
		}},
		{"error code itself", 400, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":%q}`, e)
		}},
		{"webex gateway", 400, "application/json", func(e string) string {
			return fmt.Sprintf(`{"message":%q,"errors":[{"description":%q}],"trackingId":%q}`, e, e, e)
		}},
		{"client rejected", 401, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":"invalid_client","error_description":%q}`, e)
		}},
		{"server error", 500, "text/plain", func(e string) string { return e }},
		{"server error json", 503, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":"temporarily_unavailable","error_description":%q}`, e)
		}},
		{"unknown 400", 400, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":"invalid_request","error_description":%q}`, e)
		}},
		{"200 without access token", 200, "application/json", func(e string) string {
			return fmt.Sprintf(`{"echo":%q}`, e)
		}},
		{"200 not JSON", 200, "application/json", func(e string) string { return e }},
		{"200 with error", 200, "application/json", func(e string) string {
			return fmt.Sprintf(`{"error":"invalid_grant","error_description":%q}`, e)
		}},
		{"200 form with error", 200, "application/x-www-form-urlencoded", func(e string) string {
			return "error=" + url.QueryEscape(e) + "&error_description=" + url.QueryEscape(e)
		}},
	}
	for _, a := range answers {
		t.Run(a.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				raw, _ := io.ReadAll(r.Body)
				form, _ := url.ParseQuery(string(raw))
				echo := fmt.Sprintf("got %s; decoded %v; header %v; and %s", raw, form, r.Header, accessToken)
				w.Header().Set("Content-Type", a.ctype)
				w.Header().Set("Trackingid", rt) // tracking ids look like tokens
				w.Header().Set("Retry-After", testClient.Secret)
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body(echo))
			}))
			defer srv.Close()
			c, _ := New(testOptions(Options{TokenURL: srv.URL}))

			_, errR := c.Refresh(context.Background(), testClient, rt)
			_, errE := c.Exchange(context.Background(), testClient, code)
			for _, err := range []error{errR, errE} {
				if err == nil {
					t.Fatal("got success, want an error")
				}
				for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					for _, s := range secrets {
						if strings.Contains(text, s) {
							t.Errorf("error text %q contains secret %q", text, s)
						}
					}
				}
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "The refresh token is expired.", "The refresh token is expired."},
		{"secret", "bad secret hunter2 given", "bad secret [redacted] given"},
		{"token-like run", "token ZTk4Y2EyMTYtZjljMS00OWIxLTgwZWEtNzVkZmIw here", "token [redacted] here"},
		{"control characters", "line1\nline2\x00\tend", "line1 line2 end"},
		{"truncated at a rune", long, strings.Repeat("é", 100) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in, []string{"hunter2"}); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
