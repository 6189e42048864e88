package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/wxcc/tokenservice/shared/testing/emulator"
)

// repoRoot is the directory of the module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the repository: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("find the repository: run the soak from inside the repository")
	}
	return filepath.Dir(mod), nil
}

// binaries are the paths of the built api and worker.
type binaries struct{ API, Worker string }

// build builds bin/api and bin/worker as the Makefile does (static,
// -trimpath, stripped); with race, with the race detector instead, into
// bin/race-api and bin/race-worker.
func build(ctx context.Context, root string, race bool) (binaries, error) {
	b := binaries{API: filepath.Join(root, "bin", "api"), Worker: filepath.Join(root, "bin", "worker")}
	args := []string{"build", "-trimpath", "-ldflags=-s -w"}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if race {
		b = binaries{API: filepath.Join(root, "bin", "race-api"), Worker: filepath.Join(root, "bin", "race-worker")}
		args = []string{"build", "-race"}
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	for _, t := range []struct{ out, pkg string }{{b.API, "./api"}, {b.Worker, "./worker"}} {
		cmd := exec.CommandContext(ctx, "go", append(args, "-o", t.out, t.pkg)...)
		cmd.Dir, cmd.Env = root, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

// emulators are the Firestore and Pub/Sub emulators of the whole run.
type emulators struct {
	Firestore, PubSub string // host:port
	procs             []*emulator.Process
}

// startEmulators reuses the emulators named by FIRESTORE_EMULATOR_HOST and
// PUBSUB_EMULATOR_HOST (make test starts them once), or starts them with
// shared/testing/emulator. It sets the variables for this process's
// clients.
func startEmulators(ctx context.Context, getenv func(string) string) (*emulators, error) {
	e := &emulators{Firestore: getenv(emulator.Firestore.EnvVar()), PubSub: getenv(emulator.PubSub.EnvVar())}
	ctx, cancel := context.WithTimeout(ctx, emulator.StartTimeout)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, k := range []struct {
		kind emulator.Kind
		host *string
	}{{emulator.Firestore, &e.Firestore}, {emulator.PubSub, &e.PubSub}} {
		if *k.host != "" {
			continue
		}
		wg.Go(func() {
			p, err := emulator.Start(ctx, k.kind)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			e.procs = append(e.procs, p)
			*k.host = p.Host()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.Stop()
		return nil, err
	}
	os.Setenv(emulator.Firestore.EnvVar(), e.Firestore)
	os.Setenv(emulator.PubSub.EnvVar(), e.PubSub)
	return e, nil
}

// Stop stops the emulators this command started.
func (e *emulators) Stop() {
	for _, p := range e.procs {
		if err := p.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}
}

// createTopic creates topic and an ordered subscription on it, as the
// deployment does (the binaries never create the topic).
func createTopic(ctx context.Context, c *gps.Client, topicID, subID string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topic, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/" + c.Project() + "/topics/" + topicID})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topicID, err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                  "projects/" + c.Project() + "/subscriptions/" + subID,
		Topic:                 topic.GetName(),
		EnableMessageOrdering: true,
		AckDeadlineSeconds:    60,
	})
	if err != nil {
		return fmt.Errorf("create subscription %s: %w", subID, err)
	}
	return nil
}
