package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gfs "cloud.google.com/go/firestore"
	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/activity/activitytest"
	"github.com/wxcc/tokenservice/shared/firestore"
	"github.com/wxcc/tokenservice/shared/pubsub"
	"github.com/wxcc/tokenservice/shared/testing/emulator"
	"github.com/wxcc/tokenservice/shared/testing/webexfake"
)

// checkPrerequisites reports every missing tool at once, with how to
// install it.
func checkPrerequisites() error {
	var missing []string
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		missing = append(missing, "gcloud (the Google Cloud CLI) is not on PATH")
	} else {
		components := []struct{ dir, what string }{
			{"cloud-firestore-emulator", "the Firestore emulator (component cloud-firestore-emulator)"},
			{"pubsub-emulator", "the Pub/Sub emulator (component pubsub-emulator)"},
		}
		root := sdkRoot(gcloud)
		for _, c := range components {
			if _, err := os.Stat(filepath.Join(root, "platform", c.dir)); err != nil {
				missing = append(missing, fmt.Sprintf("%s is not installed in %s", c.what, root))
			}
		}
	}
	if _, err := exec.LookPath("java"); err != nil {
		missing = append(missing, "java is not on PATH (the emulators run on Java)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf(`missing prerequisites:
  - %s
Install them on Debian or Ubuntu (with Google's apt repository, see
https://cloud.google.com/sdk/docs/install#deb):
  sudo apt-get install google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator openjdk-17-jre-headless
or, with a gcloud installed from Google's archive (and a Java runtime on PATH):
  gcloud components install beta cloud-firestore-emulator pubsub-emulator`,
		strings.Join(missing, "\n  - "))
}

// sdkRoot is the Cloud SDK directory of the gcloud at path: the parent of
// its bin directory once symlinks are resolved (/usr/bin/gcloud →
// /usr/lib/google-cloud-sdk/bin/gcloud), else what gcloud itself says.
func sdkRoot(gcloud string) string {
	resolved, err := filepath.EvalSymlinks(gcloud)
	if err != nil {
		resolved = gcloud
	}
	guess := filepath.Dir(filepath.Dir(resolved))
	if _, err := os.Stat(filepath.Join(guess, "platform")); err == nil {
		return guess
	}
	out, _ := exec.Command(gcloud, "info", "--format=value(installation.sdk_root)").Output()
	if root := strings.TrimSpace(string(out)); root != "" {
		return root
	}
	return guess
}

// binaries returns the paths of bin/api and bin/worker.
func binaries() (api, worker string, err error) {
	for _, p := range []string{"bin/api", "bin/worker"} {
		if _, err := os.Stat(p); err != nil {
			wd, _ := os.Getwd()
			return "", "", fmt.Errorf("%s not found in %s: run `make build` first, from the repository root (`make run` does both)", p, wd)
		}
	}
	return "bin/api", "bin/worker", nil
}

// startEmulators starts both emulators in parallel, Firestore with
// fsFlags. A Process is returned whenever it started, even if the other
// did not, so the caller stops it.
func startEmulators(ctx context.Context, fsFlags ...string) (fs, ps *emulator.Process, err error) {
	ctx, cancel := context.WithTimeout(ctx, emulator.StartTimeout)
	defer cancel()
	var fsErr, psErr error
	var wg sync.WaitGroup
	wg.Go(func() { fs, fsErr = emulator.Start(ctx, emulator.Firestore, fsFlags...) })
	wg.Go(func() { ps, psErr = emulator.Start(ctx, emulator.PubSub) })
	wg.Wait()
	return fs, ps, errors.Join(fsErr, psErr)
}

// createTopic creates the events topic and an ordered subscription on it.
func createTopic(ctx context.Context, c *gps.Client) error {
	topic := "projects/" + project + "/topics/" + topicID
	_, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", topicID, err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  "projects/" + project + "/subscriptions/" + subscriptionID,
		Topic:                 topic,
		EnableMessageOrdering: true,
		AckDeadlineSeconds:    60,
	})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", subscriptionID, err)
	}
	return nil
}

// seed registers the demo client and refresh token with the fake Webex and
// writes tokens/demo with exactly the Node sample's eight fields (times as
// integer milliseconds), and a week of its history in the activity
// record. It returns the seeded access token.
func seed(ctx context.Context, c *gfs.Client, fake *webexfake.Server, redirectURI string) (string, error) {
	now := time.Now()
	accessToken, refreshToken := "demo-at-"+randomHex(8), "demo-rt-"+randomHex(8)
	fake.AddClient(demoClientID, demoClientSecret)
	fake.AddRefreshToken(demoClientID, refreshToken, now.Add(refreshLeft))
	_, err := c.Collection(collection).Doc(demoName).Set(ctx, map[string]any{
		"clientId":       demoClientID,
		"clientSecret":   demoClientSecret,
		"redirectUri":    redirectURI,
		"accessToken":    accessToken,
		"refreshToken":   refreshToken,
		"accessExpires":  now.Add(accessLeft).UnixMilli(),
		"refreshExpires": now.Add(refreshLeft).UnixMilli(),
		// As if Webex had issued the access token (12h) this long ago.
		"lastRefresh": now.Add(accessLeft - webexfake.DefaultExpiresIn).UnixMilli(),
	})
	if err != nil {
		return "", fmt.Errorf("seed %s/%s: %w", collection, demoName, err)
	}
	// A week of history, so that the console's chart of the demo token
	// has something to show: written straight into the activity record
	// with past times, ending with the rotation that issued the access
	// token just stored.
	record := firestore.New(c, collection, firestore.WithActivity(activityCollection, activityRetention)).Activity()
	lastRefresh := now.Add(accessLeft - webexfake.DefaultExpiresIn)
	for _, e := range activitytest.Week(demoName, lastRefresh, webexfake.DefaultExpiresIn) {
		if err := record.Add(ctx, e); err != nil {
			return "", fmt.Errorf("seed the history of %s: %w", demoName, err)
		}
	}
	return accessToken, nil
}

// seedServiceApp registers the demo manager integration (its grants hold
// spark:applications_token) and the demo Service App with the fake Webex,
// and writes both documents: the manager with a current pair, the Service
// App with its config only, as PUT /admin/tokens/N leaves it before the
// mint.
func seedServiceApp(ctx context.Context, c *gfs.Client, fake *webexfake.Server, redirectURI string) error {
	now := time.Now()
	fake.AddClient(managerClientID, managerClientSecret)
	fake.SetClientScopes(managerClientID, webexfake.ApplicationsTokenScope, "spark:kms")
	accessToken := fake.IssueAccessToken(managerClientID, 10*time.Hour)
	refreshToken := fake.IssueRefreshToken(managerClientID, refreshLeft)
	fake.AddApp(serviceAppID, serviceAppClientID, serviceAppSecret, demoOrgID)
	docs := map[string]map[string]any{
		managerName: {
			"clientId": managerClientID, "clientSecret": managerClientSecret, "redirectUri": redirectURI,
			"accessToken": accessToken, "refreshToken": refreshToken,
			"accessExpires": now.Add(10 * time.Hour).UnixMilli(), "refreshExpires": now.Add(refreshLeft).UnixMilli(),
			"lastRefresh": now.Add(-2 * time.Hour).UnixMilli(),
			"scopes":      []any{webexfake.ApplicationsTokenScope, "spark:kms"},
		},
		serviceAppName: {
			"kind": "service_app", "appId": serviceAppID, "clientId": serviceAppClientID, "clientSecret": serviceAppSecret,
			"redirectUri": "", "targetOrgId": demoOrgID, "manager": managerName, "accessToken": "", "refreshToken": "",
			"status": "pending",
		},
	}
	for name, doc := range docs {
		if _, err := c.Collection(collection).Doc(name).Set(ctx, doc); err != nil {
			return fmt.Errorf("seed %s/%s: %w", collection, name, err)
		}
	}
	return nil
}

// printEvents prints every message of the demo subscription until the
// returned stop function is called.
func printEvents(ctx context.Context, c *gps.Client, con *console) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Subscriber(subscriptionID).Receive(ctx, func(_ context.Context, m *gps.Message) {
			m.Ack()
			var d pubsub.Data
			_ = json.Unmarshal(m.Data, &d)
			line := fmt.Sprintf("%s name=%s generation=%s trigger=%s",
				m.Attributes[pubsub.AttrType], m.Attributes[pubsub.AttrName], m.Attributes[pubsub.AttrGeneration], d.Trigger)
			if d.AccessExpires > 0 {
				line += " accessExpires=" + time.UnixMilli(d.AccessExpires).Format(time.RFC3339)
			}
			if d.Message != "" {
				line += fmt.Sprintf(" message=%q", d.Message)
			}
			con.line("[events]", line)
		})
		if err != nil && ctx.Err() == nil {
			con.say("receiving events stopped: %v", err)
		}
	}()
	return func() { cancel(); <-done }
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, see crypto/rand
	return hex.EncodeToString(b)
}
