package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/config"
	"github.com/wxcc/tokenservice/shared/lifecycle"
	"github.com/wxcc/tokenservice/shared/logging"
	"github.com/wxcc/tokenservice/shared/passphrase"
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
	f.Add("/", "name=own", "own-passphrase-0123", "203.0.113.2", "")
	f.Add("/", "name=own", "own-passphrase-0124", "203.0.113.2", "")

	srv := fuzzServer(f)
	documented := documentedStatuses

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

// documentedStatuses are the statuses the README lists.
var documentedStatuses = map[int]bool{200: true, 204: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true, 502: true, 503: true}

// fuzzServer starts the whole api over the in-memory store, with the admin
// endpoints on, a token "demo" and a token "own" with its own passphrase.
func fuzzServer(f *testing.F) *httptest.Server {
	store := memstore.New()
	now := time.Now()
	store.Create(context.Background(), &token.Token{Name: "demo", ClientID: "c", ClientSecret: "s", RedirectURI: "https://x/cb",
		AccessToken: "at", RefreshToken: "rt", AccessExpires: now.Add(6 * time.Hour), RefreshExpires: now.Add(30 * 24 * time.Hour)})
	own, err := passphrase.HashWith("own-passphrase-0123", passphrase.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		f.Fatal(err)
	}
	store.Create(context.Background(), &token.Token{Name: "own", ClientID: "c", ClientSecret: "s", RedirectURI: "https://x/cb", PassphraseHash: own,
		AccessToken: "at2", RefreshToken: "rt2", AccessExpires: now.Add(6 * time.Hour), RefreshExpires: now.Add(30 * 24 * time.Hour)})
	fake := webexfake.NewServer(webexfake.New())
	f.Cleanup(fake.Close)
	cfg, err := config.Load(config.API, func(k string) string {
		return map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "TOKEN_PASSPHRASE": "flow-passphrase-123",
			"ADMIN_PASSPHRASE": "admin-passphrase-123", "TRUSTED_PROXY_HOPS": "1", "LEGACY_STATE": "true"}[k]
	})
	if err != nil {
		f.Fatal(err)
	}
	issuer, _ := webex.New(webex.Options{TokenURL: fake.TokenURL, AuthorizeURL: fake.AuthorizeURL, APIURL: fake.URL, Timeout: time.Second})
	log := logging.New(io.Discard, logging.ParseLevel("error"))
	r := lifecycle.NewRefresher(lifecycle.RefresherConfig{Store: store, Issuer: issuer, Holder: "fuzz", Logger: log,
		Threshold: cfg.RefreshThreshold, WebexTimeout: cfg.WebexTimeout})
	f.Cleanup(r.Close)
	svc := lifecycle.New(r, lifecycle.Deps{Store: store, HashPassphrase: passphrase.Hash})
	srv := httptest.NewServer(newServer(deps{cfg: cfg, store: fuzzAdminStore{store, &sync.Map{}}, service: svc,
		authorizeURL: issuer.AuthorizeURL, logger: log}))
	f.Cleanup(srv.Close)
	return srv
}

// fuzzAdminStore adds what the admin endpoints need to the in-memory store.
type fuzzAdminStore struct {
	*memstore.Store
	nonces *sync.Map
}

func (s fuzzAdminStore) List(ctx context.Context, pageSize int, fn func(*token.Token) error) error {
	return s.Due(ctx, time.Now().Add(1000*time.Hour), pageSize, fn)
}

func (s fuzzAdminStore) ListChecked(ctx context.Context, pageSize int, fn func(*token.Token, []string) error) error {
	return s.List(ctx, pageSize, func(t *token.Token) error { return fn(t, nil) })
}

func (s fuzzAdminStore) LastSweep(context.Context) (*token.SweepRecord, error) {
	return nil, token.ErrNotFound
}

func (s fuzzAdminStore) Ping(context.Context) error { return nil }

func (s fuzzAdminStore) UseNonce(_ context.Context, nonce string, _ time.Time) (bool, error) {
	_, used := s.nonces.LoadOrStore(nonce, true)
	return !used, nil
}

// FuzzAdminRequest sends arbitrary methods, paths, bodies and origins,
// with or without the admin passphrase, through the whole api: every
// answer is a documented status with the JSON shape (HEAD and 204 aside),
// unknown routes and methods are 404 and 405, and no admin answer ever
// grants another origin.
func FuzzAdminRequest(f *testing.F) {
	f.Add(uint8(2), "/admin/tokens/demo", `{"clientId":"c2"}`, "", true)
	f.Add(uint8(2), "/admin/tokens/demo", `{"ClientId":"c2","clientId":"c3"}`, "https://evil.example", true)
	f.Add(uint8(2), "/admin/tokens/new", `{"clientId":"c","clientSecret":"s","redirectUri":"https://x.example/cb#f","scopes":["a"]}`, "", true)
	f.Add(uint8(5), "/admin/tokens", "", "https://evil.example", false)
	f.Add(uint8(1), "/favicon.ico", "", "", false)
	f.Add(uint8(3), "/healthz", "x", "", false)
	f.Add(uint8(5), "/", "", "https://desktop.example", false)
	srv := fuzzServer(f)
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions}

	f.Fuzz(func(t *testing.T, m uint8, path, body, origin string, withAdmin bool) {
		if len(path) == 0 || path[0] != '/' || !sendable(path) || len(body) > 1<<16 {
			return
		}
		method := methods[int(m)%len(methods)]
		u, err := url.Parse(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		u.Path = path
		req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("content-type", "application/json")
		if withAdmin {
			req.Header.Set("x-admin-passphrase", "admin-passphrase-123")
		}
		if origin != "" {
			req.Header["Origin"] = []string{origin}
			req.Header.Set("Access-Control-Request-Method", "PUT")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // the client refused to send it
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if !documentedStatuses[resp.StatusCode] {
			t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
		}
		p := u.EscapedPath()
		isAdmin := p == "/admin" || strings.HasPrefix(p, "/admin/") || p == "/authorize"
		if isAdmin && resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%s %s: an admin answer grants origin %q", method, path, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if resp.StatusCode == 204 || method == http.MethodHead {
			return
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil || got["status"] != strconv.Itoa(resp.StatusCode) {
			t.Fatalf("%s %s: body %q does not carry status %d", method, path, raw, resp.StatusCode)
		}
	})
}

// FuzzStrictUnmarshal checks the PUT body decoder: it never panics, and a
// body it accepts has each key once, in the exact case of a field, and
// decodes as encoding/json decodes it.
func FuzzStrictUnmarshal(f *testing.F) {
	f.Add([]byte(`{"clientId":"c","clientSecret":"s","redirectUri":"https://x/cb","scopes":["a","b"],"passphrase":null}`))
	f.Add([]byte(`{"clientSecret":"a","clientSecret":"b"}`))
	f.Add([]byte(`{"CLIENTSECRET":"a"}`))
	f.Add([]byte(`{"client\u0049d":"a"}`))
	f.Add([]byte(`{"scopes":[[[{}]]]}`))
	f.Add([]byte(`{} {}`))
	fields := jsonFields(reflect.TypeOf(clientConfig{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict clientConfig
		if strictUnmarshal(data, &strict) != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("accepted %q, which is not an object", data)
		}
		seen := map[string]bool{}
		for dec.More() {
			k, _ := dec.Token()
			key := k.(string)
			if _, ok := fields[key]; !ok || seen[key] {
				t.Fatalf("accepted %q with key %q (unknown, other casing, or repeated)", data, key)
			}
			seen[key] = true
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatalf("accepted %q: %v", data, err)
			}
		}
		var loose clientConfig
		if err := json.Unmarshal(data, &loose); err != nil || !reflect.DeepEqual(loose, strict) {
			t.Fatalf("accepted %q: decodes to %+v, encoding/json to %+v (%v)", data, strict, loose, err)
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

// FuzzQueryValue: the hot path's query reading answers what
// url.Values.Get would, for any raw query.
func FuzzQueryValue(f *testing.F) {
	for _, q := range []string{"name=demo", "name=a&name=b", "x=1&name=", "name", "name=%41", "name=a+b", "a=1;name=2", "&&name==x", ""} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := &url.URL{RawQuery: raw}
		if got, want := queryValue(u, "name"), u.Query().Get("name"); got != want {
			t.Fatalf("queryValue(%q) = %q, want %q", raw, got, want)
		}
	})
}
