package emulator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	gfs "cloud.google.com/go/firestore"
)

// DefaultProject is the project ID used when GOOGLE_CLOUD_PROJECT is unset.
// The "demo-" prefix marks a project that exists only in emulators.
const DefaultProject = "demo-tokens"

// Main is for TestMain: it makes sure every emulator of kinds is running,
// runs the tests and stops what it started. It returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(emulator.Main(m, emulator.Firestore)) }
//
// An emulator whose environment variable is set is reused as it is.
// Otherwise one is started on a free loopback port and the variable is set
// for the tests. GOOGLE_CLOUD_PROJECT is set to DefaultProject if unset.
// If an emulator cannot start, Main prints why, with the tail of its
// output, and returns 1 without running the tests.
func Main(m *testing.M, kinds ...Kind) int {
	procs, err := StartMissing(kinds...)
	defer func() {
		if err := StopAll(procs); err != nil {
			fmt.Fprintf(os.Stderr, "emulator: %v\n", err)
		}
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "emulator: %v\n", err)
		return 1
	}
	if os.Getenv("GOOGLE_CLOUD_PROJECT") == "" {
		os.Setenv("GOOGLE_CLOUD_PROJECT", DefaultProject)
	}
	return m.Run()
}

// StartMissing starts, in parallel, the emulators of kinds whose variable
// is unset, and sets the variables to them. Stop the processes it returns
// when done, also when it returns an error (some may have started).
func StartMissing(kinds ...Kind) ([]*Process, error) {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	var (
		mu    sync.Mutex
		procs []*Process
		errs  []string
		wg    sync.WaitGroup
	)
	seen := map[Kind]bool{}
	for _, k := range kinds {
		if seen[k] || os.Getenv(k.EnvVar()) != "" {
			continue
		}
		seen[k] = true
		wg.Go(func() {
			p, err := Start(ctx, k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			procs = append(procs, p)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return procs, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	for _, p := range procs {
		os.Setenv(p.Kind().EnvVar(), p.Host())
	}
	return procs, nil
}

// StopAll stops procs (what StartMissing returned) and returns what went
// wrong, if anything.
func StopAll(procs []*Process) error {
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Stop())
	}
	return errors.Join(errs...)
}

// Project is the Google Cloud project ID for emulator clients:
// GOOGLE_CLOUD_PROJECT, or DefaultProject.
func Project() string {
	if p := os.Getenv("GOOGLE_CLOUD_PROJECT"); p != "" {
		return p
	}
	return DefaultProject
}

// Collection returns a collection ID unique to this test (and to this run),
// derived from t.Name() plus a random suffix, so tests can share one
// emulator and run in parallel.
func Collection(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, r := range t.Name() {
		if b.Len() >= 80 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatalf("collection name: %v", err)
	}
	name := b.String()
	if name == "" || !isAlnum(name[0]) {
		name = "c" + name // never __*__, never empty
	}
	return name + "-" + hex.EncodeToString(suffix)
}

// FirestoreClient returns a client of the Firestore emulator, closed when
// the test ends. The test fails if FIRESTORE_EMULATOR_HOST is unset
// (TestMain must call Main with Firestore).
func FirestoreClient(t testing.TB) *gfs.Client {
	t.Helper()
	if os.Getenv(Firestore.EnvVar()) == "" {
		t.Fatalf("%s is not set: call emulator.Main(m, emulator.Firestore) in TestMain", Firestore.EnvVar())
	}
	c, err := gfs.NewClient(context.Background(), Project())
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
