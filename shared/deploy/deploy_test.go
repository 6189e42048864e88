package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxcc/tokenservice/shared/config"
)

// dryRun runs deploy.sh with DRY_RUN=1 and extra environment, with gcloud,
// docker, npx and curl replaced by stubs that record any call, and returns
// its output. The test fails if the script fails or calls any of them.
func dryRun(t *testing.T, env ...string) string {
	t.Helper()
	stubs := t.TempDir()
	calls := filepath.Join(t.TempDir(), "calls")
	for _, name := range []string{"gcloud", "docker", "npx", "curl", "firebase"} {
		stub := "#!/bin/sh\necho \"" + name + " $*\" >>" + calls + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "deploy.sh")
	cmd.Env = append(os.Environ(), "PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"), "DRY_RUN=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, out)
	}
	if called, err := os.ReadFile(calls); err == nil {
		t.Fatalf("a dry run ran commands:\n%s", called)
	}
	return string(out)
}

var projectEnv = []string{"PROJECT=acme-tokens", "REGION=europe-west1"}

// TestDryRunPrintsEveryStep asserts the commands a reviewer looks for.
func TestDryRunPrintsEveryStep(t *testing.T) {
	t.Parallel()
	out := dryRun(t, append(projectEnv, "CONSUMERS=serviceAccount:crm@acme-tokens.iam.gserviceaccount.com")...)
	want := []string{
		"gcloud services enable run.googleapis.com firestore.googleapis.com pubsub.googleapis.com cloudscheduler.googleapis.com secretmanager.googleapis.com",
		"gcloud firestore databases create '--database=(default)' --location=europe-west1 --type=firestore-native",
		"gcloud firestore databases update '--database=(default)' --enable-pitr",
		"npx --yes firebase-tools deploy --only firestore:rules --project=acme-tokens",
		"gcloud firestore fields ttls update expires --collection-group=tokens_states --enable-ttl",
		"gcloud pubsub topics create token-events",
		"gcloud pubsub subscriptions create token-events-consumer --topic=token-events --enable-message-ordering --expiration-period=never",
		"gcloud pubsub subscriptions add-iam-policy-binding token-events-consumer --member=serviceAccount:crm@acme-tokens.iam.gserviceaccount.com --role=roles/pubsub.subscriber",
		"gcloud iam service-accounts create token-api",
		"gcloud iam service-accounts create token-worker",
		"gcloud iam service-accounts create token-scheduler",
		"gcloud projects add-iam-policy-binding acme-tokens --member=serviceAccount:token-api@acme-tokens.iam.gserviceaccount.com --role=roles/datastore.user",
		"gcloud projects add-iam-policy-binding acme-tokens --member=serviceAccount:token-worker@acme-tokens.iam.gserviceaccount.com --role=roles/monitoring.metricWriter",
		"gcloud pubsub topics add-iam-policy-binding token-events --member=serviceAccount:token-worker@acme-tokens.iam.gserviceaccount.com --role=roles/pubsub.publisher",
		"gcloud iam service-accounts add-iam-policy-binding token-scheduler@acme-tokens.iam.gserviceaccount.com --member=user:deployer@example.com --role=roles/iam.serviceAccountUser",
		"gcloud secrets create token-passphrase --replication-policy=automatic --data-file=-",
		"gcloud secrets add-iam-policy-binding token-encryption-keys --member=serviceAccount:token-worker@acme-tokens.iam.gserviceaccount.com --role=roles/secretmanager.secretAccessor",
		"gcloud secrets versions describe latest --secret=token-passphrase",
		"gcloud auth configure-docker europe-west1-docker.pkg.dev",
		"docker build --platform linux/amd64 -f Dockerfile.api --build-arg 'GO_IMAGE=golang:1.27.3-bookworm@",
		"gcloud run services replace worker.service.yaml --region=europe-west1",
		"gcloud run services replace api.service.yaml --region=europe-west1",
		"gcloud run services add-iam-policy-binding token-api --region=europe-west1 --member=allUsers --role=roles/run.invoker",
		"gcloud run services add-iam-policy-binding token-worker --region=europe-west1 --member=serviceAccount:token-scheduler@acme-tokens.iam.gserviceaccount.com --role=roles/run.invoker",
		"gcloud scheduler jobs create http token-sweep --location=europe-west1 '--schedule=*/5 * * * *' '--uri=https://token-worker-<project number>.europe-west1.run.app/run' --http-method=POST --attempt-deadline=180s --oidc-service-account-email=token-scheduler@acme-tokens.iam.gserviceaccount.com '--oidc-token-audience=https://token-worker-<project number>.europe-west1.run.app/run'",
		"gcloud logging metrics create tokenservice-sweep-halted",
		"image: europe-west1-docker.pkg.dev/acme-tokens/tokens/api@sha256:",
		"key: '<latest version of token-passphrase>'",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the dry run lacks: %s", w)
		}
	}
	if strings.Contains(out, "TOKEN_PASSPHRASE_PREVIOUS") {
		t.Error("TOKEN_PASSPHRASE_PREVIOUS is deployed although its secret does not exist")
	}
	if regexp.MustCompile(`%[A-Z_]+%`).MatchString(out) {
		t.Error("the rendered service definitions have unfilled placeholders")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestDryRunIsRepeatable: running the script twice prints the same
// commands (nothing depends on state the first run left behind).
func TestDryRunIsRepeatable(t *testing.T) {
	t.Parallel()
	first, second := dryRun(t, projectEnv...), dryRun(t, projectEnv...)
	if first != second {
		t.Fatalf("two dry runs differ:\n%s\n----\n%s", first, second)
	}
}

// TestDryRunNeverPrintsSecrets: values given for secrets stay out of the
// output, which a CI log or a terminal recording may keep.
func TestDryRunNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"TOKEN_PASSPHRASE=flow-secret-7f3a9c", "ADMIN_PASSPHRASE=admin-secret-2b8e41d0c",
		"TOKEN_ENCRYPTION_KEYS=k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	out := dryRun(t, append(projectEnv, secrets...)...)
	for _, s := range secrets {
		_, v, _ := strings.Cut(s, "=")
		if strings.Contains(out, v) {
			t.Errorf("the output shows the value of %s", s[:strings.Index(s, "=")])
		}
	}
}

func TestDryRunNeedsProjectAndRegion(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("bash", "deploy.sh")
	cmd.Env = append(os.Environ(), "DRY_RUN=1", "PROJECT=", "REGION=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "PROJECT is required") {
		t.Fatalf("got %v %s, want a failure naming PROJECT", err, out)
	}
}

// TestShellcheck checks the script (and .ci/run) with shellcheck, which
// .ci/run installs when it is missing.
func TestShellcheck(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
	}
	out, err := exec.Command("shellcheck", "-x", "deploy.sh", "../../.ci/run").CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

// TestEnvNamesAreRead: every environment variable the service definitions
// set is one the binaries read, so a typo cannot silently leave a default.
func TestEnvNamesAreRead(t *testing.T) {
	t.Parallel()
	read := map[string]bool{"LOG_LEVEL": true} // read by run, before the configuration
	for _, b := range []config.Binary{config.API, config.Worker} {
		config.Load(b, func(name string) string { read[name] = true; return "" })
	}
	for _, binary := range []string{"api", "worker"} {
		names := EnvNames(ServiceYAML(binary))
		if len(names) < 5 {
			t.Fatalf("%s: found only %v", binary, names)
		}
		for _, n := range names {
			if !read[n] {
				t.Errorf("%s.service.yaml sets %s, which no binary reads", binary, n)
			}
		}
	}
	if !slices.Contains(EnvNames(ServiceYAML("api")), "TOKEN_PASSPHRASE_PREVIOUS") {
		t.Error("the previous-passphrase block was not checked")
	}
}

// TestProbesUseHealth: startup and liveness probes use /health on PORT,
// never a readiness path that checks Firestore: an outage must not restart
// every instance. (The api's and worker's tests check the paths are served.)
func TestProbesUseHealth(t *testing.T) {
	t.Parallel()
	for _, binary := range []string{"api", "worker"} {
		probes := Probes(ServiceYAML(binary))
		var kinds []string
		for _, p := range probes {
			kinds = append(kinds, p.Kind)
			if p.Path != "/health" || p.Port != "8080" {
				t.Errorf("%s %s probes %s on port %s, want /health on 8080", binary, p.Kind, p.Path, p.Port)
			}
		}
		if !slices.Equal(kinds, []string{"startupProbe", "livenessProbe"}) {
			t.Errorf("%s: probes %v, want a startup and a liveness probe", binary, kinds)
		}
	}
}

// TestSidecarScrapesMetricsAddr: METRICS_ADDR is on loopback, and the
// RunMonitoring config scrapes its port.
func TestSidecarScrapesMetricsAddr(t *testing.T) {
	t.Parallel()
	rm, err := os.ReadFile("runmonitoring.yaml")
	if err != nil {
		t.Fatal(err)
	}
	port := regexp.MustCompile(`(?m)^\s*- port: '?(\d+)'?`).FindSubmatch(rm)
	if port == nil {
		t.Fatal("runmonitoring.yaml names no port")
	}
	for _, binary := range []string{"api", "worker"} {
		y := ServiceYAML(binary)
		want := "- name: METRICS_ADDR\n          value: 127.0.0.1:" + string(port[1]) + "\n"
		if !strings.Contains(y, want) {
			t.Errorf("%s.service.yaml does not set METRICS_ADDR to 127.0.0.1:%s", binary, port[1])
		}
		if !strings.Contains(y, "mountPath: /etc/rungmp/") {
			t.Errorf("%s.service.yaml does not mount the RunMonitoring config", binary)
		}
	}
}

// TestBaseImagesPinned: the Dockerfiles build with the Go version go.mod
// names, without VCS stamping, and the lock file names the same images;
// a digest, once resolved, is a sha256.
func TestBaseImagesPinned(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	wantGo := "golang:" + string(goVersion[1]) + "-bookworm"
	lock, err := os.ReadFile("base-images.lock")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(lock, []byte("\nGO_IMAGE="+wantGo+"\n")) {
		t.Errorf("base-images.lock does not name %s", wantGo)
	}
	for _, m := range regexp.MustCompile(`(?m)^(GO|RUNTIME)_DIGEST=(.*)$`).FindAllSubmatch(lock, -1) {
		if d := string(m[2]); d != "" && !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d) {
			t.Errorf("%s_DIGEST=%q is not a sha256 digest", m[1], d)
		}
	}
	runtime := regexp.MustCompile(`(?m)^RUNTIME_IMAGE=(.*)$`).FindSubmatch(lock)
	for _, f := range []string{"Dockerfile.api", "Dockerfile.worker"} {
		d, err := os.ReadFile("../../" + f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(d, []byte("ARG GO_IMAGE="+wantGo+"\n")) {
			t.Errorf("%s does not build with %s", f, wantGo)
		}
		if runtime == nil || !bytes.Contains(d, []byte("ARG RUNTIME_IMAGE="+string(runtime[1])+"\n")) {
			t.Errorf("%s runs on another image than base-images.lock names", f)
		}
		if !bytes.Contains(d, []byte("go build -buildvcs=false")) {
			t.Errorf("%s builds with VCS stamping (fails in a worktree)", f)
		}
	}
}

// TestDockerContext applies .dockerignore as Docker does (last matching
// pattern wins, a pattern also matches a path's parents, ! re-includes)
// and checks that the build context holds every Go file the binaries are
// built from, and no .git, test or binary.
func TestDockerContext(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		re      *regexp.Regexp
		include bool
	}
	var rules []rule
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{}
		if r.include = strings.HasPrefix(line, "!"); r.include {
			line = line[1:]
		}
		var b strings.Builder
		for i := 0; i < len(line); i++ {
			switch {
			case strings.HasPrefix(line[i:], "**/"):
				b.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				b.WriteString(".*")
				i++
			case line[i] == '*':
				b.WriteString("[^/]*")
			case line[i] == '?':
				b.WriteString("[^/]")
			default:
				b.WriteString(regexp.QuoteMeta(line[i : i+1]))
			}
		}
		r.re = regexp.MustCompile("^" + b.String() + "$")
		rules = append(rules, r)
	}
	inContext := func(path string) bool {
		in := true
		for _, r := range rules {
			for p := path; ; p = filepath.Dir(p) {
				if r.re.MatchString(p) {
					in = r.include
					break
				}
				if !strings.Contains(p, "/") {
					break
				}
			}
		}
		return in
	}
	for _, p := range []string{".git", ".git/config", "bin/api", "api/run_test.go", "shared/testing/testkit/testkit.go", "README.md"} {
		if inContext(p) {
			t.Errorf("%s is in the build context", p)
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{end}}`, "../../api", "../../worker").Output()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], root+string(filepath.Separator)) {
			continue // a module dependency, downloaded by go mod download
		}
		rel, _ := filepath.Rel(root, fields[0])
		for _, f := range fields[1:] {
			if p := filepath.ToSlash(filepath.Join(rel, f)); !inContext(p) {
				t.Errorf("%s is built into a binary but left out of the build context", p)
			}
		}
	}
	for _, p := range []string{"go.mod", "go.sum"} {
		if !inContext(p) {
			t.Errorf("%s is left out of the build context", p)
		}
	}
}
