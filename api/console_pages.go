package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/shared/passphrase"
	"github.com/wxcc/tokenservice/shared/token"
)

// overviewPageSize is how many tokens one overview page shows; with
// filtering by name and status, that keeps 1 000 tokens usable.
const overviewPageSize = 50

type overviewView struct {
	Total        int
	Counts       []healthCount
	Sweep        *token.SweepRecord
	SweepStale   bool
	SweepUnknown bool
	Warnings     []string
	Rows         []tokenRow
	Query        string
	Health       token.Health
	Options      []healthOption
	Filtered     bool
	Matched      int
	From, To     int
	PrevURL      string
	NextURL      string
	Updated      time.Time
}

type healthCount struct {
	Health token.Health
	N      int
}

type healthOption struct {
	Value    token.Health
	Label    string
	Selected bool
}

// overviewPage lists every token, most urgent first, filtered and paged.
func (s *server) overviewPage(c echo.Context) error {
	snap, err := s.console.overview(c.Request().Context())
	if err != nil {
		s.logger.Warn("console overview failed", "error", err.Error())
		ae := statusOf(err, "", s.now())
		p := s.signedPage(c, "Tokens")
		p.Flash = &flash{"error", "The tokens could not be listed: " + ae.message}
		return s.render(c, ae.code, "message", p)
	}
	now := s.now()
	v := overviewView{Total: len(snap.rows), Sweep: snap.sweep, SweepUnknown: snap.sweepUnknown,
		Warnings: s.startWarnings, Updated: snap.at}
	if v.Sweep != nil {
		interval := s.cfg.SweepInterval
		if interval <= 0 {
			interval = 5 * time.Minute
		}
		v.SweepStale = now.Sub(v.Sweep.At) > 3*interval+time.Minute
	}
	counts := map[token.Health]int{}
	for _, r := range snap.rows {
		counts[r.Health]++
	}
	for _, h := range token.Healths {
		if counts[h] > 0 {
			v.Counts = append(v.Counts, healthCount{h, counts[h]})
		}
	}
	v.Query = strings.TrimSpace(c.QueryParam("q"))
	if h := token.Health(c.QueryParam("status")); h.Urgency() < len(token.Healths) {
		v.Health = h
	}
	for _, h := range token.Healths {
		v.Options = append(v.Options, healthOption{h, healthLabels[h], h == v.Health})
	}
	v.Filtered = v.Query != "" || v.Health != ""
	q := strings.ToLower(v.Query)
	var matched []tokenRow
	for _, r := range snap.rows {
		if (v.Health == "" || r.Health == v.Health) && strings.Contains(strings.ToLower(r.Name), q) {
			matched = append(matched, r)
		}
	}
	v.Matched = len(matched)
	pages := max((len(matched)+overviewPageSize-1)/overviewPageSize, 1)
	n, _ := strconv.Atoi(c.QueryParam("page"))
	n = min(max(n, 1), pages)
	v.From, v.To = (n-1)*overviewPageSize, min(n*overviewPageSize, len(matched))
	v.Rows = matched[v.From:v.To]
	if len(matched) > 0 {
		v.From++
	}
	link := func(page int) string {
		u := url.Values{}
		if v.Query != "" {
			u.Set("q", v.Query)
		}
		if v.Health != "" {
			u.Set("status", string(v.Health))
		}
		if page > 1 {
			u.Set("page", strconv.Itoa(page))
		}
		if len(u) == 0 {
			return "/admin/"
		}
		return "/admin/?" + u.Encode()
	}
	if n > 1 {
		v.PrevURL = link(n - 1)
	}
	if n < pages {
		v.NextURL = link(n + 1)
	}
	p := s.signedPage(c, "Tokens")
	p.Poll, p.Data, p.Canonical = true, v, link(n)
	if d := c.QueryParam("deleted"); d != "" && token.ValidateName(d) == nil {
		p.Flash = &flash{"ok", "Token " + d + " deleted."}
	}
	return s.render(c, http.StatusOK, "overview", p)
}

// configForm is the client config form's content: the token's current
// values, or what the admin sent when it was refused. ServiceApp picks
// the Service App form (console_serviceapps.go) over the integration's.
type configForm struct {
	Name        string
	ClientID    string
	RedirectURI string
	Scopes      string
	SecretSet   bool

	ServiceApp  bool
	AppID       string
	TargetOrgID string
	Manager     string
	// The integrations a Service App may choose as manager: those whose
	// scopes hold spark:applications_token, then the others.
	ManagersWithScope, OtherManagers []managerOption
}

type tokenView struct {
	New          bool
	Row          tokenRow
	AuthorizeWhy string // "" when it can be authorized
	RefreshWhy   string // "" when Refresh now can work
	Form         configForm
	// DefaultRedirect is this console's /callback, the redirect URI a
	// new token most likely needs.
	DefaultRedirect string
	// Manager is a Service App's manager (nil: not read, or
	// ManagerMissing: no token has its name).
	Manager        *tokenRow
	ManagerMissing bool
	// Managed lists the Service Apps that an integration manages.
	Managed []tokenRow
	// KindURLs are the New token form's addresses for each kind.
	KindURLs kindURLs
}

// consoleOrigin is the scheme and host the browser used.
func consoleOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *server) tokenPage(c echo.Context) error {
	return s.renderToken(c, http.StatusOK, c.Param("name"), nil, nil)
}

// tokenFlash is the message a redirect to the token page asked for.
func (s *server) tokenFlash(c echo.Context, r tokenRow) *flash {
	if r.ServiceApp {
		if f := serviceAppFlash(c.QueryParam("done")); f != nil {
			return f
		}
	}
	switch c.QueryParam("done") {
	case "created":
		return &flash{"ok", "Token created. Next: Authorize with Webex."}
	case "saved":
		return &flash{"ok", "Client config saved."}
	case "unchanged":
		return &flash{"info", "Nothing changed."}
	case "passphrase_set":
		return &flash{"ok", "The token's own passphrase is set: flows must now send it as x-token-passphrase; TOKEN_PASSPHRASE no longer opens this token."}
	case "passphrase_removed":
		return &flash{"ok", "The token's own passphrase is removed: TOKEN_PASSPHRASE opens it again."}
	case "refreshed":
		return &flash{"ok", "Refreshed: Webex issued a new access token."}
	}
	switch c.QueryParam("authorization") {
	case "ok":
		return &flash{"ok", "Authorized with Webex: the token is active and is refreshed automatically."}
	case "failed":
		if le := r.LastError; le != nil && s.now().Sub(le.At) < time.Hour {
			return &flash{"error", "Authorization failed: " + strings.TrimPrefix(le.Message, "authorization failed: ")}
		}
		return &flash{"error", "Authorization failed."}
	}
	return nil
}

// renderToken shows name's page with status and a message; form, if not
// nil, replaces the config form's values (what the admin sent).
func (s *server) renderToken(c echo.Context, status int, name string, f *flash, form *configForm) error {
	if err := token.ValidateName(name); err != nil {
		return s.renderMessage(c, http.StatusBadRequest, "Token", &flash{"error", statusOf(err, name, s.now()).message})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := s.store.Get(ctx, name)
	var unreadable []string
	var sealed *token.SealedError
	if errors.As(err, &sealed) {
		t, unreadable, err = sealed.Token, sealed.Fields, nil
	}
	if errors.Is(err, token.ErrNotFound) {
		return s.renderMessage(c, http.StatusNotFound, "No such token",
			&flash{"error", "There is no token named " + name + ". Create it with New token."})
	}
	if err != nil {
		s.logger.Warn("console token read failed", "token", name, "error", err.Error())
		ae := statusOf(err, name, s.now())
		return s.renderMessage(c, ae.code, "Token "+name, &flash{"error", "The token could not be read: " + ae.message})
	}
	row := newTokenRow(t, unreadable, s.now(), s.console.windows)
	v := tokenView{Row: row, RefreshWhy: heldReason(row), DefaultRedirect: consoleOrigin(c.Request()) + "/callback",
		Form: configForm{Name: name, ClientID: t.ClientID, RedirectURI: t.RedirectURI, Scopes: strings.Join(t.Scopes, " "), SecretSet: row.ClientSecretSet,
			ServiceApp: row.ServiceApp, AppID: t.AppID, TargetOrgID: t.TargetOrgID, Manager: t.Manager}}
	if form != nil {
		v.Form = *form
		v.Form.SecretSet = row.ClientSecretSet
	}
	s.serviceAppView(ctx, t, &v)
	switch missing := t.MissingClientFields(); {
	case slices.Contains(unreadable, "clientSecret"):
		v.AuthorizeWhy = "Its client secret does not open with the configured keys: set a new one below first."
	case len(missing) > 0:
		v.AuthorizeWhy = "Set the client config first (missing: " + strings.Join(missing, ", ") + ")."
	case len(t.Scopes) == 0:
		v.AuthorizeWhy = "Set the scopes it needs first."
	}
	if f == nil && safeMethod(c.Request().Method) {
		f = s.tokenFlash(c, row)
	}
	p := s.signedPage(c, "Token "+name)
	p.Poll, p.Flash, p.Data, p.Canonical = true, f, v, "/admin/token/"+name
	return s.render(c, status, "token", p)
}

func (s *server) renderMessage(c echo.Context, status int, title string, f *flash) error {
	p := s.signedPage(c, title)
	p.Flash = f
	return s.render(c, status, "message", p)
}

func (s *server) newTokenPage(c echo.Context) error {
	name := c.QueryParam("name")
	if token.ValidateName(name) != nil {
		name = ""
	}
	return s.renderNew(c, http.StatusOK, nil, configForm{Name: name, RedirectURI: consoleOrigin(c.Request()) + "/callback",
		ServiceApp: c.QueryParam("kind") == string(token.KindServiceApp)})
}

func (s *server) renderNew(c echo.Context, status int, f *flash, form configForm) error {
	p := s.signedPage(c, "New token")
	p.Flash = f
	if form.ServiceApp {
		s.managerOptions(c.Request().Context(), &form)
	}
	p.Data = tokenView{New: true, Form: form, DefaultRedirect: consoleOrigin(c.Request()) + "/callback", KindURLs: newKindURLs(form.Name)}
	return s.render(c, status, "new", p)
}

// formConfig reads the client config form, or a Service App's. The
// client secret is write-only: left empty, it stays as it is.
func formConfig(c echo.Context) (*clientConfig, configForm) {
	if c.FormValue("kind") == string(token.KindServiceApp) {
		return formServiceApp(c)
	}
	form := configForm{
		Name:        strings.TrimSpace(c.FormValue("name")),
		ClientID:    strings.TrimSpace(c.FormValue("clientId")),
		RedirectURI: strings.TrimSpace(c.FormValue("redirectUri")),
		Scopes:      strings.TrimSpace(c.FormValue("scopes")),
	}
	scopes := []string{}
	for _, sc := range strings.FieldsFunc(form.Scopes, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	cc := &clientConfig{ClientID: &form.ClientID, RedirectURI: &form.RedirectURI, Scopes: &scopes}
	if secret := strings.TrimSpace(c.FormValue("clientSecret")); secret != "" {
		cc.ClientSecret = &secret
	}
	return cc, form
}

// createFromConsole is the New token form: the same client config, on a
// name that must not exist yet.
func (s *server) createFromConsole(c echo.Context) error {
	cc, form := formConfig(c)
	if err := token.ValidateName(form.Name); err != nil {
		return s.renderNew(c, http.StatusBadRequest, &flash{"error", "Name: use 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)."}, form)
	}
	name := form.Name
	if cc.ClientSecret == nil {
		return s.renderNew(c, http.StatusBadRequest, &flash{"error", "A new token needs its client secret."}, form)
	}
	var hash string
	if pp := c.FormValue("passphrase"); pp != "" {
		cc.Passphrase = &pp
	}
	if form.ServiceApp {
		kind := string(token.KindServiceApp)
		cc.Kind = &kind
	}
	if err := cc.validate(); err != nil {
		return s.renderNew(c, http.StatusBadRequest, &flash{"error", err.Error()}, form)
	}
	if cc.Passphrase != nil {
		h, err := passphrase.Hash(*cc.Passphrase)
		if err != nil {
			return s.renderNew(c, http.StatusBadRequest, &flash{"error", "The passphrase could not be hashed."}, form)
		}
		hash = h
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if ae := s.checkManager(ctx, name, cc.Manager); ae != nil {
		return s.renderNew(c, ae.code, &flash{"error", "Not created: " + ae.message}, form)
	}
	_, changed, stored, err := s.saveClientConfig(ctx, name, cc, hash, createOnly)
	if errors.Is(err, errTokenExists) {
		return s.renderNew(c, http.StatusConflict, &flash{"error", "A token named " + name + " exists already: open it from the overview to change it."}, form)
	}
	if err != nil {
		s.logger.Warn("console create failed", "token", name, "error", err.Error())
		ae := statusOf(err, name, s.now())
		return s.renderNew(c, ae.code, &flash{"error", "Not created: " + ae.message}, form)
	}
	s.cache.drop(name)
	s.console.invalidate()
	s.logger.Info("admin action", "action", "put_token", "result", "created", "token", name, "fields", changed, "via", "console", "remote_ip", c.RealIP())
	if form.ServiceApp {
		return s.mintFromConsole(c, name, stored, "created")
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done=created")
}

// saveConfigFromConsole saves the client config form of an existing token.
func (s *server) saveConfigFromConsole(c echo.Context) error {
	name := c.Param("name")
	cc, form := formConfig(c)
	form.Name = name
	if err := cc.validate(); err != nil {
		return s.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Not saved: " + err.Error()}, &form)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if ae := s.checkManager(ctx, name, cc.Manager); ae != nil {
		return s.renderToken(c, ae.code, name, &flash{"error", "Not saved: " + ae.message}, &form)
	}
	return s.saveFromConsole(c, name, cc, "", &form, "saved")
}

// savePassphraseFromConsole sets or removes the token's own passphrase.
func (s *server) savePassphraseFromConsole(c echo.Context) error {
	name := c.Param("name")
	pp, done := c.FormValue("passphrase"), "passphrase_set"
	if c.FormValue("action") == "remove" {
		pp, done = "", "passphrase_removed"
	} else if pp == "" {
		return s.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Type the new passphrase first."}, nil)
	}
	cc := &clientConfig{Passphrase: &pp}
	if err := cc.validate(); err != nil {
		return s.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Passphrase not set: " + err.Error()}, nil)
	}
	var hash string
	if pp != "" {
		h, err := passphrase.Hash(pp)
		if err != nil {
			return s.renderToken(c, http.StatusBadRequest, name, &flash{"error", "The passphrase could not be hashed."}, nil)
		}
		hash = h
	}
	return s.saveFromConsole(c, name, cc, hash, nil, done)
}

func (s *server) saveFromConsole(c echo.Context, name string, cc *clientConfig, hash string, form *configForm, done string) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	_, changed, stored, err := s.saveClientConfig(ctx, name, cc, hash, updateOnly)
	if err != nil {
		if !errors.Is(err, token.ErrNotFound) {
			s.logger.Warn("console update failed", "token", name, "error", err.Error())
		}
		ae := statusOf(err, name, s.now())
		if ae.code == http.StatusNotFound {
			return s.renderMessage(c, http.StatusNotFound, "No such token", &flash{"error", ae.message})
		}
		return s.renderToken(c, ae.code, name, &flash{"error", "Not saved: " + ae.message}, form)
	}
	s.cache.drop(name)
	s.console.invalidate()
	s.logger.Info("admin action", "action", "put_token", "result", "updated", "token", name, "fields", changed, "via", "console", "remote_ip", c.RealIP())
	if len(changed) == 0 {
		done = "unchanged"
	}
	if stored != nil && stored.IsServiceApp() {
		return s.mintFromConsole(c, name, stored, done)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done="+done)
}

// refreshFromConsole is Refresh now.
func (s *server) refreshFromConsole(c echo.Context) error {
	name := c.Param("name")
	since := s.now().Add(-time.Second) // stored times are in ms
	if res, err := s.forceRefresh(c, name); err != nil {
		ae := statusOf(err, name, s.now())
		if ae.retryAfter > 0 {
			writeRetryAfter(c, ae)
		}
		if res.Token != nil && res.Token.IsServiceApp() {
			return s.renderToken(c, ae.code, name, &flash{"error", "Not minted: " + mintFailure(res.Token, since, ae.message)}, nil)
		}
		return s.renderToken(c, ae.code, name, &flash{"error", "Refresh failed: " + ae.message}, nil)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done=refreshed")
}

// deleteFromConsole deletes a token once its name was typed to confirm.
func (s *server) deleteFromConsole(c echo.Context) error {
	name := c.Param("name")
	if c.FormValue("confirm") != name {
		return s.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Not deleted: type the token's name exactly to confirm."}, nil)
	}
	if err := s.deleteToken(c, name); err != nil {
		ae := statusOf(err, name, s.now())
		return s.renderMessage(c, ae.code, "Not deleted", &flash{"error", "Not deleted: " + ae.message})
	}
	return c.Redirect(http.StatusSeeOther, "/admin/?deleted="+url.QueryEscape(name))
}
