package firestore

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/wxcc/tokenservice/shared/token"
)

// TestServiceAppDocument pins the Service App fields of DESIGN section 3
// (kind, appId, targetOrgId, manager, orgId) as stored, and reads them
// back; kind "integration", as another writer may store it, is an
// integration.
func TestServiceAppDocument(t *testing.T) {
	t.Parallel()
	s, raw := newStore(t)
	ctx := ctxT(t)
	gen := int64(9)
	app := &token.Token{
		Name: "app", Kind: token.KindServiceApp, ClientID: "C", ClientSecret: "S",
		AppID: "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2FwcA", TargetOrgID: "org-1", Manager: "mgr", OrgID: "org-1",
		Status: token.StatusReauthRequired, ManagerGeneration: &gen,
	}
	if _, err := s.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	snap, err := raw.Doc("app").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"clientId": "C", "clientSecret": "S", "redirectUri": "", "accessToken": "", "refreshToken": "", "generation": int64(0),
		"kind": "service_app", "appId": "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL2FwcA", "targetOrgId": "org-1",
		"manager": "mgr", "orgId": "org-1", "status": "reauth_required", "managerGeneration": int64(9),
	}
	if diff := cmp.Diff(want, snap.Data()); diff != "" {
		t.Errorf("stored Service App (-want +got):\n%s", diff)
	}
	got, err := s.Get(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsServiceApp() || got.AppID != app.AppID || got.TargetOrgID != "org-1" || got.Manager != "mgr" ||
		got.ManagerGeneration == nil || *got.ManagerGeneration != 9 {
		t.Errorf("read back %+v", got)
	}

	doc := sampleDoc()
	doc["kind"] = "integration"
	doc["orgId"] = "org-2"
	if _, err := raw.Doc("explicit").Set(ctx, doc); err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, "explicit")
	if err != nil {
		t.Fatal(err)
	}
	if got.IsServiceApp() || got.Org() != "org-2" || !got.AccessExpires.Equal(ms.Add(12*time.Hour)) {
		t.Errorf("kind integration read as %+v", got)
	}
}
