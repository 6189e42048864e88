package webex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/token"
)

// TestMintStoredAppIDStaysInItsSegment: whatever appId is stored (written
// before the rule, or straight into Firestore), the mint, which carries
// the manager's bearer token, goes to /v1/applications/{one segment}/token
// or nowhere. The server records the request line exactly as sent.
func TestMintStoredAppIDStaysInItsSegment(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.RequestURI)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"not found"}`)
	}))
	defer srv.Close()
	c, err := New(testOptions(Options{APIURL: srv.URL + "/base", Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		appID string
		sent  bool // false: refused without a request
	}{
		{"..", false},
		{".", false},
		{"a/b", true},
		{"../token", true},
		{"../../v1/people/me", true},
		{"/v1/people/me", true},
		{"a/../../x", true},
		{"%2e%2e", true},
		{"..%2f..", true},
		{`..\..`, true},
		{"a?b=c", true},
		{"a#b", true},
		{"a b", true},
		{"..;", true},
		{"...", true},
	}
	for _, tt := range tests {
		t.Run(tt.appID, func(t *testing.T) {
			mu.Lock()
			got = got[:0]
			mu.Unlock()
			_, err := c.Mint(context.Background(), token.MintRequest{AppID: tt.appID, Client: token.Client{ID: "cid", Secret: "cs"},
				TargetOrgID: "org", ManagerToken: "manager-bearer"})
			if !errors.Is(err, token.ErrClientRejected) {
				t.Fatalf("got %v, want ErrClientRejected", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !tt.sent {
				if len(got) != 0 {
					t.Fatalf("sent %q, want no request", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got requests %q, want one", got)
			}
			seg, ok := strings.CutPrefix(got[0], "/base/v1/applications/")
			seg, ok2 := strings.CutSuffix(seg, "/token")
			if !ok || !ok2 || strings.Contains(seg, "/") || seg == "." || seg == ".." {
				t.Fatalf("request went to %q, outside /base/v1/applications/{appId}/token", got[0])
			}
			if dec, err := url.PathUnescape(seg); err != nil || dec != tt.appID {
				t.Fatalf("segment %q decodes to %q (%v), want %q", seg, dec, err, tt.appID)
			}
		})
	}
}

func TestPathSegment(t *testing.T) {
	for _, s := range []string{"", ".", ".."} {
		if got, err := pathSegment(s); err == nil {
			t.Errorf("pathSegment(%q) = %q, want an error", s, got)
		}
	}
	for in, want := range map[string]string{"abc": "abc", "a/b": "a%2Fb", "a?b": "a%3Fb", "%": "%25", "...": "..."} {
		if got, err := pathSegment(in); err != nil || got != want {
			t.Errorf("pathSegment(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
}
