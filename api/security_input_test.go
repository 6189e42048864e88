package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// PUT /admin/tokens/N takes its JSON to the letter: encoding/json alone
// matches keys case-insensitively and lets the last of two equal keys win,
// so "ClientSecret" or a second "clientSecret" would set the secret.
func TestPutTokenBodyIsStrict(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	h.seed("strict", 6*time.Hour, 30*24*time.Hour, nil)
	before := h.Doc("strict")
	url := a.url + "/admin/tokens/strict"
	for _, tc := range []struct {
		name, body, wantMsg string
	}{
		{"other casing", `{"ClientSecret":"new-secret-1"}`, `did you mean "clientSecret"`},
		{"upper case", `{"CLIENTSECRET":"new-secret-1"}`, "case-sensitive"},
		{"duplicate key", `{"clientSecret":"new-secret-1","clientSecret":"new-secret-2"}`, `duplicate field "clientSecret"`},
		{"duplicate in other casing", `{"clientId":"a","clientid":"b"}`, "case-sensitive"},
		{"unknown key", `{"clientIdentifier":"a"}`, "the fields are"},
		{"wrong type", `{"scopes":"spark:kms"}`, `"scopes" has the wrong type`},
		{"two objects", `{"clientId":"a"} {"clientId":"b"}`, "one JSON object"},
		{"not an object", `["clientId"]`, "JSON object"},
		{"broken", `{"clientId":`, "not valid JSON"},
		{"fragment", `{"redirectUri":"https://flows.example.com/callback#x"}`, "fragment"},
		{"empty fragment", `{"redirectUri":"https://flows.example.com/callback#"}`, "fragment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodPut, url, tc.body, admin(nil))
			if r.code != 400 || !strings.Contains(r.str("message"), tc.wantMsg) {
				t.Fatalf("got %d %s, want 400 saying %q", r.code, r.raw, tc.wantMsg)
			}
			if strings.Contains(r.raw, "new-secret") {
				t.Fatalf("the answer shows a value: %s", r.raw)
			}
		})
	}
	after := h.Doc("strict")
	for _, f := range []string{"clientId", "clientSecret", "redirectUri"} {
		if after[f] != before[f] {
			t.Errorf("a refused body changed %s", f)
		}
	}
	if r := do(t, http.MethodPut, url, `{"clientId":"exact-case","redirectUri":"https://flows.example.com/callback?x=1"}`, admin(nil)); r.code != 200 {
		t.Fatalf("a correct body: got %d %s, want 200", r.code, r.raw)
	}
	if got := h.Doc("strict")["clientId"]; got != "exact-case" {
		t.Fatalf("clientId after a correct body: got %v", got)
	}
}

// A body over the limit answers 413 however it is sent; chunked, the
// limit shows only while the body is read, and used to answer 400.
func TestOversizedBodyIs413(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ADMIN_PASSPHRASE": adminPass})
	h.Secret(adminPass)
	a := h.startAPI(nil)
	const size = 10 << 20
	body := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"clientId":"`), io.LimitReader(zeros{}, size), strings.NewReader(`"}`))
	}
	for _, tc := range []struct {
		name    string
		length  int64
		reader  io.Reader
		chunked bool
	}{
		{name: "chunked", reader: body(), chunked: true},
		{name: "with Content-Length", reader: body(), length: size + 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, a.url+"/admin/tokens/big", tc.reader)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			for k, v := range admin(nil) {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 413 || !bytes.Contains(raw, []byte(`"status":"413"`)) {
				t.Fatalf("got %d %s, want 413", resp.StatusCode, raw)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestStrictUnmarshal(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type embedded struct {
		E string `json:"e"`
	}
	type body struct {
		embedded
		Name    *string           `json:"name"`
		List    []inner           `json:"list"`
		Labels  map[string]string `json:"labels"`
		Skipped string            `json:"-"`
		Dash    string            `json:"-,"`
		private string
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "empty object", in: `{}`},
		{name: "all fields", in: `{"e":"1","name":"n","list":[{"a":"x"}],"labels":{"k":"v"},"-":"d"}`},
		{name: "null", in: `{"name":null}`},
		{name: "nested other casing", in: `{"list":[{"A":"x"}]}`, wantErr: "case-sensitive"},
		{name: "nested duplicate", in: `{"list":[{"a":"x","a":"y"}]}`, wantErr: "duplicate"},
		{name: "map duplicate", in: `{"labels":{"k":"v","k":"w"}}`, wantErr: "duplicate"},
		{name: "map keys are free", in: `{"labels":{"K":"v","k":"w"}}`},
		{name: "skipped field", in: `{"Skipped":"x"}`, wantErr: "unknown field"},
		{name: "unexported field", in: `{"private":"x"}`, wantErr: "unknown field"},
		{name: "deep", in: `{"labels":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, wantErr: "nested too deeply"},
		{name: "trailing", in: `{} x`, wantErr: "one JSON object"},
		{name: "number", in: `3`, wantErr: "JSON object"},
		{name: "empty", in: ``, wantErr: "not valid JSON"},
		{name: "escaped key", in: `{"n\u0061me":"x","name":"y"}`, wantErr: "duplicate"},
		{name: "long unknown key", in: `{"` + strings.Repeat("k", 500) + `":1}`, wantErr: "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b body
			err := strictUnmarshal([]byte(tt.in), &b)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
			case err != nil && len(err.Error()) > 300:
				t.Fatalf("error of %d bytes: %.80s…", len(err.Error()), err)
			}
		})
	}
}
