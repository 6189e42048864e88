package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/testing/memstore"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
	"github.com/wxcc/tokenservice/shared/token"
	"github.com/wxcc/tokenservice/shared/webex"
)

// FuzzRequest sends arbitrary query strings and headers through the whole
// api stack (over the in-memory store: this fuzzes input handling, not
// storage) and checks that every answer is one of the documented statuses
// with a JSON body whose status matches, never a 500 or a panic.
func FuzzRequest(f *testing.F) {
	f.Add("/", "name=demo", "flow-passphrase-123", "203.0.113.1", "")
	f.Add("/init", "name=../x", "", "", "")
	f.Add("/callback", "code=x&state=set_state_here", "", "1.2.3.4, 5.6.7.8", "")
	f.Add("/callback", "error=access_denied&error_description=%00%ff", "", "", "")
	f.Add("/", "name=__x__&name=demo", "x", "::1", "00000000000000000000000000000000/1;o=1")
	f.Add("/admin/tokens", "", "", "", "")

	store := memstore.New()
	now := time.Now()
	store.Create(context.Background(), &token.Token{Name: "demo", ClientID: "c", ClientSecret: "s", RedirectURI: "https://x/cb",
		AccessToken: "at", RefreshToken: "rt", AccessExpires: now.Add(6 * time.Hour), RefreshExpires: now.Add(30 * 24 * time.Hour)})
	fake := webexfake.NewServer(webexfake.New())
	f.Cleanup(fake.Close)
	cfg, err := config.Load(config.API, func(k string) string {
		return map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "flow-passphrase-123",
			"ADMIN_PASSPHRASE": "admin-passphrase-123", "TRUSTED_PROXY_HOPS": "1", "LEGACY_STATE": "true"}[k]
	})
	if err != nil {
		f.Fatal(err)
	}
	issuer, _ := webex.New(webex.Options{TokenURL: fake.TokenURL, AuthorizeURL: fake.AuthorizeURL, Timeout: time.Second})
	log := logging.New(io.Discard, logging.ParseLevel("error"))
	r := token.NewRefresher(token.RefresherConfig{Store: store, Issuer: issuer, Holder: "fuzz", Logger: log})
	f.Cleanup(r.Close)
	srv := httptest.NewServer(newServer(deps{cfg: cfg, store: store, refresher: r,
		ping: func(context.Context) error { return nil }, authorizeURL: issuer.AuthorizeURL, logger: log}))
	f.Cleanup(srv.Close)
	documented := map[int]bool{200: true, 204: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true, 502: true, 503: true}

	f.Fuzz(func(t *testing.T, path, rawQuery, pass, xff, trace string) {
		if len(path) == 0 || path[0] != '/' || !sendable(path) || !sendable(rawQuery) {
			return // not a request line a client sends: net/http itself answers it (plain 400)
		}
		u, err := url.Parse(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		u.Path, u.RawQuery = path, rawQuery
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return // not a request a client could send
		}
		for k, v := range map[string]string{"x-token-passphrase": pass, "X-Forwarded-For": xff, "X-Cloud-Trace-Context": trace} {
			if v != "" {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // the client refused to send it (invalid header bytes)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !documented[resp.StatusCode] {
			t.Fatalf("%s?%s: status %d: %s", path, rawQuery, resp.StatusCode, body)
		}
		if resp.StatusCode == 204 {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || m["status"] != strconv.Itoa(resp.StatusCode) {
			t.Fatalf("%s?%s: body %q does not carry status %d", path, rawQuery, body, resp.StatusCode)
		}
	})
}

// sendable reports whether s can stand in a request line as it is.
func sendable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f || s[i] == '#' {
			return false
		}
	}
	return true
}
