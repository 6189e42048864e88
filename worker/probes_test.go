package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/deploy"
	"github.com/wxcc/tokenservice/shared/testing/testkit"
)

// TestProbesAndMetricsAddr runs the real binary with METRICS_ADDR: the
// probes answer GET and HEAD on the public port, /metrics is served on
// METRICS_ADDR and not on the public port, and both listeners stop on
// SIGTERM.
func TestProbesAndMetricsAddr(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0", "METRICS_ADDR": "127.0.0.1:0"})
	running := testkit.StartRun(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, nil, h.Getenv, h.Logs, h.Logs, ready)
	})
	for _, path := range []string{"/health", "/ready", "/healthz"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if r := testkit.Do(t, method, running.Base+path, "", nil); r.Code != 200 {
				t.Errorf("%s %s: got %d, want 200", method, path, r.Code)
			}
		}
	}
	if r := testkit.Do(t, http.MethodPost, running.Base+"/run", "", nil); r.Code != 200 {
		t.Fatalf("POST /run: %d %s", r.Code, r.Body)
	}
	if r := testkit.Do(t, http.MethodGet, running.Base+"/metrics", "", nil); r.Code != 404 {
		t.Fatalf("/metrics on the public port: got %d, want 404", r.Code)
	}
	addr := loggedMetricsAddr(t, h.Logs.String())
	r := testkit.Do(t, http.MethodGet, "http://"+addr+"/metrics", "", nil)
	if r.Code != 200 || !strings.Contains(string(r.Body), `sweeps_total{result="ok"} 1`) {
		t.Fatalf("/metrics on METRICS_ADDR: got %d %.300q", r.Code, r.Body)
	}
	running.Stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the metrics listener is still open after shutdown")
	}
}

// TestReadyChecksFirestore runs the worker as its own process against a
// Firestore that does not answer: /ready answers 503, /health (the
// liveness probe) stays 200, so an outage never restarts instances.
func TestReadyChecksFirestore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"PORT": "0", "FIRESTORE_EMULATOR_HOST": closedAddr(t)})
	child := h.startChild()
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	var base string
	testkit.Eventually(t, 30*time.Second, "the worker listens", func() bool {
		for _, line := range strings.Split(h.Logs.String(), "\n") {
			var l struct{ Message, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "listening" {
				_, port, _ := net.SplitHostPort(l.Addr)
				base = "http://127.0.0.1:" + port
				return true
			}
		}
		return false
	})
	if r := testkit.Do(t, http.MethodGet, base+"/ready", "", nil); r.Code != 503 {
		t.Errorf("/ready with Firestore unreachable: got %d, want 503", r.Code)
	}
	if r := testkit.Do(t, http.MethodGet, base+"/health", "", nil); r.Code != 200 {
		t.Errorf("/health with Firestore unreachable: got %d, want 200", r.Code)
	}
	child.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		child.Process.Kill()
		t.Fatal("worker did not exit within 10s of SIGTERM")
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// loggedMetricsAddr finds the address of the metrics listener in the log.
func loggedMetricsAddr(t *testing.T, logs string) string {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var l struct{ Message, Addr string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Message == "serving /metrics" {
			return l.Addr
		}
	}
	t.Fatalf("no \"serving /metrics\" line in the log:\n%s", logs)
	return ""
}

// TestDeployedProbesAreServed: every path a probe of the Cloud Run
// service definition uses answers 200 on the worker.
func TestDeployedProbesAreServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	w := h.startWorker(nil)
	probes := deploy.Probes(deploy.ServiceYAML("worker"))
	if len(probes) == 0 {
		t.Fatal("worker.service.yaml has no probes")
	}
	for _, p := range probes {
		if r := testkit.Do(t, http.MethodGet, w.url+p.Path, "", nil); r.Code != 200 {
			t.Errorf("%s GET %s: got %d, want 200", p.Kind, p.Path, r.Code)
		}
	}
}
