package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/testing/freeport"
)

// The test binary doubles as a child that serves /healthz on $PORT, as
// the api does, and exits 1 when it cannot bind it.
func TestMain(m *testing.M) {
	if os.Getenv("SOAK_TEST_CHILD") == "serve" {
		ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
		if err != nil {
			os.Exit(1)
		}
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A life whose port someone else answers on is not taken as ready: the
// first CI run of the soak counted another profile's api as its own and
// restarted the real one every second for the whole campaign.
func TestStartDoesNotTakeAnotherProcessForItsLife(t *testing.T) {
	port, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	go http.Serve(squatter, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	p := &proc{Kind: "api", Name: "api-1", bin: os.Args[0], dir: t.TempDir(),
		env: []string{"SOAK_TEST_CHILD=serve"}, port: port}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := p.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Signal(syscall.SIGKILL, 5*time.Second)
	if p.URL() == "http://127.0.0.1:"+strconv.Itoa(port) {
		t.Fatalf("life %d is taken to serve on the squatted port %d", l.N, port)
	}
	if !listensOn(l.PID, p.port) {
		t.Fatalf("life %d (pid %d) does not listen on %s", l.N, l.PID, p.URL())
	}
	lives := p.Lives()
	if len(lives) != 2 || p.snapshot(lives[0]).Code != 1 {
		t.Fatalf("want a first life that could not bind (exit 1) and a second that serves; got %d lives", len(lives))
	}
}

func TestListensOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if !listensOn(os.Getpid(), port) {
		t.Errorf("this process listens on %d but listensOn says no", port)
	}
	if listensOn(os.Getpid(), port+1) && port+1 < 65536 {
		t.Errorf("listensOn says this process listens on %d", port+1)
	}
}
