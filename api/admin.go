package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/token"
)

// adminStore is what the admin endpoints need beyond token.Store.
type adminStore interface {
	List(ctx context.Context, pageSize int, fn func(*token.Token) error) error
	UseNonce(ctx context.Context, nonce string, expires time.Time) (bool, error)
}

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

// validate checks every field present; it never echoes a secret.
func (cc *clientConfig) validate() error {
	if cc.ClientID != nil && !printable(*cc.ClientID, 1, 256) {
		return errors.New("clientId must be 1-256 printable characters without spaces")
	}
	if cc.ClientSecret != nil && !printable(*cc.ClientSecret, 1, 512) {
		return errors.New("clientSecret must be 1-512 printable characters without spaces")
	}
	if cc.RedirectURI != nil {
		if strings.Contains(*cc.RedirectURI, "#") {
			return errors.New("redirectUri must not contain a fragment (#): RFC 6749 section 3.1.2")
		}
		u, err := url.Parse(*cc.RedirectURI)
		local := err == nil && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1")
		if err != nil || len(*cc.RedirectURI) > 2048 || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" && local) {
			return errors.New("redirectUri must be an absolute https URL (http only for localhost)")
		}
	}
	if cc.Scopes != nil {
		if len(*cc.Scopes) > 64 {
			return errors.New("scopes: at most 64")
		}
		for _, sc := range *cc.Scopes {
			if !printable(sc, 1, 128) {
				return errors.New("scopes must be 1-128 printable characters without spaces each")
			}
		}
	}
	if cc.Passphrase != nil && *cc.Passphrase != "" {
		if err := passphrase.Validate(*cc.Passphrase); err != nil {
			return fmt.Errorf("passphrase: %w", err)
		}
	}
	return cc.validateServiceApp()
}

func printable(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// apply writes cc into t and reports which fields changed (names only).
func (cc *clientConfig) apply(t *token.Token, hash string) []string {
	var changed []string
	set := func(field string, dst *string, v *string) {
		if v != nil && *dst != *v {
			*dst = *v
			changed = append(changed, field)
		}
	}
	set("clientId", &t.ClientID, cc.ClientID)
	set("clientSecret", &t.ClientSecret, cc.ClientSecret)
	set("redirectUri", &t.RedirectURI, cc.RedirectURI)
	if cc.Scopes != nil && strings.Join(*cc.Scopes, " ") != strings.Join(t.Scopes, " ") {
		t.Scopes = append([]string{}, *cc.Scopes...)
		changed = append(changed, "scopes")
	}
	if cc.Passphrase != nil && (hash != "" || t.PassphraseHash != "") {
		t.PassphraseHash = hash
		changed = append(changed, "passphrase")
	}
	return changed
}

// putToken creates or updates a token's client config and its own
// passphrase. It never touches the tokens themselves; a change of the
// client clears config_error so that refreshing resumes.
func (s *server) putToken(c echo.Context) error {
	name := c.Param("name")
	if err := token.ValidateName(name); err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	var cc clientConfig
	if ae := decodeBody(c, &cc); ae != nil {
		return writeError(c, ae)
	}
	if err := cc.validate(); err != nil {
		return writeError(c, errorf(http.StatusBadRequest, err.Error()))
	}
	var hash string
	if cc.Passphrase != nil && *cc.Passphrase != "" {
		h, err := passphrase.Hash(*cc.Passphrase)
		if err != nil {
			return writeError(c, errorf(http.StatusBadRequest, "passphrase could not be hashed"))
		}
		hash = h
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if ae := s.checkManager(ctx, name, cc.Manager); ae != nil {
		return writeError(c, ae)
	}

	created, changed, stored, err := s.saveClientConfig(ctx, name, &cc, hash, createOrUpdate)
	if err != nil {
		s.logger.Warn("admin update failed", "token", name, "error", err.Error())
		return writeError(c, statusOf(err, name, s.now()))
	}
	s.cache.drop(name)
	action := "updated"
	if created {
		action = "created"
	}
	s.logger.Info("admin action", "action", "put_token", "result", action, "token", name,
		"fields", changed, "remote_ip", c.RealIP())
	body := map[string]any{"status": "200", "name": name, "created": created, "message": "token " + name + " " + action}
	for k, v := range s.mintAfterPut(c.Request().Context(), name, stored) {
		body[k] = v
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
	err := s.admin.List(ctx, 300, func(t *token.Token) error {
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
		return writeError(c, statusOf(err, "", s.now()))
	}
	s.logger.Info("admin action", "action", "list_tokens", "count", len(rows), "remote_ip", c.RealIP())
	return c.JSON(http.StatusOK, map[string]any{"status": "200", "tokens": rows})
}

// authorizeLink answers the Webex authorize URL for a token, with a signed
// state valid for 15 minutes and accepted once, for an admin to open.
func (s *server) authorizeLink(c echo.Context) error {
	name := c.QueryParam("name")
	if err := token.ValidateName(name); err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := s.authorizable(ctx, name)
	if err != nil {
		return writeError(c, statusOf(err, name, s.now()))
	}
	state, _, expires, err := s.signer.Issue(name)
	if err != nil {
		s.logger.Error("state not issued", "error", err.Error())
		return writeError(c, errorf(http.StatusServiceUnavailable, "authorization links are not available: check STATE_SIGNING_KEY"))
	}
	u := s.authorizeURL(token.Client{ID: t.ClientID, RedirectURI: t.RedirectURI}, t.Scopes, state)
	s.logger.Info("admin action", "action", "authorize", "token", name, "remote_ip", c.RealIP())
	return c.JSON(http.StatusOK, map[string]any{"status": "200", "url": u, "expiresAt": expires.UTC().Format(time.RFC3339)})
}
