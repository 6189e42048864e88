package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wxcc/tokenservice/api/listing"
	"github.com/wxcc/tokenservice/shared/activity"
	"github.com/wxcc/tokenservice/shared/httpapi"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/people"
	"github.com/wxcc/tokenservice/shared/token"
)

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
	Row          listing.Row
	AuthorizeWhy string // "" when it can be authorized
	RefreshWhy   string // "" when Refresh now can work
	Form         configForm
	// DefaultRedirect is this console's /callback, the redirect URI a
	// new token most likely needs.
	DefaultRedirect string
	// Manager is a Service App's manager (nil: not read, or
	// ManagerMissing: no token has its name).
	Manager        *listing.Row
	ManagerMissing bool
	// Managed lists the Service Apps that an integration manages.
	Managed []listing.Row
	// KindURLs are the New token form's addresses for each kind.
	KindURLs kindURLs
	// Links are the token's pending authorization links; NewLink is the
	// address of one just made, shown once.
	Links   []people.Link
	NewLink string
	// History is the token's latest activity; MoreHistory says whether
	// the Activity page has more of it.
	History     []activity.Entry
	MoreHistory bool
	// LinkTTL is how long a new link stays valid (AUTHORIZE_LINK_TTL).
	LinkTTL time.Duration
	// Life is the chart of the token's last week (nil: no activity
	// record here, or it could not be read).
	Life *lifeChart
	// Flow is the Flow Designer panel's content.
	Flow flowPanel
}

// consoleOrigin is the scheme and host the browser used.
func consoleOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (cs *Console) tokenPage(c echo.Context) error {
	return cs.renderToken(c, http.StatusOK, c.Param("name"), nil, nil)
}

// tokenFlash is the message a redirect to the token page asked for.
func (cs *Console) tokenFlash(c echo.Context, r listing.Row) *flash {
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
		if le := r.LastError; le != nil && cs.now().Sub(le.At) < time.Hour {
			return &flash{"error", "Authorization failed: " + strings.TrimPrefix(le.Message, "authorization failed: ")}
		}
		return &flash{"error", "Authorization failed."}
	}
	return nil
}

// renderToken shows name's page with status and a message; form, if not
// nil, replaces the config form's values (what the admin sent).
func (cs *Console) renderToken(c echo.Context, status int, name string, f *flash, form *configForm) error {
	return cs.renderTokenPage(c, status, name, f, form, "")
}

// renderTokenPage is renderToken, showing newLink (a link just made) once.
func (cs *Console) renderTokenPage(c echo.Context, status int, name string, f *flash, form *configForm, newLink string) error {
	if err := token.ValidateName(name); err != nil {
		return cs.renderMessage(c, http.StatusBadRequest, "Token", &flash{"error", httpapi.StatusOf(err, name, cs.now()).Message})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	t, err := cs.d.Tokens.Get(ctx, name)
	var unreadable []string
	var sealed *token.SealedError
	if errors.As(err, &sealed) {
		t, unreadable, err = sealed.Token, sealed.Fields, nil
	}
	if errors.Is(err, token.ErrNotFound) {
		return cs.renderMessage(c, http.StatusNotFound, "No such token",
			&flash{"error", "There is no token named " + name + ". Create it with New token."})
	}
	if err != nil {
		cs.log.Warn("console token read failed", "token", name, "error", err.Error())
		ae := httpapi.StatusOf(err, name, cs.now())
		return cs.renderMessage(c, ae.Code, "Token "+name, &flash{"error", "The token could not be read: " + ae.Message})
	}
	row := listing.NewRow(t, unreadable, cs.now(), cs.d.Listing.Windows)
	v := tokenView{Row: row, RefreshWhy: heldReason(row), DefaultRedirect: consoleOrigin(c.Request()) + "/callback",
		Form: configForm{Name: name, ClientID: t.ClientID, RedirectURI: t.RedirectURI, Scopes: strings.Join(t.Scopes, " "), SecretSet: row.ClientSecretSet,
			ServiceApp: row.ServiceApp, AppID: t.AppID, TargetOrgID: t.TargetOrgID, Manager: t.Manager}}
	if form != nil {
		v.Form = *form
		v.Form.SecretSet = row.ClientSecretSet
	}
	cs.serviceAppView(ctx, t, &v)
	switch missing := t.MissingClientFields(); {
	case slices.Contains(unreadable, "clientSecret"):
		v.AuthorizeWhy = "Its client secret does not open with the configured keys: set a new one below first."
	case len(missing) > 0:
		v.AuthorizeWhy = "Set the client config first (missing: " + strings.Join(missing, ", ") + ")."
	case len(t.Scopes) == 0:
		v.AuthorizeWhy = "Set the scopes it needs first."
	}
	if f == nil && safeMethod(c.Request().Method) {
		f = cs.tokenFlash(c, row)
	}
	p := cs.signedPage(c, "Token "+name)
	if !p.CanChange {
		v.AuthorizeWhy, v.RefreshWhy = viewerWhy, viewerWhy
	}
	v.NewLink, v.LinkTTL = newLink, cs.cfg.AuthorizeLinkTTL
	cs.tokenRecords(ctx, name, &v)
	cs.tokenLife(ctx, t, &v)
	v.Flow = cs.flowPanel(c.Request(), row)
	p.Poll, p.Flash, p.Data, p.Canonical = newLink == "", f, v, "/admin/token/"+name
	return cs.render(c, status, "token", p)
}

// viewerWhy is why a viewer's buttons do nothing.
const viewerWhy = "You are signed in as a viewer: viewers change nothing."

// historyOnPage is how much of a token's activity its page shows.
const historyOnPage = 12

// tokenRecords adds the token's pending links and latest activity to v;
// a store that does not answer leaves them out (the page says so in the
// log, not to the reader).
func (cs *Console) tokenRecords(ctx context.Context, name string, v *tokenView) {
	if !v.Row.ServiceApp {
		links, err := cs.d.Service.Links(ctx, name)
		if err != nil {
			cs.log.Warn("console links not listed", "token", name, "error", err.Error())
		}
		v.Links = links
	}
	if cs.d.Activity == nil {
		return
	}
	page, err := cs.d.Activity.List(ctx, activity.Filter{Token: name, Limit: historyOnPage})
	if err != nil {
		cs.log.Warn("console history not listed", "token", name, "error", err.Error())
		return
	}
	v.History, v.MoreHistory = page.Entries, page.Next != ""
}

// tokenLife adds the chart of t's last week to v; a record that does
// not answer leaves it out (and says so in the log).
func (cs *Console) tokenLife(ctx context.Context, t *token.Token, v *tokenView) {
	if cs.d.Activity == nil {
		return
	}
	now := cs.now()
	entries, truncated, err := cs.readLife(ctx, t.Name, now)
	if err != nil {
		cs.log.Warn("console chart not drawn", "token", t.Name, "error", err.Error())
		return
	}
	chart := drawLife(newLife(entries, t, now, truncated), cs.cfg.RefreshThreshold, cs.cfg.MinTokenValidity)
	v.Life = &chart
}

// renderTokenWithLink shows name's page with a link just made.
func (cs *Console) renderTokenWithLink(c echo.Context, name, link, message string) error {
	return cs.renderTokenPage(c, http.StatusOK, name, &flash{"ok", message}, nil, link)
}

func (cs *Console) newTokenPage(c echo.Context) error {
	name := c.QueryParam("name")
	if token.ValidateName(name) != nil {
		name = ""
	}
	return cs.renderNew(c, http.StatusOK, nil, configForm{Name: name, RedirectURI: consoleOrigin(c.Request()) + "/callback",
		ServiceApp: c.QueryParam("kind") == string(token.KindServiceApp)})
}

func (cs *Console) renderNew(c echo.Context, status int, f *flash, form configForm) error {
	p := cs.signedPage(c, "New token")
	p.Flash = f
	if form.ServiceApp {
		cs.managerOptions(c.Request().Context(), &form)
	}
	p.Data = tokenView{New: true, Form: form, DefaultRedirect: consoleOrigin(c.Request()) + "/callback", KindURLs: newKindURLs(form.Name)}
	return cs.render(c, status, "new", p)
}

// formConfig reads the client config form, or a Service App's. The
// client secret is write-only: left empty, it stays as it is.
func formConfig(c echo.Context) (token.ConfigChange, configForm) {
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
	ch := token.ConfigChange{ClientID: &form.ClientID, RedirectURI: &form.RedirectURI, Scopes: &scopes}
	if secret := strings.TrimSpace(c.FormValue("clientSecret")); secret != "" {
		ch.ClientSecret = &secret
	}
	return ch, form
}

// createToken is the New token form: the same client config, on a name
// that must not exist yet.
func (cs *Console) createToken(c echo.Context) error {
	since := cs.now().Add(-time.Second) // stored times are in ms
	ch, form := formConfig(c)
	if err := token.ValidateName(form.Name); err != nil {
		return cs.renderNew(c, http.StatusBadRequest, &flash{"error", "Name: use 1-128 characters of A-Z a-z 0-9 . _ - (not . or ..)."}, form)
	}
	name := form.Name
	if ch.ClientSecret == nil {
		return cs.renderNew(c, http.StatusBadRequest, &flash{"error", "A new token needs its client secret."}, form)
	}
	if !form.ServiceApp && (ch.Scopes == nil || len(*ch.Scopes) == 0) {
		// PUT /admin/tokens/N may leave them for later; a person filling
		// in this form most likely forgot them, and cannot authorize without.
		return cs.renderNew(c, http.StatusBadRequest, &flash{"error", "Scopes: type the scopes the integration has on developer.webex.com, " +
			"separated by spaces (for example spark:kms cjp:config_read). Webex is asked for exactly these when the token is authorized."}, form)
	}
	if pp := c.FormValue("passphrase"); pp != "" {
		ch.Passphrase = &pp
	}
	if form.ServiceApp {
		kind := string(token.KindServiceApp)
		ch.Kind = &kind
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	saved, err := cs.d.Service.SaveClientConfig(ctx, cs.actor(c), name, ch, lifecycle.CreateOnly)
	switch {
	case errors.Is(err, token.ErrExists):
		return cs.renderNew(c, http.StatusConflict, &flash{"error", "A token named " + name + " exists already: open it from the overview to change it."}, form)
	case errors.Is(err, token.ErrInvalidConfig):
		return cs.renderNew(c, http.StatusBadRequest, &flash{"error", httpapi.StatusOf(err, name, cs.now()).Message}, form)
	case err != nil:
		ae := httpapi.StatusOf(err, name, cs.now())
		return cs.renderNew(c, ae.Code, &flash{"error", "Not created: " + ae.Message}, form)
	}
	cs.changed(name)
	if form.ServiceApp {
		return cs.afterServiceAppSave(c, name, saved, "created", since)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done=created")
}

// saveConfig saves the client config form of an existing token.
func (cs *Console) saveConfig(c echo.Context) error {
	name := c.Param("name")
	ch, form := formConfig(c)
	form.Name = name
	return cs.save(c, name, ch, &form, "saved")
}

// savePassphrase sets or removes the token's own passphrase.
func (cs *Console) savePassphrase(c echo.Context) error {
	name := c.Param("name")
	pp, done := c.FormValue("passphrase"), "passphrase_set"
	if c.FormValue("action") == "remove" {
		pp, done = "", "passphrase_removed"
	} else if pp == "" {
		return cs.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Type the new passphrase first."}, nil)
	}
	return cs.save(c, name, token.ConfigChange{Passphrase: &pp}, nil, done)
}

// save saves ch into the existing token name and shows its page.
func (cs *Console) save(c echo.Context, name string, ch token.ConfigChange, form *configForm, done string) error {
	since := cs.now().Add(-time.Second) // stored times are in ms
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	saved, err := cs.d.Service.SaveClientConfig(ctx, cs.actor(c), name, ch, lifecycle.UpdateOnly)
	if err != nil {
		ae := httpapi.StatusOf(err, name, cs.now())
		if ae.Code == http.StatusNotFound {
			return cs.renderMessage(c, http.StatusNotFound, "No such token", &flash{"error", ae.Message})
		}
		what := "Not saved: "
		if ch.Passphrase != nil && form == nil {
			what = "Passphrase not set: "
		}
		return cs.renderToken(c, ae.Code, name, &flash{"error", what + ae.Message}, form)
	}
	cs.changed(name)
	if len(saved.Changed) == 0 {
		done = "unchanged"
	}
	if saved.Token != nil && saved.Token.IsServiceApp() {
		return cs.afterServiceAppSave(c, name, saved, done, since)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done="+done)
}

// refresh is Refresh now.
func (cs *Console) refresh(c echo.Context) error {
	name := c.Param("name")
	since := cs.now().Add(-time.Second) // stored times are in ms
	res, err := cs.d.Service.RefreshNow(c.Request().Context(), cs.actor(c), name)
	cs.changed(name)
	if err != nil {
		ae := httpapi.StatusOf(err, name, cs.now())
		if ae.RetryAfter > 0 {
			httpapi.SetRetryAfter(c, ae.RetryAfter)
		}
		return cs.renderToken(c, ae.Code, name, &flash{"error", cs.refreshFailure(name, res, err, since)}, nil)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done=refreshed")
}

// refreshFailure says in words why Refresh now on name failed (the log
// has the error itself: RefreshNow wrote it).
func (cs *Console) refreshFailure(name string, res lifecycle.Result, err error, since time.Time) string {
	ae := httpapi.StatusOf(err, name, cs.now())
	switch {
	case res.Token != nil && res.Token.IsServiceApp():
		return "Not minted: " + mintFailure(res.Token, since, ae.Message)
	case errors.Is(err, token.ErrConfigError), errors.Is(err, token.ErrClientRejected):
		return "Refresh failed: " + clientAdvice + ". Refreshing then resumes by itself."
	}
	return "Refresh failed: " + ae.Message
}

// deleteToken deletes a token once its name was typed to confirm.
func (cs *Console) deleteToken(c echo.Context) error {
	name := c.Param("name")
	if c.FormValue("confirm") != name {
		return cs.renderToken(c, http.StatusBadRequest, name, &flash{"error", "Not deleted: type the token's name exactly to confirm."}, nil)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if err := cs.d.Service.Delete(ctx, cs.actor(c), name); err != nil {
		ae := httpapi.StatusOf(err, name, cs.now())
		return cs.renderMessage(c, ae.Code, "Not deleted", &flash{"error", "Not deleted: " + ae.Message})
	}
	cs.changed(name)
	return c.Redirect(http.StatusSeeOther, "/admin/?deleted="+url.QueryEscape(name))
}
