package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// vulndbModule is where the Go vulnerability database's reports live as
// a Go module; data/osv holds one OSV file per report.
const vulndbModule = "golang.org/x/vulndb"

// module is a downloaded module version.
type module struct {
	Version string
	Dir     string    // its files in the module cache
	Time    time.Time // its commit time
}

// downloadVulnDB fetches golang.org/x/vulndb@version through the module
// proxy (into the module cache; a second run reads the cache).
func downloadVulnDB(ctx context.Context, goCmd, version string, stderr io.Writer) (module, error) {
	cmd := exec.CommandContext(ctx, goCmd, "mod", "download", "-json", vulndbModule+"@"+version)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return module{}, fmt.Errorf("download %s@%s: %w", vulndbModule, version, err)
	}
	var m struct {
		Version, Dir, Info, Error string
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		return module{}, fmt.Errorf("read go mod download output: %w", err)
	}
	if m.Error != "" {
		return module{}, fmt.Errorf("download %s@%s: %s", vulndbModule, version, m.Error)
	}
	mod := module{Version: m.Version, Dir: m.Dir}
	if b, err := os.ReadFile(m.Info); err == nil {
		var info struct{ Time time.Time }
		if json.Unmarshal(b, &info) == nil {
			mod.Time = info.Time
		}
	}
	return mod, nil
}

// ensureDB returns the absolute path of the database built from mod under
// dir, building it first if this version has none yet. Databases of other
// versions are removed.
func ensureDB(mod module, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	name := strings.NewReplacer("/", "_", "\\", "_").Replace(mod.Version)
	db := filepath.Join(abs, name)
	if _, err := os.Stat(filepath.Join(db, "index", "modules.json")); err != nil {
		// Built aside and renamed, so a run cut short leaves no half database.
		tmp, err := os.MkdirTemp(abs, name+".partial-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		if err := buildDB(filepath.Join(mod.Dir, "data", "osv"), tmp, mod.Time); err != nil {
			return "", fmt.Errorf("build database of %s@%s: %w", vulndbModule, mod.Version, err)
		}
		if err := os.Rename(tmp, db); err != nil {
			return "", err
		}
	}
	// Only databases this command built, of other versions, go.
	entries, _ := os.ReadDir(abs)
	for _, e := range entries {
		other := filepath.Join(abs, e.Name())
		if _, err := os.Stat(filepath.Join(other, "index", "modules.json")); e.Name() != name && err == nil {
			os.RemoveAll(other)
		}
	}
	return db, nil
}

// osvEntry is what the index needs from an OSV file.
type osvEntry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

// The index files of the v1 database (https://go.dev/doc/security/vuln/database#api).
type (
	dbMeta struct {
		Modified time.Time `json:"modified"`
	}
	moduleIndex struct {
		Path  string        `json:"path"`
		Vulns []moduleVulns `json:"vulns"`
	}
	// moduleVulns leaves out the optional "fixed": without it govulncheck
	// reads every entry of a module and decides from its ranges, rather
	// than trusting a version comparison made here.
	moduleVulns struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
	}
	vulnIndex struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// buildDB writes the v1 database of the OSV files in src into dst:
// ID/<id>.json (the files as they are) and the three indexes. The
// reports in vulndb carry no modified time (the Go team stamps it when
// publishing), so the database's is the module's commit time, when later.
func buildDB(src, dst string, asOf time.Time) error {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no OSV files in %s", src)
	}
	if err := os.MkdirAll(filepath.Join(dst, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, "index"), 0o755); err != nil {
		return err
	}
	meta := dbMeta{Modified: asOf.UTC()}
	var vulns []vulnIndex
	byModule := map[string][]moduleVulns{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e osvEntry
		if err := json.Unmarshal(b, &e); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(f), err)
		}
		if e.ID == "" || filepath.Base(f) != e.ID+".json" {
			return fmt.Errorf("%s holds entry %q", filepath.Base(f), e.ID)
		}
		if err := os.WriteFile(filepath.Join(dst, "ID", e.ID+".json"), b, 0o644); err != nil {
			return err
		}
		if e.Modified.After(meta.Modified) {
			meta.Modified = e.Modified
		}
		vulns = append(vulns, vulnIndex{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			byModule[a.Package.Name] = append(byModule[a.Package.Name], moduleVulns{ID: e.ID, Modified: e.Modified})
		}
	}
	slices.SortFunc(vulns, func(a, b vulnIndex) int { return strings.Compare(a.ID, b.ID) })
	modules := make([]moduleIndex, 0, len(byModule))
	for path, vs := range byModule {
		slices.SortStableFunc(vs, func(a, b moduleVulns) int { return strings.Compare(a.ID, b.ID) })
		modules = append(modules, moduleIndex{Path: path, Vulns: vs})
	}
	slices.SortFunc(modules, func(a, b moduleIndex) int { return strings.Compare(a.Path, b.Path) })
	for name, v := range map[string]any{"db.json": meta, "modules.json": modules, "vulns.json": vulns} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, "index", name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
