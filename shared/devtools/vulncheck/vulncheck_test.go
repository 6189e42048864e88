package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBuildDB: the layout govulncheck reads with -db file://, from a
// folder of OSV files as golang.org/x/vulndb ships them.
func TestBuildDB(t *testing.T) {
	dst := t.TempDir()
	asOf := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	if err := buildDB("testdata/osv", dst, asOf); err != nil {
		t.Fatal(err)
	}
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	var meta map[string]string
	read("index/db.json", &meta)
	if meta["modified"] != "2099-01-02T03:04:05Z" { // the newest entry, later than asOf
		t.Errorf("db.json: got %v, want the newest entry's modified time", meta)
	}
	var modules []map[string]any
	read("index/modules.json", &modules)
	zero := "0001-01-01T00:00:00Z"
	want := []map[string]any{
		{"path": "example.com/a", "vulns": []any{
			map[string]any{"id": "GO-2099-0001", "modified": zero},
			map[string]any{"id": "GO-2099-0002", "modified": "2099-01-02T03:04:05Z"}}},
		{"path": "example.com/b", "vulns": []any{map[string]any{"id": "GO-2099-0001", "modified": zero}}},
	}
	if d := cmp.Diff(want, modules); d != "" {
		t.Errorf("modules.json (-want +got):\n%s", d)
	}
	var vulns []map[string]any
	read("index/vulns.json", &vulns)
	if len(vulns) != 2 || vulns[0]["id"] != "GO-2099-0001" || vulns[1]["id"] != "GO-2099-0002" ||
		cmp.Diff([]any{"CVE-2099-0001"}, vulns[0]["aliases"]) != "" {
		t.Errorf("vulns.json: got %v", vulns)
	}
	for _, id := range []string{"GO-2099-0001", "GO-2099-0002"} {
		got, err := os.ReadFile(filepath.Join(dst, "ID", id+".json"))
		src, _ := os.ReadFile(filepath.Join("testdata/osv", id+".json"))
		if err != nil || string(got) != string(src) {
			t.Errorf("ID/%s.json is not the OSV file (%v)", id, err)
		}
	}
}

func TestBuildDBRefusesAMisnamedEntry(t *testing.T) {
	src := t.TempDir()
	b, _ := os.ReadFile("testdata/osv/GO-2099-0001.json")
	os.WriteFile(filepath.Join(src, "GO-2099-9999.json"), b, 0o644)
	if err := buildDB(src, t.TempDir(), time.Time{}); err == nil {
		t.Fatal("built a database whose file name and ID disagree")
	}
}

// TestEnsureDBKeepsOneVersion: a built version is reused; building
// another removes the first, and nothing else in the folder.
func TestEnsureDBKeepsOneVersion(t *testing.T) {
	dir := t.TempDir()
	// A module folder the way the module cache holds golang.org/x/vulndb.
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "data", "osv"), 0o755)
	for _, id := range []string{"GO-2099-0001", "GO-2099-0002"} {
		b, _ := os.ReadFile(filepath.Join("testdata/osv", id+".json"))
		os.WriteFile(filepath.Join(src, "data", "osv", id+".json"), b, 0o644)
	}
	mod := module{Version: "v0.0.0-1", Dir: src}
	db1, err := ensureDB(mod, dir)
	if err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "notes")
	os.WriteFile(keep, []byte("x"), 0o644)
	// Reused: the source is not read again.
	if again, err := ensureDB(module{Version: "v0.0.0-1", Dir: t.TempDir()}, dir); err != nil || again != db1 {
		t.Fatalf("second ensureDB: %q, %v, want %q reused", again, err, db1)
	}
	if _, err := ensureDB(module{Version: "v0.0.0-2", Dir: src}, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the older database is still there (%v)", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file that is no database was removed: %v", err)
	}
}

func TestReport(t *testing.T) {
	stream, err := os.ReadFile("testdata/stream.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := readFindings(stream)
	if err != nil {
		t.Fatal(err)
	}
	res.dbVersion = "v0.0.0-1"
	levels := map[string]level{}
	for id, a := range res.byID {
		levels[id] = a.level
	}
	if d := cmp.Diff(map[string]level{"GO-2099-0001": called, "GO-2099-0002": imported, "GO-2099-0003": required}, levels); d != "" {
		t.Errorf("levels (-want +got):\n%s", d)
	}

	var out strings.Builder
	err = res.report(&out, map[string]string{})
	var failed errFindings
	if !errors.As(err, &failed) || len(failed.ids) != 1 || failed.ids[0] != "GO-2099-0001" {
		t.Fatalf("unreviewed: got %v, want a failure naming GO-2099-0001", err)
	}
	for _, want := range []string{
		"Reachable (called): 1", "GO-2099-0001  example.com/a@v1.0.0, fixed in v1.2.0",
		"e.g. worker.run (worker/run.go:12) -> a.Parser.Parse", // the shorter trace
		"NOT REVIEWED", "Imported, not called: 1", "Required, not imported: 1", "GO-2099-0003  example.com/c@v0.1.0, no fix",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	err = res.report(&out, map[string]string{"GO-2099-0001": "not reachable because X", "GO-2099-0002": "old", "GO-2099-0404": "gone"})
	if err != nil {
		t.Fatalf("reviewed: got %v, want ok", err)
	}
	for _, want := range []string{"reviewed: not reachable because X", "no longer reachable (remove them): GO-2099-0002, GO-2099-0404"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReadReviewed(t *testing.T) {
	got, err := readReviewed("reviewed.txt")
	if err != nil {
		t.Fatal(err)
	}
	for id, why := range got {
		if len(why) < 40 {
			t.Errorf("%s: %q explains too little", id, why)
		}
	}
	bad := filepath.Join(t.TempDir(), "r.txt")
	os.WriteFile(bad, []byte("GO-2026-0001\n"), 0o644)
	if _, err := readReviewed(bad); err == nil {
		t.Error("accepted an entry without a reason")
	}
}

// TestReviewedClaims checks what reviewed.txt says about the code, so the
// review cannot go stale unnoticed: no echo proxy or rate limiter, and
// the api resolves client addresses itself.
func TestReviewedClaims(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	setsExtractor := map[string]bool{"api": false, "worker": false}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".vulndb" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, filepath.Join("devtools", "vulncheck")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		for _, banned := range []string{"middleware.Proxy", "middleware.RateLimiter"} {
			if strings.Contains(src, banned) {
				t.Errorf("%s uses %s: reviewed.txt says nothing does; review GO-2026-6872 and GO-2026-6875 again", path, banned)
			}
		}
		rel, _ := filepath.Rel(root, path)
		if bin, _, ok := strings.Cut(rel, string(filepath.Separator)); ok && strings.Contains(src, ".IPExtractor =") {
			if _, isBinary := setsExtractor[bin]; isBinary {
				setsExtractor[bin] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for bin, sets := range setsExtractor {
		if !sets {
			t.Errorf("no file under %s/ sets echo's IPExtractor: c.RealIP() would trust X-Forwarded-For (GO-2026-6872)", bin)
		}
	}
}
