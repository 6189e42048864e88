package main

import (
	"context"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

func TestInitCreatesButNeverOverwrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	hdr := map[string]string{"x-token-passphrase": h.Env["TOKEN_PASSPHRASE"]}

	if r := get(t, a.url+"/init?name=fresh", hdr); r.code != 200 {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	d := h.Doc("fresh")
	for _, f := range []string{"clientId", "clientSecret", "redirectUri"} {
		if v, ok := d[f]; !ok || v != "" {
			t.Fatalf("%s = %v, want an empty string", f, v)
		}
	}
	h.seed("existing", 6*time.Hour, 30*24*time.Hour, map[string]any{"custom": "kept"})
	before := h.Doc("existing")
	if r := get(t, a.url+"/init?name=existing", hdr); r.code != 200 {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	if after := h.Doc("existing"); !reflect.DeepEqual(before, after) {
		t.Fatalf("/init changed an existing document:\nbefore %v\nafter  %v", before, after)
	}
	if r := get(t, a.url+"/init?name=a%2Fb", hdr); r.code != 400 {
		t.Fatalf("got %d, want 400", r.code)
	}
	if r := get(t, a.url+"/init?name=x", nil); r.code != 401 {
		t.Fatalf("got %d, want 401", r.code)
	}
}

func TestLegacyCallback(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"LEGACY_STATE": "true"})
	a := h.startAPI(nil)
	clientID, secret, redirect := "client-cb", "csecret-"+randomHex(8), "https://flows.example.com/callback"
	h.Secret(secret)
	h.Webex.AddClient(clientID, secret)
	if _, err := h.Firestore.Collection(h.Collection).Doc("onboard").Set(context.Background(), map[string]any{
		"clientId": clientID, "clientSecret": secret, "redirectUri": redirect}); err != nil {
		t.Fatal(err)
	}
	code := h.Webex.IssueCode(clientID, redirect)
	h.Secret(code)
	r := get(t, a.url+"/callback?code="+url.QueryEscape(code)+"&state=onboard", nil)
	if r.code != 200 {
		t.Fatalf("got %d %s, want 200", r.code, r.raw)
	}
	d := h.Doc("onboard")
	at, _ := d["accessToken"].(string)
	rt, _ := d["refreshToken"].(string)
	h.Secret(at)
	h.Secret(rt)
	if at == "" || rt == "" || testkit.Millis(d["accessExpires"]) < time.Now().Add(11*time.Hour).UnixMilli() || d["status"] != "active" {
		t.Fatalf("tokens not stored: %v", keys(d))
	}
	// The token is now served.
	if r := h.token(a, "onboard"); r.code != 200 || r.str("token") != at {
		t.Fatalf("got %d, want the authorized token", r.code)
	}
	// A used code is rejected by Webex, and reported clearly.
	if r := get(t, a.url+"/callback?code="+url.QueryEscape(code)+"&state=onboard", nil); r.code != 400 || !strings.Contains(r.str("message"), "code") {
		t.Fatalf("reused code: got %d %s", r.code, r.raw)
	}

	tests := []struct {
		name, query string
		want        int
		mention     string
	}{
		{"placeholder", "code=abc&state=set_state_here", 400, "set_state_here"},
		{"unknown name", "code=abc&state=nobody", 404, "nobody"},
		{"webex error", "error=access_denied&error_description=user+declined&state=onboard", 400, "access_denied"},
		{"missing code", "state=onboard", 400, "code"},
		{"invalid name", "code=abc&state=..", 400, "state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, a.url+"/callback?"+tc.query, nil)
			if r.code != tc.want || !strings.Contains(r.str("message"), tc.mention) {
				t.Fatalf("got %d %s, want %d mentioning %q", r.code, r.raw, tc.want, tc.mention)
			}
		})
	}
}

func TestCallbackRefusesRawStateByDefault(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	h.seed("victim", 6*time.Hour, 30*24*time.Hour, nil)
	before := h.Doc("victim")
	r := get(t, a.url+"/callback?code=abc&state=victim", nil)
	if r.code != 400 {
		t.Fatalf("got %d %s, want 400", r.code, r.raw)
	}
	if !reflect.DeepEqual(before, h.Doc("victim")) || h.Webex.Stats().Calls != 0 {
		t.Fatal("a raw state changed the token or reached Webex")
	}
}
