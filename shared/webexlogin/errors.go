package webexlogin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// The classes of a failed sign-in. Every error of this package wraps one
// of them (errors.Is), inside an *Error that says where it failed.
var (
	// ErrRefused: the person declined at Webex (error=access_denied on
	// the callback).
	ErrRefused = errors.New("sign-in refused at webex")
	// ErrCodeRejected: the token endpoint refused the code: expired,
	// already used, or not matching the PKCE verifier or the redirect URI.
	// Signing in again fixes it.
	ErrCodeRejected = errors.New("authorization code rejected by webex")
	// ErrBadIDToken: the ID token is missing or failed verification
	// (signature, issuer, audience, expiry or nonce). A sign-in that must
	// not be let in, whatever the cause.
	ErrBadIDToken = errors.New("id token failed verification")
	// ErrUnavailable: Webex could not be reached in time, or answered
	// 5xx, 429 or something unusable. Trying later may work.
	ErrUnavailable = errors.New("webex unavailable")
	// ErrMisconfigured: the sign-in integration or its configuration is
	// wrong: the client rejected, the issuer not the one discovered, the
	// integration without spark:people_read, or an error redirect other
	// than a refusal. An operator must fix it.
	ErrMisconfigured = errors.New("sign-in with webex misconfigured")
)

// Error is a failed step of a sign-in. Its text names the step, the HTTP
// status and OAuth error code if any, and a detail; never a token, code,
// verifier, nonce or secret.
type Error struct {
	Op     string // "discovery", "authorize", "exchange", "id token", "keys" or "people/me"
	Status int    // HTTP status of Webex's answer, 0 if none
	Code   string // OAuth error code, e.g. "invalid_grant"
	Detail string
	Err    error // one of the classes above, or a cause wrapping one
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("webex sign-in: " + e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// classed is a cause that belongs to a class: errors.Is finds both.
type classed struct {
	class, cause error
}

func (c classed) Error() string   { return c.class.Error() + " (" + c.cause.Error() + ")" }
func (c classed) Unwrap() []error { return []error{c.class, c.cause} }

// unavailable wraps a transport failure (or our timeout) without its
// method and URL, so that it is ErrUnavailable and still the cause.
func unavailable(ctx context.Context, err error) error {
	var ue *url.Error
	switch {
	case ctx.Err() != nil:
		err = context.Cause(ctx)
	case errors.As(err, &ue):
		err = ue.Err
	}
	return classed{ErrUnavailable, err}
}

// CallbackError classifies the error redirect of an authorization, from
// the callback's query: access_denied is ErrRefused (the person said no);
// any other error is ErrMisconfigured (Webex refused the request itself).
// It returns nil when q has no error parameter.
func CallbackError(q url.Values) error {
	code := q.Get("error")
	if code == "" {
		return nil
	}
	e := &Error{Op: "authorize", Code: safeCode(code), Err: ErrMisconfigured}
	if code == "access_denied" {
		e.Err = ErrRefused
	}
	return e
}

var (
	codePattern = regexp.MustCompile(`^[a-z_]{1,40}$`)
	// parenCode is the OAuth code inside Webex's gateway message, as in
	// "error = '(invalid_grant) ...'".
	parenCode = regexp.MustCompile(`\((invalid_[a-z_]+|unauthorized_client|unsupported_grant_type|access_denied)\)`)
	// longRun is anything token-like in text from elsewhere.
	longRun = regexp.MustCompile(`[A-Za-z0-9._~+/=%-]{80,}`)
)

// safeCode keeps an OAuth error code only if it looks like one.
func safeCode(code string) string {
	if codePattern.MatchString(code) {
		return code
	}
	return ""
}

// tokenFailure classifies a failed call of the token endpoint. Nothing
// of the answer's text is kept but its OAuth error code.
func tokenFailure(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		var ue *url.Error
		if ctx.Err() != nil || errors.As(err, &ue) {
			return &Error{Op: "exchange", Err: unavailable(ctx, err)}
		}
		// oauth2's own: an answer without access_token, or not JSON
		return &Error{Op: "exchange", Detail: "unusable answer", Err: ErrUnavailable}
	}
	e := &Error{Op: "exchange", Code: safeCode(re.ErrorCode)}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
	}
	if e.Code == "" {
		e.Code = gatewayCode(re.Body)
	}
	switch {
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500:
		e.Err = ErrUnavailable
	case e.Code == "invalid_client" || e.Code == "unauthorized_client" || e.Status == http.StatusUnauthorized:
		e.Err = ErrMisconfigured
	case e.Code == "invalid_grant" || e.Status == http.StatusBadRequest:
		// Most likely a code that expired or was used already.
		e.Err = ErrCodeRejected
	default: // a proxy's page, a redirect: not Webex answering
		e.Err = ErrUnavailable
	}
	return e
}

// gatewayCode finds the OAuth code in Webex's gateway error format.
func gatewayCode(body []byte) string {
	var j struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &j) != nil {
		return ""
	}
	if m := parenCode.FindStringSubmatch(j.Message); m != nil {
		return m[1]
	}
	return ""
}

// libraryText makes a library's error text safe to show (clean).
func libraryText(err error) string { return clean(err.Error()) }

// clean makes text from elsewhere safe to show: token-like runs redacted,
// cut to 300 bytes.
func clean(s string) string {
	s = longRun.ReplaceAllString(s, "[redacted]")
	const n = 300
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
