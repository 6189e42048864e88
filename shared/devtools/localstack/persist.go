package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// Local Firestore data outlives a run: the emulator starts from the last
// export in dataDir (--import-data) and localstack exports into it every
// exportEvery and when it stops. The fake Webex keeps nothing, so at start
// it is taught again the clients, tokens and Service Apps that the kept
// documents name; without that every kept token would be refused at its
// next refresh.

// dataDir holds the kept Firestore data (gitignored).
const dataDir = ".localstack/firestore"

// exportEvery bounds what a hard kill (SIGKILL, a crash) loses.
const exportEvery = time.Minute

// exportPrefix starts the name of each export the emulator writes.
const exportPrefix = "firestore_export_"

// latestExport returns the metadata file of the newest export in dir, or
// "" if there is none.
func latestExport(dir string) string {
	matches, _ := filepath.Glob(filepath.Join(dir, exportPrefix+"*", exportPrefix+"*.overall_export_metadata"))
	if len(matches) == 0 {
		return ""
	}
	sort.Strings(matches) // the names end in the export's Unix time
	return matches[len(matches)-1]
}

// exporting makes exports one at a time: each removes the ones before it.
var exporting sync.Mutex

// exportFirestore asks the emulator at host to export project's data into
// dir, then removes older exports there.
func exportFirestore(ctx context.Context, host, dir string) error {
	exporting.Lock()
	defer exporting.Unlock()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("export firestore: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return fmt.Errorf("export firestore: %w", err)
	}
	body, _ := json.Marshal(map[string]string{
		"database":         "projects/" + project + "/databases/(default)",
		"export_directory": abs,
	})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+host+"/emulator/v1/projects/"+project+":export", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("export firestore: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("export firestore: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("export firestore: emulator answered %s", resp.Status)
	}
	latest := latestExport(abs)
	if latest == "" {
		return fmt.Errorf("export firestore: nothing written to %s", abs)
	}
	keep := filepath.Dir(latest)
	old, _ := filepath.Glob(filepath.Join(abs, exportPrefix+"*"))
	for _, d := range old {
		if d != keep {
			os.RemoveAll(d)
		}
	}
	return nil
}

// keptTokens counts the documents of the tokens collection.
func keptTokens(ctx context.Context, c *gfs.Client) (int, error) {
	refs, err := c.Collection(collection).DocumentRefs(ctx).GetAll()
	if err != nil {
		return 0, fmt.Errorf("count kept tokens: %w", err)
	}
	return len(refs), nil
}

// reteach registers with the fake Webex what the kept token documents
// name: each client, its current access and refresh token, a manager's
// scopes, each Service App. Values sealed with TOKEN_ENCRYPTION_KEYS are
// skipped (the local stack does not set any).
func reteach(ctx context.Context, c *gfs.Client, fake *webexfake.Server) (int, error) {
	it := c.Collection(collection).Documents(ctx)
	defer it.Stop()
	n := 0
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read kept tokens: %w", err)
		}
		d := snap.Data()
		str := func(k string) string {
			s, _ := d[k].(string)
			if strings.HasPrefix(s, "enc:") {
				return ""
			}
			return s
		}
		millis := func(k string) time.Time {
			switch v := d[k].(type) {
			case int64:
				return time.UnixMilli(v)
			case float64:
				return time.UnixMilli(int64(v))
			}
			return time.Time{}
		}
		clientID, secret := str("clientId"), str("clientSecret")
		if clientID == "" || secret == "" {
			continue
		}
		fake.AddClient(clientID, secret)
		if rt := str("refreshToken"); rt != "" {
			fake.AddRefreshToken(clientID, rt, millis("refreshExpires"))
		}
		if at := str("accessToken"); at != "" {
			fake.AddAccessToken(clientID, at, millis("accessExpires"))
		}
		if scopes, ok := d["scopes"].([]any); ok {
			var list []string
			for _, s := range scopes {
				if s, ok := s.(string); ok {
					list = append(list, s)
				}
			}
			fake.SetClientScopes(clientID, list...)
		}
		if str("kind") == "service_app" && str("appId") != "" {
			fake.AddApp(str("appId"), clientID, secret, str("targetOrgId"))
		}
		n++
	}
}
