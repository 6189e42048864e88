package lifecycle_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoAdapters keeps the refresh protocol and the use cases free
// of Firestore, Pub/Sub and Echo: adapters depend on the core, not the
// other way round.
func TestCoreImportsNoAdapters(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"cloud.google.com/", "github.com/labstack/", "google.golang.org/grpc"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("shared/lifecycle depends on %s", dep)
			}
		}
	}
}
