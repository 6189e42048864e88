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
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/token"
)

// Service Apps in the console (DESIGN 5a): the New token form's second
// kind, a Service App's page (its app, target org and manager; Refresh
// now mints; no Authorize with Webex), and a manager's list of the
// Service Apps it mints. Creating or changing one mints it as PUT
// /admin/tokens/N does (mintAfterPut), and the page says how that went.

// applicationsTokenScope is the scope a manager's grant must hold; the
// form lists the integrations that have it first.
const applicationsTokenScope = "spark:applications_token"

// managerOption is one integration in a Service App's manager choice.
type managerOption struct {
	Name, Text string
	Selected   bool
}

// kindURLs are the New token form's addresses, one per kind.
type kindURLs struct{ Integration, ServiceApp string }

// newKindURLs keeps the name typed so far when the admin switches kind
// (the script keeps it up to date as they type).
func newKindURLs(name string) kindURLs {
	u := kindURLs{Integration: "/admin/new", ServiceApp: "/admin/new?kind=" + string(token.KindServiceApp)}
	if name != "" && token.ValidateName(name) == nil {
		u.Integration += "?name=" + url.QueryEscape(name)
		u.ServiceApp += "&name=" + url.QueryEscape(name)
	}
	return u
}

// formServiceApp reads a Service App's config form. It never sets the
// kind: only a new token's form does, and the store refuses Service App
// fields on an integration.
func formServiceApp(c echo.Context) (token.ConfigChange, configForm) {
	form := configForm{
		ServiceApp:  true,
		Name:        strings.TrimSpace(c.FormValue("name")),
		AppID:       strings.TrimSpace(c.FormValue("appId")),
		ClientID:    strings.TrimSpace(c.FormValue("clientId")),
		TargetOrgID: strings.TrimSpace(c.FormValue("targetOrgId")),
		Manager:     strings.TrimSpace(c.FormValue("manager")),
	}
	ch := token.ConfigChange{AppID: &form.AppID, ClientID: &form.ClientID, TargetOrgID: &form.TargetOrgID, Manager: &form.Manager}
	if secret := strings.TrimSpace(c.FormValue("clientSecret")); secret != "" {
		ch.ClientSecret = &secret
	}
	return ch, form
}

// managerOptions fills form's manager choice with every integration
// token but the form's own, from the console's listing of every token.
func (cs *Console) managerOptions(ctx context.Context, form *configForm) {
	snap, err := cs.d.Listing.Overview(ctx)
	if err != nil {
		cs.log.Warn("console manager choice not listed", "error", err.Error())
	}
	var rows []listing.Row
	if snap != nil {
		rows = slices.Clone(snap.Rows)
	}
	slices.SortFunc(rows, func(a, b listing.Row) int { return strings.Compare(a.Name, b.Name) })
	found := false
	for _, r := range rows {
		if r.ServiceApp || r.Name == form.Name {
			continue
		}
		o := managerOption{Name: r.Name, Text: r.Name + " (" + healthLabels[r.Health] + ")", Selected: r.Name == form.Manager}
		found = found || o.Selected
		if slices.Contains(r.Scopes, applicationsTokenScope) {
			form.ManagersWithScope = append(form.ManagersWithScope, o)
		} else {
			form.OtherManagers = append(form.OtherManagers, o)
		}
	}
	if form.Manager != "" && !found {
		// Keep what is stored or was sent, so that the page shows it and
		// the server says what is wrong with it.
		form.OtherManagers = append(form.OtherManagers, managerOption{Name: form.Manager, Text: form.Manager + " (not an integration token here)", Selected: true})
	}
}

// serviceAppView adds to a token page what depends on the token's kind:
// a Service App's manager and manager choice, or the Service Apps an
// integration manages.
func (cs *Console) serviceAppView(ctx context.Context, t *token.Token, v *tokenView) {
	if !t.IsServiceApp() {
		snap, err := cs.d.Listing.Overview(ctx)
		if err != nil {
			cs.log.Warn("console managed Service Apps not listed", "token", t.Name, "error", err.Error())
			return
		}
		for _, r := range snap.Rows {
			if r.ServiceApp && r.Manager == t.Name {
				v.Managed = append(v.Managed, r)
			}
		}
		slices.SortFunc(v.Managed, func(a, b listing.Row) int { return strings.Compare(a.Name, b.Name) })
		return
	}
	cs.managerOptions(ctx, &v.Form)
	m, err := cs.d.Tokens.Get(ctx, t.Manager)
	var unreadable []string
	var sealed *token.SealedError
	if errors.As(err, &sealed) {
		m, unreadable, err = sealed.Token, sealed.Fields, nil
	}
	switch {
	case errors.Is(err, token.ErrNotFound), errors.Is(err, token.ErrInvalidName):
		v.ManagerMissing = true
	case err != nil:
		cs.log.Warn("console manager read failed", "token", t.Name, "manager", t.Manager, "error", err.Error())
	default:
		row := listing.NewRow(m, unreadable, cs.now(), cs.d.Listing.Windows)
		v.Manager = &row
		if t.WaitsForManager() && t.ManagerBack(m) {
			v.RefreshWhy = "" // the manager is back: Refresh now mints it
		}
	}
}

// serviceAppFlash is the message a redirect to a Service App's page
// asked for, or nil for the messages both kinds share.
func serviceAppFlash(done string) *flash {
	const served = " It is served to flows now, and minted again by itself whenever its tokens lapse."
	switch done {
	case "created":
		return &flash{"ok", "Service App created."}
	case "created_minted":
		return &flash{"ok", "Service App created and minted: Webex issued its first token pair with the manager's token." + served}
	case "saved":
		return &flash{"ok", "Service App config saved."}
	case "saved_minted":
		return &flash{"ok", "Service App config saved and minted: Webex issued a token pair with the manager's token." + served}
	case "refreshed":
		return &flash{"ok", "Minted: Webex issued a new token pair with the manager's token."}
	}
	return nil
}

// afterServiceAppSave shows the page of the Service App that the console
// just created or changed, saying whether the mint that followed the save
// worked and, if not, why (failures since since are this request's).
func (cs *Console) afterServiceAppSave(c echo.Context, name string, saved lifecycle.Saved, done string, since time.Time) error {
	if saved.Mint == nil { // nothing to mint: it holds tokens, or is held back
		return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done="+done)
	}
	what, minted := "Service App config saved", "saved_minted"
	if done == "created" {
		what, minted = "Service App created", "created_minted"
	}
	if saved.Mint.Minted {
		return c.Redirect(http.StatusSeeOther, "/admin/token/"+name+"?done="+minted)
	}
	why := saved.Mint.LastError
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	defer cancel()
	if t, err := cs.d.Tokens.Get(ctx, name); err == nil {
		why = mintFailure(t, since, why)
	}
	return cs.renderToken(c, http.StatusOK, name, &flash{"error", what + ", but not minted: " + why}, nil)
}

// mintFailure says why the Service App t was not minted: its manager
// needs re-authorization, or what Webex said since since, or fallback.
func mintFailure(t *token.Token, since time.Time, fallback string) string {
	switch {
	case t.WaitsForManager():
		return "its manager " + t.Manager + " needs re-authorization: open " + t.Manager +
			" and Authorize with Webex; this Service App is then minted by itself at the next sweep."
	case t.LastError != nil && !t.LastError.At.Before(since):
		return t.LastError.Message
	}
	return fallback
}
