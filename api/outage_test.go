package main

import (
	"context"
	"os"
	"testing"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/netfault"
)

// ownerCreds is what the Firestore client sends to the emulator.
type ownerCreds struct{}

func (ownerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerCreds) RequireTransportSecurity() bool { return false }

// partitionableClient is a Firestore client that reaches the emulator
// through a proxy the test can cut, as a network partition would.
func partitionableClient(t *testing.T) (*gfs.Client, *netfault.Proxy) {
	t.Helper()
	p, err := netfault.Start(os.Getenv("FIRESTORE_EMULATOR_HOST"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	conn, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(ownerCreds{}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gfs.NewClient(context.Background(), emulator.Project(), option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

func TestFirestoreUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"CACHE_MAX_AGE": "200ms"})
	client, proxy := partitionableClient(t)
	a := h.startAPI(client)
	cached, _ := h.seed("cached", 6*time.Hour, 30*24*time.Hour, nil)
	h.seed("uncached", 6*time.Hour, 30*24*time.Hour, nil)
	if r := h.token(a, "cached"); r.code != 200 {
		t.Fatalf("got %d %s", r.code, r.raw)
	}
	if r := get(t, a.url+"/readyz", nil); r.code != 200 {
		t.Fatalf("readyz got %d, want 200 while Firestore is up", r.code)
	}

	proxy.Cut()
	h.Clock.Advance(300 * time.Millisecond) // past CACHE_MAX_AGE: the api must try Firestore again

	start := time.Now()
	r := h.token(a, "cached")
	if r.code != 200 || r.str("token") != cached {
		t.Fatalf("cached token: got %d %s, want 200 with it", r.code, r.raw)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("cached token took %s", took)
	}
	start = time.Now()
	if r := h.token(a, "uncached"); r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("uncached token: got %d %s, want 503 with Retry-After", r.code, r.raw)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("uncached token took %s, want under 5s", took)
	}
	start = time.Now()
	if r := get(t, a.url+"/readyz", nil); r.code != 503 {
		t.Fatalf("readyz got %d, want 503 while Firestore is unreachable", r.code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("readyz took %s", took)
	}
	if r := get(t, a.url+"/healthz", nil); r.code != 200 {
		t.Fatalf("healthz got %d, want 200", r.code)
	}
	// Within the retry pause the cached token is served without waiting.
	start = time.Now()
	if r := h.token(a, "cached"); r.code != 200 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("got %d after %s, want a fast 200 from the cache", r.code, time.Since(start))
	}
}
