package testkit

import (
	"context"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// SeedManager writes tokens/name as an integration that can mint Service
// Apps: its client's grants hold scopes (spark:applications_token if none
// are given) at the fake Webex, which knows its access token (accessLeft
// left; expired if not positive) and refresh token (refreshLeft left).
func SeedManager(t testing.TB, c *gfs.Client, collection, name string, fake *webexfake.Fake, accessLeft, refreshLeft time.Duration, scopes ...string) Seeded {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{webexfake.ApplicationsTokenScope}
	}
	now := time.Now()
	s := Seeded{
		ClientID:     "mgr-client-" + RandomHex(4),
		ClientSecret: "mgr-secret-" + RandomHex(8),
		AccessToken:  "mgr-at-" + RandomHex(12),
		RefreshToken: "mgr-rt-" + RandomHex(12),
	}
	fake.AddClient(s.ClientID, s.ClientSecret)
	fake.SetClientScopes(s.ClientID, scopes...)
	fake.AddAccessToken(s.ClientID, s.AccessToken, now.Add(accessLeft))
	fake.AddRefreshToken(s.ClientID, s.RefreshToken, now.Add(refreshLeft))
	anyScopes := make([]any, len(scopes))
	for i, sc := range scopes {
		anyScopes[i] = sc
	}
	doc := map[string]any{
		"clientId":       s.ClientID,
		"clientSecret":   s.ClientSecret,
		"redirectUri":    "https://flows.example.com/callback",
		"accessToken":    s.AccessToken,
		"refreshToken":   s.RefreshToken,
		"accessExpires":  now.Add(accessLeft).UnixMilli(),
		"refreshExpires": now.Add(refreshLeft).UnixMilli(),
		"lastRefresh":    now.Add(-time.Hour).UnixMilli(),
		"scopes":         anyScopes,
	}
	if _, err := c.Collection(collection).Doc(name).Set(context.Background(), doc); err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return s
}

// ServiceApp is a Service App that a Full Admin authorized for OrgID at
// the fake Webex.
type ServiceApp struct {
	AppID, ClientID, ClientSecret, OrgID string
}

// NewServiceApp registers a new Service App with the fake Webex,
// authorized for an org of its own.
func NewServiceApp(fake *webexfake.Fake) ServiceApp {
	a := ServiceApp{
		AppID:        "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL" + RandomHex(8),
		ClientID:     "sa-client-" + RandomHex(4),
		ClientSecret: "sa-secret-" + RandomHex(8),
		OrgID:        RandomHex(4) + "-org",
	}
	fake.AddApp(a.AppID, a.ClientID, a.ClientSecret, a.OrgID)
	return a
}

// Put is the body of PUT /admin/tokens/N creating the Service App with
// manager.
func (a ServiceApp) Put(manager string) map[string]any {
	return map[string]any{"kind": "service_app", "appId": a.AppID, "clientId": a.ClientID,
		"clientSecret": a.ClientSecret, "targetOrgId": a.OrgID, "manager": manager}
}

// Seed writes tokens/name as a Service App document with manager and no
// tokens, plus extra fields (tokens and expiries, say), as an operator or
// an earlier version could have left it.
func (a ServiceApp) Seed(t testing.TB, c *gfs.Client, collection, name, manager string, extra map[string]any) {
	t.Helper()
	doc := map[string]any{"kind": "service_app", "appId": a.AppID, "clientId": a.ClientID, "clientSecret": a.ClientSecret,
		"redirectUri": "", "targetOrgId": a.OrgID, "manager": manager, "accessToken": "", "refreshToken": ""}
	for k, v := range extra {
		doc[k] = v
	}
	if _, err := c.Collection(collection).Doc(name).Set(context.Background(), doc); err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
}
