package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// adminTimeout bounds the store calls of an admin request.
const adminTimeout = 10 * time.Second

// clientConfig is the body of PUT /admin/tokens/N. Pointers tell an
// omitted field (unchanged) from an empty one. Kind, AppID, TargetOrgID
// and Manager are a Service App's (serviceapps.go).
type clientConfig struct {
	ClientID     *string   `json:"clientId"`
	ClientSecret *string   `json:"clientSecret"`
	RedirectURI  *string   `json:"redirectUri"`
	Scopes       *[]string `json:"scopes"`
	Passphrase   *string   `json:"passphrase"`
	Kind         *string   `json:"kind"`
	AppID        *string   `json:"appId"`
	TargetOrgID  *string   `json:"targetOrgId"`
	Manager      *string   `json:"manager"`
}

// change is the body as the model's change of a client config.
func (cc *clientConfig) change() token.ConfigChange {
	return token.ConfigChange{ClientID: cc.ClientID, ClientSecret: cc.ClientSecret, RedirectURI: cc.RedirectURI, Scopes: cc.Scopes,
		Passphrase: cc.Passphrase, Kind: cc.Kind, AppID: cc.AppID, TargetOrgID: cc.TargetOrgID, Manager: cc.Manager}
}

// actor is who acts through the JSON admin endpoints: the holder of the
// admin passphrase, or a console session.
func (s *server) actor(c echo.Context) lifecycle.Actor {
	return s.console.Actor(c)
}

// putToken creates or updates a token's client config and its own
// passphrase. It never touches the tokens themselves; a change of the
// client clears config_error so that refreshing resumes.
func (s *server) putToken(c echo.Context) error {
	name := c.Param("name")
	if err := token.ValidateName(name); err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	var cc clientConfig
	if ae := decodeBody(c, &cc); ae != nil {
		return httpapi.Write(c, ae)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	saved, err := s.service.SaveClientConfig(ctx, s.actor(c), name, cc.change(), lifecycle.CreateOrUpdate)
	s.changed(name)
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	action := "updated"
	if saved.Created {
		action = "created"
	}
	body := map[string]any{"status": "200", "name": name, "created": saved.Created, "message": "token " + name + " " + action}
	if m := saved.Mint; m != nil {
		body["minted"] = m.Minted
		body["tokenStatus"] = string(m.Status)
		if m.LastError != "" {
			body["lastError"] = m.LastError
		}
	}
	return c.JSON(http.StatusOK, body)
}

// tokenSummary is one row of GET /admin/tokens: never a secret. AppID,
// TargetOrgID and Manager are a Service App's; OrgID is there when known.
type tokenSummary struct {
	Name           string         `json:"name"`
	Kind           token.Kind     `json:"kind"`
	Status         string         `json:"status"`
	Generation     int64          `json:"generation"`
	ClientID       string         `json:"clientId"`
	Scopes         []string       `json:"scopes"`
	HasPassphrase  bool           `json:"hasPassphrase"`
	AccessExpires  *int64         `json:"accessExpires"`
	RefreshExpires *int64         `json:"refreshExpires"`
	LastRefresh    *int64         `json:"lastRefresh"`
	LastError      map[string]any `json:"lastError"`
	AppID          string         `json:"appId,omitempty"`
	TargetOrgID    string         `json:"targetOrgId,omitempty"`
	Manager        string         `json:"manager,omitempty"`
	OrgID          string         `json:"orgId,omitempty"`
}

func millisOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// listTokens answers every token's state, expiries and last error.
func (s *server) listTokens(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	rows := []tokenSummary{}
	err := s.store.List(ctx, 300, func(t *token.Token) error {
		row := tokenSummary{
			Name: t.Name, Status: string(t.State()), Generation: t.Generation, ClientID: t.ClientID,
			Scopes: t.Scopes, HasPassphrase: t.PassphraseHash != "",
			AccessExpires: millisOrNil(t.AccessExpires), RefreshExpires: millisOrNil(t.RefreshExpires), LastRefresh: millisOrNil(t.LastRefresh),
			Kind: token.KindIntegration, OrgID: t.Org(),
		}
		if t.IsServiceApp() {
			row.Kind, row.AppID, row.TargetOrgID, row.Manager = token.KindServiceApp, t.AppID, t.TargetOrgID, t.Manager
		}
		if row.Scopes == nil {
			row.Scopes = []string{}
		}
		if le := t.LastError; le != nil {
			row.LastError = map[string]any{"at": le.At.UnixMilli(), "message": le.Message, "permanent": le.Permanent}
		}
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		s.logger.Warn("admin list failed", "error", err.Error())
		return httpapi.Write(c, httpapi.StatusOf(err, "", s.now()))
	}
	s.logger.Info("admin action", "action", "list_tokens", "count", len(rows), "remote_ip", c.RealIP())
	return c.JSON(http.StatusOK, map[string]any{"status": "200", "tokens": rows})
}

// authorizeLink answers the Webex authorize URL for a token, with a signed
// state valid for 15 minutes and accepted once, and PKCE whose verifier
// never leaves the service (derived from the state's nonce under the
// state key), for an admin to open.
func (s *server) authorizeLink(c echo.Context) error {
	name := c.QueryParam("name")
	if err := token.ValidateName(name); err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := s.service.Authorizable(ctx, name)
	if err != nil {
		return httpapi.Write(c, httpapi.StatusOf(err, name, s.now()))
	}
	state, nonce, expires, err := s.signer.Issue(name)
	if err != nil {
		s.logger.Error("state not issued", "error", err.Error())
		return httpapi.Write(c, httpapi.Errorf(http.StatusServiceUnavailable, "authorization links are not available: check STATE_SIGNING_KEY"))
	}
	u, err := withPKCE(s.authorizeURL(token.Client{ID: t.ClientID, RedirectURI: t.RedirectURI}, t.Scopes, state), s.pkceVerifier(nonce))
	if err != nil {
		return httpapi.Write(c, httpapi.Errorf(http.StatusServiceUnavailable, "WEBEX_AUTHORIZE_URL is not a URL"))
	}
	s.service.AuthorizationStarted(ctx, s.actor(c), name, "authorize URL handed out by GET /authorize")
	return c.JSON(http.StatusOK, map[string]any{"status": "200", "url": u, "expiresAt": expires.UTC().Format(time.RFC3339)})
}

// withPKCE adds an S256 code challenge for verifier to the authorize URL.
func withPKCE(authorizeURL, verifier string) (string, error) {
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	q.Set("code_challenge_method", "S256")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// pkceVerifier is the PKCE code verifier of a state issued by
// /authorize, derived from its nonce under the state key, so that
// /callback knows it without storing it: 43 characters of base64url, as
// RFC 7636 asks.
func (s *server) pkceVerifier(nonce string) string {
	m := hmac.New(sha256.New, s.signer.Key)
	m.Write([]byte("pkce\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// changed drops name from the cache and the listing: a change made here
// is served at once.
func (s *server) changed(name string) {
	s.cache.drop(name)
	if s.listing != nil {
		s.listing.Invalidate()
	}
}
