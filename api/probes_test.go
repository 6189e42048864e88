package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/deploy"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// TestProbePaths: Cloud Run's front end reserves some paths ending in z,
// so /health and /ready answer as /healthz and /readyz do, to GET and
// HEAD, from any address even when ALLOWED_CIDRS shuts everyone else out.
func TestProbePaths(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"ALLOWED_CIDRS": "10.0.0.0/8", "TRUSTED_PROXY_HOPS": "1"})
	a := h.startAPI(nil)
	outside := map[string]string{"X-Forwarded-For": "192.0.2.1"}
	for _, path := range []string{"/health", "/ready", "/healthz", "/readyz"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			r := testkit.Do(t, method, a.url+path, "", outside)
			if r.Code != 200 {
				t.Errorf("%s %s from outside ALLOWED_CIDRS: got %d, want 200", method, path, r.Code)
			}
			if method == http.MethodHead && len(r.Body) != 0 {
				t.Errorf("HEAD %s has a body: %q", path, r.Body)
			}
		}
	}
	if r := testkit.Do(t, http.MethodGet, a.url+"/?name=x", "", outside); r.Code != 403 {
		t.Fatalf("token route from outside: got %d, want 403", r.Code)
	}
}

// TestReadyChecksFirestore: /ready fails (503) while Firestore does not
// answer, /health does not: a liveness probe on it never restarts an
// instance for an outage it cannot fix.
func TestReadyChecksFirestore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	a.srv.store = unreachable{a.srv.store}
	if r := get(t, a.url+"/ready", nil); r.code != 503 {
		t.Fatalf("/ready with Firestore down: got %d, want 503", r.code)
	}
	if r := get(t, a.url+"/health", nil); r.code != 200 {
		t.Fatalf("/health with Firestore down: got %d, want 200", r.code)
	}
}

// TestMetricsAddr runs the real binary with METRICS_ADDR: /metrics is
// served there and nowhere else, and both listeners stop on SIGTERM.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0", "METRICS_ADDR": "127.0.0.1:0"})
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, h.Getenv, h.Logs, ready)
	})
	metricsAddr := testkit.LoggedMetricsAddr(t, h.Logs.String())
	if !strings.HasPrefix(metricsAddr, "127.0.0.1:") {
		t.Fatalf("metrics listen on %q, want 127.0.0.1", metricsAddr)
	}
	if r := testkit.Do(t, http.MethodGet, running.Base+"/health", "", nil); r.Code != 200 {
		t.Fatalf("/health: %d", r.Code)
	}
	if r := testkit.Do(t, http.MethodGet, running.Base+"/metrics", "", nil); r.Code != 404 || strings.Contains(string(r.Body), "http_requests_total") {
		t.Fatalf("/metrics on the public port: got %d %.80q, want 404", r.Code, r.Body)
	}
	r := testkit.Do(t, http.MethodGet, "http://"+metricsAddr+"/metrics", "", nil)
	if r.Code != 200 || !strings.Contains(string(r.Body), `http_requests_total{code="200",route="/health"}`) {
		t.Fatalf("/metrics on METRICS_ADDR: got %d %.200q", r.Code, r.Body)
	}
	if r := testkit.Do(t, http.MethodGet, "http://"+metricsAddr+"/?name=x", "", nil); r.Code != 404 {
		t.Fatalf("METRICS_ADDR serves more than /metrics: %d", r.Code)
	}
	if strings.Contains(h.Logs.String(), "/metrics is served on the public port") {
		t.Fatal("warned about public /metrics although METRICS_ADDR is set")
	}
	running.Stop(t)
	if c, err := net.DialTimeout("tcp", metricsAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("the metrics listener is still open after shutdown")
	}
}

// TestPublicMetricsWarning: without METRICS_ADDR and ALLOWED_CIDRS the api
// says at start what is exposed and how to fix it; with ALLOWED_CIDRS it
// does not.
func TestPublicMetricsWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		warn bool
	}{
		{"open", map[string]string{"PORT": "0"}, true},
		{"allowed cidrs", map[string]string{"PORT": "0", "ALLOWED_CIDRS": "10.0.0.0/8"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.env)
			running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
				return run(ctx, h.Getenv, h.Logs, ready)
			})
			running.Stop(t)
			warned := false
			for _, line := range strings.Split(h.Logs.String(), "\n") {
				if strings.Contains(line, `"severity":"WARNING"`) && strings.Contains(line, "/metrics") &&
					strings.Contains(line, "METRICS_ADDR") && strings.Contains(line, "ALLOWED_CIDRS") {
					warned = true
				}
			}
			if warned != tc.warn {
				t.Fatalf("warned about /metrics: %v, want %v\n%s", warned, tc.warn, h.Logs.String())
			}
		})
	}
}

// TestDeployedProbesAreServed: every path a probe of the Cloud Run
// service definition uses answers 200 on the api.
func TestDeployedProbesAreServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	a := h.startAPI(nil)
	probes := deploy.Probes(deploy.ServiceYAML("api"))
	if len(probes) == 0 {
		t.Fatal("api.service.yaml has no probes")
	}
	for _, p := range probes {
		if r := testkit.Do(t, http.MethodGet, a.url+p.Path, "", nil); r.Code != 200 {
			t.Errorf("%s GET %s: got %d, want 200", p.Kind, p.Path, r.Code)
		}
	}
}

// unreachable is a store whose Ping fails as an unreachable Firestore's does.
type unreachable struct{ Store }

func (unreachable) Ping(context.Context) error { return context.DeadlineExceeded }
