package webex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"

	"github.com/wxcc/tokenservice/shared/token"
)

// opMint names the applications endpoint call in errors.
const opMint = "mint"

// ApplicationsPath is the applications endpoint under WEBEX_API_URL; %s
// is the app ID as one escaped path segment (pathSegment).
const ApplicationsPath = "/v1/applications/%s/token"

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// mintBody is the JSON body of a mint, as Webex documents it.
type mintBody struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	TargetOrgID  string `json:"targetOrgId"`
}

// Mint asks the applications endpoint for a new token pair of the Service
// App req.AppID, authorized for req.TargetOrgID, with the manager's access
// token as the bearer: POST {WEBEX_API_URL}/v1/applications/{appId}/token.
// The answer is shaped like the token endpoint's. Failures:
//
//   - 401: the manager's token was refused: token.ErrManagerTokenRejected;
//   - 403 naming a scope: the manager's grant lacks
//     spark:applications_token: token.ErrManagerNotPermitted;
//   - other 400, 403 and 404 (the app unknown, not authorized for the org,
//     its client ID or secret not the app's): token.ErrClientRejected;
//   - 408, 429 (with Retry-After), 5xx, other answers, timeouts and
//     connection errors: *token.TransientError.
func (c *Client) Mint(ctx context.Context, req token.MintRequest) (token.Grant, error) {
	if err := checkMint(req); err != nil {
		return token.Grant{}, err
	}
	body, err := json.Marshal(mintBody{ClientID: req.Client.ID, ClientSecret: req.Client.Secret, TargetOrgID: req.TargetOrgID})
	if err != nil {
		return token.Grant{}, &Error{Op: opMint, Description: "request not encodable", Err: token.ErrClientRejected}
	}
	app, err := pathSegment(req.AppID)
	if err != nil {
		return token.Grant{}, &Error{Op: opMint, Description: "appId is " + err.Error(), Err: token.ErrClientRejected}
	}
	ctx, cancel := c.context(ctx)
	defer cancel()
	u := c.apiURL + fmt.Sprintf(ApplicationsPath, app)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return token.Grant{}, &token.TransientError{Err: &Error{Op: opMint, Description: "request not built", Err: errUnusableAnswer}}
	}
	hreq.Header.Set("Authorization", "Bearer "+req.ManagerToken)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	secrets := []string{req.Client.Secret, req.ManagerToken}

	resp, err := c.hc.Do(hreq)
	if err != nil {
		e := &Error{Op: opMint}
		var ue *url.Error
		switch {
		case ctx.Err() != nil:
			e.Err = context.Cause(ctx)
		case errors.As(err, &ue):
			e.Err = ue.Err
		default:
			e.Err = err
		}
		return token.Grant{}, &token.TransientError{Err: e}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		e := &Error{Op: opMint, Status: resp.StatusCode, Err: err}
		if ctx.Err() != nil {
			e.Err = context.Cause(ctx)
		}
		return token.Grant{}, &token.TransientError{Err: e}
	}
	if resp.StatusCode/100 == 2 {
		if g, ok := parseGrant(raw); ok {
			return g, nil
		}
		return token.Grant{}, &token.TransientError{Err: &Error{Op: opMint, Status: resp.StatusCode,
			Description: "answer without access_token or expires_in", Err: errUnusableAnswer}}
	}
	return token.Grant{}, c.mintFailure(resp, raw, secrets)
}

// checkMint refuses an incomplete request without calling Webex.
func checkMint(req token.MintRequest) error {
	var missing string
	switch {
	case req.AppID == "":
		missing = "appId"
	case req.Client.ID == "":
		missing = "clientId"
	case req.Client.Secret == "":
		missing = "clientSecret"
	case req.TargetOrgID == "":
		missing = "targetOrgId"
	case req.ManagerToken == "":
		return &Error{Op: opMint, Description: "the manager has no access token", Err: token.ErrManagerTokenRejected}
	default:
		return nil
	}
	return &Error{Op: opMint, Description: missing + " is not configured", Err: token.ErrClientRejected}
}

// parseGrant reads a successful answer; ok is false without an access
// token or a lifetime.
func parseGrant(raw []byte) (token.Grant, bool) {
	var a map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&a) != nil {
		return token.Grant{}, false
	}
	g := token.Grant{}
	g.AccessToken, _ = a["access_token"].(string)
	g.ExpiresIn, _ = seconds(a["expires_in"])
	if rt, _ := a["refresh_token"].(string); rt != "" {
		g.RefreshToken = rt
		g.RefreshExpiresIn, _ = seconds(a["refresh_token_expires_in"])
	}
	return g, g.AccessToken != "" && g.ExpiresIn > 0
}

// namesScope matches an error description about scopes.
var namesScope = regexp.MustCompile(`(?i)\bscopes?\b`)

// mintFailure classifies an error answer of the applications endpoint.
func (c *Client) mintFailure(resp *http.Response, raw []byte, secrets []string) error {
	e, b := restError(opMint, resp, raw, secrets)
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
	case s == http.StatusUnauthorized:
		e.Err = token.ErrManagerTokenRejected
		return e
	case s == http.StatusForbidden && namesScope.MatchString(b.description):
		e.Err = token.ErrManagerNotPermitted
		return e
	case s == http.StatusBadRequest || s == http.StatusForbidden || s == http.StatusNotFound:
		e.Err = token.ErrClientRejected
		return e
	}
	return &token.TransientError{RetryAfter: retryAfter(resp.Header, c.now()), Err: e}
}
