package people_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoAdapters keeps this package free of Firestore, Pub/Sub,
// gRPC, Echo and net/http: the adapters and the console depend on it, not
// the other way round.
func TestImportsNoAdapters(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"cloud.google.com/", "github.com/labstack/", "google.golang.org/grpc"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("shared/people depends on %s", dep)
			}
		}
		if dep == "net/http" {
			t.Errorf("shared/people depends on net/http")
		}
	}
}
