package webex

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/wxcc/tokenservice/shared/token"
)

// opMe names the people/me call in errors.
const opMe = "people/me"

// PeopleMePath is Webex's "Get My Own Details" under WEBEX_API_URL.
const PeopleMePath = "/v1/people/me"

// Failures of Me that retrying cannot fix.
var (
	// ErrAccessTokenRejected: Webex refused the access token (401):
	// unknown, expired or revoked.
	ErrAccessTokenRejected = errors.New("access token rejected by webex")
	// ErrNotPermitted: the token's grant lacks the scope the People API
	// asks for (403), spark:people_read.
	ErrNotPermitted = errors.New("access token lacks spark:people_read")
)

// meAnswer is the part of Webex's person object that Me reads.
type meAnswer struct {
	ID          string   `json:"id"`
	Emails      []string `json:"emails"`
	DisplayName string   `json:"displayName"`
	OrgID       string   `json:"orgId"`
}

// Me asks Webex who accessToken acts as: GET {WEBEX_API_URL}/v1/people/me,
// bounded by the client's timeout. The person's Email is the first of
// Webex's emails (its primary address). Failures:
//
//   - 401: ErrAccessTokenRejected;
//   - 403: ErrNotPermitted (the grant lacks spark:people_read);
//   - 408, 429 (with Retry-After), 5xx, other answers, an answer without
//     an id, timeouts and connection errors: *token.TransientError.
//
// Every error is an *Error (wrapped in the transient case) whose text
// never holds the token.
func (c *Client) Me(ctx context.Context, accessToken string) (token.Person, error) {
	if accessToken == "" {
		return token.Person{}, &Error{Op: opMe, Description: "no access token to send", Err: ErrAccessTokenRejected}
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.apiURL+PeopleMePath, nil)
	if err != nil {
		return token.Person{}, &token.TransientError{Err: &Error{Op: opMe, Description: "request not built", Err: errUnusableAnswer}}
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	secrets := []string{accessToken}

	resp, err := c.hc.Do(req)
	if err != nil {
		return token.Person{}, &token.TransientError{Err: &Error{Op: opMe, Err: transportCause(ctx, err)}}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return token.Person{}, &token.TransientError{Err: &Error{Op: opMe, Status: resp.StatusCode, Err: transportCause(ctx, err)}}
	}
	if resp.StatusCode == http.StatusOK {
		var a meAnswer
		if json.Unmarshal(raw, &a) != nil || a.ID == "" {
			return token.Person{}, &token.TransientError{Err: &Error{Op: opMe, Status: resp.StatusCode,
				Description: "answer without a person id", Err: errUnusableAnswer}}
		}
		p := token.Person{ID: a.ID, DisplayName: a.DisplayName, OrgID: a.OrgID}
		if len(a.Emails) > 0 {
			p.Email = a.Emails[0]
		}
		return p, nil
	}
	return token.Person{}, c.meFailure(resp, raw, secrets)
}

// meFailure classifies an error answer of people/me.
func (c *Client) meFailure(resp *http.Response, raw []byte, secrets []string) error {
	e, _ := restError(opMe, resp, raw, secrets)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.Err = ErrAccessTokenRejected
		return e
	case http.StatusForbidden:
		e.Err = ErrNotPermitted
		return e
	}
	return &token.TransientError{RetryAfter: retryAfter(resp.Header, c.now()), Err: e}
}

// transportCause is what a failed round trip is reported as: the
// timeout's cause if ours ran out (or the caller gave up), else the
// transport's error without the method and URL.
func transportCause(ctx context.Context, err error) error {
	var ue *url.Error
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.As(err, &ue):
		return ue.Err
	default:
		return err
	}
}
