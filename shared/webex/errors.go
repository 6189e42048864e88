package webex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/token"
)

// Operations named in errors.
const (
	opRefresh  = "refresh"
	opExchange = "exchange"
)

// MaxRetryAfter caps Webex's Retry-After hint, so that a bogus value
// cannot stop refreshing until the token has died.
const MaxRetryAfter = time.Hour

// Error is a failed call to the Webex token endpoint. Its text holds the
// operation, the HTTP status, the OAuth error code, a sanitised and
// truncated description and Webex's tracking id, never a secret, token or
// code. Permanent failures are returned as an *Error wrapping
// token.ErrGrantRejected or token.ErrClientRejected; transient ones as a
// *token.TransientError wrapping an *Error.
type Error struct {
	Op          string // "refresh" or "exchange"
	Status      int    // HTTP status of the answer, 0 if there was none
	Code        string // OAuth error code, e.g. "invalid_grant"
	Description string // sanitised error description
	TrackingID  string // Webex's trackingId, for support cases
	// Err is token.ErrGrantRejected, token.ErrClientRejected or, for a
	// transient failure, its cause (a transport or context error, or
	// errUnusableAnswer).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("webex ")
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %q", e.Description)
	}
	if e.TrackingID != "" {
		fmt.Fprintf(&b, " (tracking id %s)", e.TrackingID)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errUnusableAnswer: a 2xx answer without JSON, or without access_token.
var errUnusableAnswer = errors.New("unusable answer")

// classify turns an oauth2 error into the token package's classes. secrets
// (client secret, refresh token or code) are removed from any text taken
// from the answer.
func (c *Client) classify(ctx context.Context, op string, err error, secrets ...string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return c.fromAnswer(op, re, secrets)
	}
	e := &Error{Op: op}
	var ue *url.Error
	switch {
	case ctx.Err() != nil: // our timeout, or the caller gave up
		e.Err = context.Cause(ctx)
	case errors.As(err, &ue): // transport: drop method and URL, keep the cause
		e.Err = ue.Err
	default: // oauth2's own: unparseable JSON, missing access_token
		e.Description = sanitize(strings.TrimPrefix(err.Error(), "oauth2: "), secrets)
		e.Err = errUnusableAnswer
	}
	return &token.TransientError{Err: e}
}

// fromAnswer classifies an HTTP answer that is an error:
//
//   - 429, 408 and 5xx are transient, with Retry-After honoured.
//   - invalid_client and unauthorized_client, and any 401, reject the client.
//   - invalid_grant rejects the grant (refresh token or code).
//   - Another 400 (or a 200 with an error code) rejects the grant only if
//     its description names an expired, revoked, malformed or invalid
//     refresh token, code or grant.
//   - Everything else (other codes such as invalid_request, other 4xx and
//     3xx, HTML error pages) is transient: most likely our bug, a proxy or
//     a misconfigured URL rather than a dead token, so it must not mark
//     tokens reauth_required. It is retried with backoff and its message
//     is logged.
func (c *Client) fromAnswer(op string, re *oauth2.RetrieveError, secrets []string) error {
	e := &Error{Op: op}
	var header http.Header
	if re.Response != nil {
		e.Status = re.Response.StatusCode
		header = re.Response.Header
	}
	b := parseErrorBody(re.Body)
	code, desc := re.ErrorCode, re.ErrorDescription
	if code == "" {
		code = b.code
	}
	if desc == "" {
		desc = b.description
	}
	e.Code = sanitizeCode(code, secrets)
	e.Description = sanitize(desc, secrets)
	e.setTrackingID(b.trackingID, header, secrets)

	switch {
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500:
	case code == "invalid_client" || code == "unauthorized_client" || e.Status == http.StatusUnauthorized:
		e.Err = token.ErrClientRejected
		return e
	case code == "invalid_grant" || (e.Status == http.StatusBadRequest || e.Status/100 == 2) && namesRejectedGrant(desc):
		e.Err = token.ErrGrantRejected
		return e
	}
	return &token.TransientError{RetryAfter: retryAfter(header, c.now()), Err: e}
}

// errorBody is an error answer: OAuth's error and error_description, or
// Webex's API gateway format with message, errors[].description and
// trackingId, where the OAuth code appears as "(invalid_grant)".
// restError is the Error of a REST endpoint's error answer (op, the
// status, Webex's code, description and tracking ID, without secrets),
// with the parsed body for the caller's classification.
func restError(op string, resp *http.Response, raw []byte, secrets []string) (*Error, errorBody) {
	b := parseErrorBody(raw)
	e := &Error{Op: op, Status: resp.StatusCode, Code: sanitizeCode(b.code, secrets), Description: sanitize(b.description, secrets)}
	e.setTrackingID(b.trackingID, resp.Header, secrets)
	return e, b
}

// setTrackingID keeps Webex's tracking ID (from the body, else the
// Trackingid header) if it has a tracking ID's shape and holds no secret.
func (e *Error) setTrackingID(fromBody string, header http.Header, secrets []string) {
	id := fromBody
	if id == "" {
		id = header.Get("Trackingid")
	}
	if !trackingIDPattern.MatchString(id) || sanitize(id, secrets) != id {
		id = ""
	}
	e.TrackingID = id
}

type errorBody struct {
	code, description, trackingID string
}

var (
	oauthCodes = map[string]bool{
		"invalid_request": true, "invalid_client": true, "invalid_grant": true,
		"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
		"access_denied": true, "server_error": true, "temporarily_unavailable": true,
	}
	parenCode         = regexp.MustCompile(`\(([a-z_]+)\)`)
	trackingIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,100}$`)
	codePattern       = regexp.MustCompile(`^[a-z_]{1,40}$`)
	grantWord         = regexp.MustCompile(`(?i)\b(refresh[ _]?token|(authori[sz]ation[ _])?code|grant)\b`)
	rejectedWord      = regexp.MustCompile(`(?i)\b(expired|revoked|malformed|invalid|not found|unknown|already used)\b`)
)

func parseErrorBody(body []byte) errorBody {
	var j struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
		Errors      []struct {
			Description string `json:"description"`
		} `json:"errors"`
		TrackingID string `json:"trackingId"`
	}
	if json.Unmarshal(body, &j) != nil {
		return errorBody{}
	}
	b := errorBody{code: j.Error, description: j.Description, trackingID: j.TrackingID}
	texts := []string{j.Message}
	for _, e := range j.Errors {
		texts = append(texts, e.Description)
	}
	for _, t := range texts {
		if b.description == "" {
			b.description = t
		}
		if b.code == "" {
			for _, m := range parenCode.FindAllStringSubmatch(t, -1) {
				if oauthCodes[m[1]] {
					b.code = m[1]
					break
				}
			}
		}
	}
	return b
}

// namesRejectedGrant reports whether an error description says that the
// refresh token, code or grant is expired, revoked, malformed or invalid.
func namesRejectedGrant(desc string) bool {
	return grantWord.MatchString(desc) && rejectedWord.MatchString(desc)
}

// retryAfter reads Retry-After as seconds or an HTTP-date, capped at
// MaxRetryAfter; 0 if absent or in the past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

const (
	maxDescription = 200
	redacted       = "[redacted]"
)

// longRun is anything token-like: a run of 32 or more characters that
// could be an access token, refresh token or code Webex echoed.
var longRun = regexp.MustCompile(`[A-Za-z0-9._~+/=%-]{32,}`)

// sanitize makes text from an answer safe to log: the secrets, their URL
// encodings and every token-like run are redacted, control characters
// become spaces, and it is cut to maxDescription bytes.
func sanitize(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, redacted)
		s = strings.ReplaceAll(s, url.QueryEscape(sec), redacted)
		s = strings.ReplaceAll(s, url.PathEscape(sec), redacted)
	}
	s = longRun.ReplaceAllString(s, redacted)
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	}), " ")
	return truncate(s, maxDescription)
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// sanitizeCode keeps an OAuth error code as it is if it looks like one.
func sanitizeCode(code string, secrets []string) string {
	if code == "" || codePattern.MatchString(code) {
		return code
	}
	return truncate(sanitize(code, secrets), 40)
}
