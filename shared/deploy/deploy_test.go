package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxcc/tokenservice/shared/config"
)

func TestMain(m *testing.M) {
	// The fake gcloud, docker, curl and sleep are this binary, run again.
	if tool := os.Getenv("DEPLOY_FAKE"); tool != "" {
		os.Exit(fakeMain(tool, os.Args[1:]))
	}
	os.Exit(m.Run())
}

const (
	testProject = "acme-tokens"
	testNumber  = "123456789012"
	workerURL   = "https://token-worker-" + testNumber + ".europe-west1.run.app"
	invokerSA   = "token-scheduler@" + testProject + ".iam.gserviceaccount.com"
)

// cloud is a fake project that deploy.sh runs against: the fake's state
// file, its call log and the stub scripts that reach it.
type cloud struct {
	t                      *testing.T
	dir, state, log, stubs string
	lock                   string
}

// newCloud returns a fresh project: no API enabled, nothing created, the
// deployer signed in (unless account is "").
func newCloud(t *testing.T, account string) *cloud {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("jq is not installed (apt-get install jq; deploy.sh needs it)")
	}
	dir := t.TempDir()
	c := &cloud{t: t, dir: dir, state: filepath.Join(dir, "state.json"), log: filepath.Join(dir, "calls.log"),
		stubs: filepath.Join(dir, "bin"), lock: filepath.Join(dir, "base-images.lock")}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.stubs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"gcloud", "docker", "curl", "sleep"} {
		stub := "#!/bin/sh\nDEPLOY_FAKE=" + tool + " exec '" + self + "' \"$@\"\n"
		if err := os.WriteFile(filepath.Join(c.stubs, tool), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st := fakeState{Project: testProject, Number: testNumber, Account: account, APIs: map[string]bool{}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(c.state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// The repository's lock may have no digests yet: the tests pin their own.
	lock := "GO_IMAGE=golang:1.27.3-bookworm\nGO_DIGEST=sha256:" + strings.Repeat("a", 64) +
		"\nRUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot\nRUNTIME_DIGEST=sha256:" + strings.Repeat("b", 64) + "\n"
	if err := os.WriteFile(c.lock, []byte(lock), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// result is one run of deploy.sh.
type result struct {
	out   string
	err   error
	calls []string
}

// mutations lists the calls that changed something.
func (r result) mutations() []string {
	var out []string
	for _, c := range r.calls {
		if m, ok := strings.CutPrefix(c, "MUTATE "); ok {
			out = append(out, m)
		}
	}
	return out
}

func (r result) called(prefix string) bool {
	for _, c := range r.calls {
		if strings.HasPrefix(strings.TrimPrefix(c, "MUTATE "), prefix) {
			return true
		}
	}
	return false
}

// baseEnv is what every run sets: the project, the alert address and the
// flows' passphrase (read only while its secret does not exist).
var baseEnv = []string{"PROJECT=" + testProject, "REGION=europe-west1", "ALERT_EMAIL=ops@example.com",
	"TOKEN_PASSPHRASE=flow-secret-7f3a9c"}

// deploy runs deploy.sh against the fake with env on top of baseEnv. A
// dry run (DRY_RUN set to a dry value) makes any mutating call fail.
func (c *cloud) deploy(env ...string) result {
	c.t.Helper()
	if err := os.WriteFile(c.log, nil, 0o600); err != nil {
		c.t.Fatal(err)
	}
	home := filepath.Join(c.dir, "home")
	cmd := exec.Command("bash", "deploy.sh")
	cmd.Env = []string{"PATH=" + c.stubs + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + home,
		"FAKE_STATE=" + c.state, "FAKE_LOG=" + c.log, "BASE_IMAGES_LOCK=" + c.lock}
	cmd.Env = append(cmd.Env, baseEnv...)
	cmd.Env = append(cmd.Env, env...)
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "DRY_RUN="); ok && (v == "1" || v == "true" || v == "yes") {
			cmd.Env = append(cmd.Env, envDry+"=1")
		}
	}
	out, err := cmd.CombinedOutput()
	log, _ := os.ReadFile(c.log)
	r := result{out: string(out), err: err}
	if s := strings.TrimSpace(string(log)); s != "" {
		r.calls = strings.Split(s, "\n")
	}
	for _, l := range r.calls {
		if strings.HasPrefix(l, "DRY-RUN VIOLATION") {
			c.t.Fatalf("a dry run called a mutating command: %s\n%s", l, out)
		}
	}
	return r
}

// must fails the test when the run failed.
func (r result) must(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("deploy.sh: %v\n%s", r.err, r.out)
	}
	return r
}

func (c *cloud) stateNow() fakeState {
	c.t.Helper()
	b, err := os.ReadFile(c.state)
	if err != nil {
		c.t.Fatal(err)
	}
	var st fakeState
	if err := json.Unmarshal(b, &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

func (c *cloud) serviceYAML(name string) string {
	c.t.Helper()
	svc, ok := c.stateNow().Res["service"][name]
	if !ok {
		c.t.Fatalf("service %s was not deployed", name)
	}
	return svc["yaml"].(string)
}

// TestPreflightStopsBeforeAnyChange: whatever is missing is listed in one
// message, and nothing is created.
func TestPreflightStopsBeforeAnyChange(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "")
	if err := os.WriteFile(c.lock, []byte("GO_IMAGE=golang:1.27.3-bookworm\nGO_DIGEST=\nRUNTIME_IMAGE=x\nRUNTIME_DIGEST=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := c.deploy("ALERT_EMAIL=", "TOKEN_PASSPHRASE=")
	if r.err == nil {
		t.Fatalf("deploy.sh succeeded without an account:\n%s", r.out)
	}
	for _, want := range []string{"stopped before changing anything", "an active gcloud account", "ALERT_EMAIL",
		"base image digests", "make pin-images", "ALLOW_UNPINNED_BASE_IMAGES=1"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the message lacks %q:\n%s", want, r.out)
		}
	}
	if m := r.mutations(); len(m) > 0 {
		t.Errorf("preflight failed but deploy.sh changed %v", m)
	}

	// Signed in now, but the first run has no flows' passphrase.
	c = newCloud(t, "deployer@example.com")
	r = c.deploy("TOKEN_PASSPHRASE=")
	if r.err == nil || !strings.Contains(r.out, "TOKEN_PASSPHRASE") {
		t.Fatalf("got %v, want a stop naming TOKEN_PASSPHRASE:\n%s", r.err, r.out)
	}
	if m := r.mutations(); len(m) > 0 {
		t.Errorf("preflight failed but deploy.sh changed %v", m)
	}

	// Less safe, and said so: building from the tags.
	c = newCloud(t, "deployer@example.com")
	if err := os.WriteFile(c.lock, []byte("GO_IMAGE=golang:1.27.3-bookworm\nGO_DIGEST=\nRUNTIME_IMAGE=x\nRUNTIME_DIGEST=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.deploy("DRY_RUN=1", "ALLOW_UNPINNED_BASE_IMAGES=1").must(t)
	if !strings.Contains(r.out, "warning: ALLOW_UNPINNED_BASE_IMAGES=1") {
		t.Errorf("an unpinned build is not called out:\n%s", r.out)
	}
}

// TestDryRunValues: 1, true and yes are dry runs that read and change
// nothing; any other non-empty value stops before any call.
func TestDryRunValues(t *testing.T) {
	t.Parallel()
	// 1 and true are the dry runs of TestFirstAndSecondRun.
	for _, v := range []string{"yes"} {
		c := newCloud(t, "deployer@example.com")
		r := c.deploy("DRY_RUN=" + v).must(t)
		if !strings.Contains(r.out, "DRY RUN") || !r.called("gcloud projects describe") {
			t.Errorf("DRY_RUN=%s: not a dry run that reads:\n%s", v, r.out)
		}
		if m := r.mutations(); len(m) > 0 {
			t.Errorf("DRY_RUN=%s changed %v", v, m)
		}
	}
	for _, v := range []string{"0", "false", "no", "maybe", "2"} {
		c := newCloud(t, "deployer@example.com")
		r := c.deploy("DRY_RUN=" + v)
		if r.err == nil || !strings.Contains(r.out, "DRY_RUN="+v+" is not understood") {
			t.Errorf("DRY_RUN=%s: got %v, want a refusal:\n%s", v, r.err, r.out)
		}
		if len(r.calls) > 0 {
			t.Errorf("DRY_RUN=%s ran %v", v, r.calls)
		}
	}
}

// planLines returns the plan's lines with the given action.
func planLines(out, action string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  "+action+" ") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// TestFirstAndSecondRun: the plan of a first run lists what it creates and
// the run creates exactly that; a second run with no change plans nothing
// and calls nothing that changes anything: no new revision.
func TestFirstAndSecondRun(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	plan1 := c.deploy("DRY_RUN=1").must(t)
	for _, want := range []string{
		"create    APIs run.googleapis.com firestore.googleapis.com",
		"create    Firestore database (default)",
		"create    Firestore rules (firebase.rules)",
		"create    TTL policy tokens_states.expires",
		"create    TTL policy tokenActivity.expireAt",
		"create    TTL policy sessions.expireAt",
		"create    TTL policy links.expireAt",
		"create    TTL policy conditions.expireAt",
		"create    index tokenActivity(token:ASCENDING,action:ASCENDING,at:DESCENDING)",
		"create    Firestore daily backup schedule",
		"create    push subscription token-events-notify  (to " + workerURL + "/notify)",
		"create    Cloud Run service token-worker",
		"create    Scheduler job token-sweep  (POST " + workerURL + "/run, audience " + workerURL + ")",
		"create    alert policy sweep-stalled",
		"create    notification channel e-mail ops@example.com",
		"note      encryption at rest off",
	} {
		if !strings.Contains(plan1.out, want) {
			t.Errorf("the first plan lacks %q", want)
		}
	}
	if len(planLines(plan1.out, "unchanged")) != 0 {
		t.Errorf("a fresh project has unchanged resources: %v", planLines(plan1.out, "unchanged"))
	}

	first := c.deploy().must(t)
	m1 := first.mutations()
	t.Logf("first run: %d mutating calls", len(m1))
	if got, want := len(m1), len(planLines(first.out, "create"))+len(planLines(first.out, "update")); got < want {
		t.Errorf("the first run made %d changes for a plan of %d", got, want)
	}
	// What the first run's plan said it would create, the real run did.
	if a, b := planLines(plan1.out, "create"), planLines(first.out, "create"); len(a) != len(b) {
		t.Errorf("the dry run planned %d creations, the run made %d", len(a), len(b))
	}
	worker, api := c.serviceYAML("token-worker"), c.serviceYAML("token-api")
	for _, want := range []string{"run.googleapis.com/ingress: internal", "- name: RUN_BEHIND_CLOUD_RUN_IAM\n          value: 'true'",
		"- name: RUN_OIDC_AUDIENCE\n          value: '" + workerURL + "'", "- name: RUN_OIDC_SERVICE_ACCOUNT\n          value: '" + invokerSA + "'",
		"- name: TRUSTED_PROXY_HOPS\n          value: '1'", "- name: ACTIVITY_COLLECTION\n          value: 'tokenActivity'"} {
		if !strings.Contains(worker, want) {
			t.Errorf("the worker's service lacks %q", want)
		}
	}
	for _, want := range []string{"run.googleapis.com/invoker-iam-disabled: 'true'", "run.googleapis.com/ingress: all",
		"- name: TRUSTED_PROXY_HOPS\n          value: '1'"} {
		if !strings.Contains(api, want) {
			t.Errorf("the api's service lacks %q", want)
		}
	}
	if strings.Contains(worker+api, "TOKEN_ENCRYPTION_KEYS") || strings.Contains(worker+api, "CONSOLE_") {
		t.Error("a setting nobody set was deployed")
	}
	st := c.stateNow()
	if m := st.Policies["run services/token-api"]["roles/run.invoker"]; len(m) > 0 {
		t.Errorf("the api has invokers %v, want its invoker check off instead", m)
	}
	if m := st.Policies["run services/token-worker"]["roles/run.invoker"]; !slices.Equal(m, []string{"serviceAccount:" + invokerSA}) {
		t.Errorf("the worker's invokers are %v", m)
	}
	job := st.Res["job"]["token-sweep"]["httpTarget"].(map[string]any)
	if oidc := job["oidcToken"].(map[string]any); oidc["audience"] != workerURL || job["uri"] != workerURL+"/run" {
		t.Errorf("the Scheduler job calls %v with %v", job["uri"], oidc)
	}
	push := st.Res["subscription"]["token-events-notify"]
	if pc := push["pushConfig"].(map[string]any); pc["pushEndpoint"] != workerURL+"/notify" ||
		pc["oidcToken"].(map[string]any)["audience"] != workerURL || push["ackDeadlineSeconds"].(float64) != 60 ||
		push["retryPolicy"].(map[string]any)["maximumBackoff"] != "600s" {
		t.Errorf("the push subscription is %v", push)
	}
	if len(st.Res["alertPolicies"]) != 4 || len(st.Res["notificationChannels"]) != 1 {
		t.Errorf("%d alert policies and %d channels, want 4 and 1", len(st.Res["alertPolicies"]), len(st.Res["notificationChannels"]))
	}

	plan2 := c.deploy("DRY_RUN=true").must(t)
	if c, u := planLines(plan2.out, "create"), planLines(plan2.out, "update"); len(c)+len(u) > 0 {
		t.Errorf("the plan of a second run changes something: %v %v", c, u)
	}
	second := c.deploy().must(t)
	if m := second.mutations(); len(m) > 0 {
		t.Errorf("a second run with no change made %d changes:\n%s", len(m), strings.Join(m, "\n"))
	}
	for _, svc := range []string{"token-api", "token-worker"} {
		if rev := c.stateNow().Res["service"][svc]["revisions"].(float64); rev != 1 {
			t.Errorf("%s has %v revisions after two runs, want 1", svc, rev)
		}
	}
	if second.called("docker buildx build") {
		t.Error("the second run built an image again")
	}

	// One setting changed: one service updated, nothing else.
	third := c.deploy("API_MAX_INSTANCES=5").must(t)
	if m := third.mutations(); len(m) != 1 || !strings.HasPrefix(m[0], "gcloud run services replace") {
		t.Errorf("a change of the api's maxScale made %v", m)
	}
}

// TestFailedReadIsLoud: a read that fails for any reason but "not found"
// stops the run with gcloud's message, before anything is rendered from
// it; it is never taken for an absent resource.
func TestFailedReadIsLoud(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	c.deploy().must(t)
	r := c.deploy("FAKE_FAIL_READ=secrets versions describe latest --secret=admin-passphrase")
	if r.err == nil {
		t.Fatalf("deploy.sh succeeded although a read failed:\n%s", r.out)
	}
	if !strings.Contains(r.out, "cannot read latest version of secret admin-passphrase") || !strings.Contains(r.out, "PERMISSION_DENIED") {
		t.Errorf("the failure does not say what could not be read:\n%s", r.out)
	}
	if m := r.mutations(); len(m) > 0 {
		t.Errorf("changes after a failed read: %v", m)
	}
	r = c.deploy("FAKE_FAIL_READ=pubsub topics describe")
	if r.err == nil || !strings.Contains(r.out, "cannot read topic token-events") {
		t.Errorf("a failed topic read: %v\n%s", r.err, r.out)
	}
	if r.called("gcloud pubsub topics create") {
		t.Error("a topic that could not be read was created")
	}
}

// TestBindingRetries: IAM does not know a service account at once; the
// bindings that name a fresh one are retried with growing waits.
func TestBindingRetries(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	r := c.deploy("FAKE_PROPAGATION=2").must(t)
	var sleeps []string
	for _, l := range r.calls {
		if strings.HasPrefix(l, "sleep ") {
			sleeps = append(sleeps, l)
		}
	}
	if len(sleeps) < 2 || sleeps[0] != "sleep 5" || sleeps[1] != "sleep 10" {
		t.Errorf("waits %v, want 5 s then 10 s", sleeps)
	}
	if !strings.Contains(r.out, "not propagated yet; again in 5s") {
		t.Errorf("the retry is not shown:\n%s", r.out)
	}
	if m := c.stateNow().Policies["projects /"+testProject]["roles/datastore.user"]; len(m) != 2 {
		t.Errorf("datastore.user holders after retries: %v", m)
	}
}

// TestEncryptionIsOptIn: a deployment turns encryption at rest on only
// when asked to; once its secret exists, it stays deployed.
func TestEncryptionIsOptIn(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	c.deploy().must(t)
	if _, ok := c.stateNow().Res["secret"]["token-encryption-keys"]; ok {
		t.Fatal("a default deployment created token-encryption-keys")
	}
	r := c.deploy("ENCRYPT_AT_REST=1").must(t)
	if !strings.Contains(r.out, "create    secret token-encryption-keys") {
		t.Errorf("ENCRYPT_AT_REST=1 did not create the keys:\n%s", r.out)
	}
	for _, svc := range []string{"token-api", "token-worker"} {
		if !strings.Contains(c.serviceYAML(svc), "name: token-encryption-keys") {
			t.Errorf("%s does not get TOKEN_ENCRYPTION_KEYS", svc)
		}
	}
	if m := c.deploy().must(t).mutations(); len(m) > 0 {
		t.Errorf("the run after turning encryption on changed %v", m)
	}
}

// TestOptionalSettingsPassThrough: console and notification settings reach
// the service that reads them, their secrets through Secret Manager.
func TestOptionalSettingsPassThrough(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	c.deploy("CONSOLE_OIDC_CLIENT_ID=C1", "CONSOLE_OIDC_CLIENT_SECRET=console-secret-91c", "CONSOLE_OPERATORS=a@example.com,*@ops.example.com",
		"CONSOLE_URL=https://tokens.example.com", "NOTIFY_WEBEX_BOT_TOKEN=bot-token-77aa", "NOTIFY_WEBEX_ROOM_ID=room1",
		"NOTIFY_GIVE_UP=48h", "ACTIVITY_RETENTION=720h").must(t)
	api, worker := c.serviceYAML("token-api"), c.serviceYAML("token-worker")
	for _, want := range []string{"value: 'C1'", "name: console-oidc-client-secret", "value: 'a@example.com,*@ops.example.com'",
		"- name: CONSOLE_URL", "- name: ACTIVITY_RETENTION"} {
		if !strings.Contains(api, want) {
			t.Errorf("the api lacks %q", want)
		}
	}
	for _, want := range []string{"name: notify-webex-bot-token", "value: 'room1'", "- name: NOTIFY_GIVE_UP\n          value: '48h'", "- name: CONSOLE_URL"} {
		if !strings.Contains(worker, want) {
			t.Errorf("the worker lacks %q", want)
		}
	}
	if strings.Contains(api, "NOTIFY_") || strings.Contains(worker, "CONSOLE_OIDC") {
		t.Error("a setting reached the binary that does not read it")
	}
	st := c.stateNow()
	if st.Secrets["console-oidc-client-secret"][0] != "console-secret-91c" || st.Secrets["notify-webex-bot-token"][0] != "bot-token-77aa" {
		t.Error("the optional secrets do not hold the given values")
	}
}

// TestNeverPrintsSecrets: values given for secrets stay out of the
// output, which a CI log or a terminal recording may keep.
func TestNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"TOKEN_PASSPHRASE=flow-secret-7f3a9c", "ADMIN_PASSPHRASE=admin-secret-2b8e41d0c",
		"TOKEN_ENCRYPTION_KEYS=k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	for _, dry := range []string{"DRY_RUN=1", "DRY_RUN="} {
		r := newCloud(t, "deployer@example.com").deploy(append([]string{dry}, secrets...)...).must(t)
		for _, s := range secrets {
			name, v, _ := strings.Cut(s, "=")
			if strings.Contains(r.out, v) {
				t.Errorf("%s: the output shows the value of %s", dry, name)
			}
		}
	}
}

// TestRollbackRefusesMissingKeys: a revision from before a key rotation
// cannot open what is sealed under the new key, so rollback.sh refuses it
// (changing nothing) and names the images to deploy instead; a revision
// that holds every key gets the traffic.
func TestRollbackRefusesMissingKeys(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	revision := func(name, keysVersion string) map[string]any {
		env := []any{map[string]any{"name": "TOKENS_COLLECTION", "value": "tokens"}}
		if keysVersion != "" {
			env = append(env, map[string]any{"name": "TOKEN_ENCRYPTION_KEYS",
				"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "token-encryption-keys", "key": keysVersion}}})
		}
		return map[string]any{"metadata": map[string]any{"name": name, "labels": map[string]any{"serving.knative.dev/service": "token-api"}},
			"spec": map[string]any{"containers": []any{map[string]any{"name": "api", "image": "r/api@sha256:" + name, "env": env},
				map[string]any{"name": "collector", "image": "gmp"}}}}
	}
	st := c.stateNow()
	st.APIs = map[string]bool{"run.googleapis.com": true, "secretmanager.googleapis.com": true}
	st.Res = map[string]map[string]map[string]any{
		"revision": {"token-api-00001": revision("token-api-00001", "1"), "token-api-00002": revision("token-api-00002", "2"),
			"token-api-00003": revision("token-api-00003", "3"), "token-api-00000": revision("token-api-00000", "")},
		"service": {"token-api": {"status": map[string]any{"traffic": []any{map[string]any{"revisionName": "token-api-00003", "percent": 100}}}}},
	}
	// Phase 0: k1; phase 1: k1,k2 (k1 seals); phase 2: k2,k1 (k2 seals).
	st.Secrets = map[string][]string{"token-encryption-keys": {"k1:AAAA", "k1:AAAA,k2:BBBB", "k2:BBBB,k1:AAAA"}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(c.state, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rollback := func(rev string) result {
		t.Helper()
		if err := os.WriteFile(c.log, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "rollback.sh", "token-api", rev)
		cmd.Env = []string{"PATH=" + c.stubs + string(os.PathListSeparator) + os.Getenv("PATH"), "FAKE_STATE=" + c.state,
			"FAKE_LOG=" + c.log, "PROJECT=" + testProject, "REGION=europe-west1"}
		out, err := cmd.CombinedOutput()
		log, _ := os.ReadFile(c.log)
		return result{out: string(out), err: err, calls: strings.Split(strings.TrimSpace(string(log)), "\n")}
	}
	for _, rev := range []string{"token-api-00001", "token-api-00000"} {
		r := rollback(rev)
		if r.err == nil || !strings.Contains(r.out, "refused") || !strings.Contains(r.out, "holds key k2, which "+rev+" lacks") ||
			!strings.Contains(r.out, "r/api@sha256:"+rev) {
			t.Errorf("rollback to %s: got %v\n%s", rev, r.err, r.out)
		}
		if m := r.mutations(); len(m) > 0 {
			t.Errorf("a refused rollback changed %v", m)
		}
		if strings.Contains(r.out, "AAAA") || strings.Contains(r.out, "BBBB") {
			t.Error("the output shows key material")
		}
	}
	r := rollback("token-api-00002")
	if r.err != nil || len(r.mutations()) != 1 {
		t.Fatalf("rollback to a revision holding both keys: %v %v\n%s", r.err, r.mutations(), r.out)
	}
	if tr := c.stateNow().Res["service"]["token-api"]["status"].(map[string]any)["traffic"].([]any); tr[0].(map[string]any)["revisionName"] != "token-api-00002" {
		t.Errorf("traffic %v", tr)
	}
}

// TestPinImagesWritesDigests: make pin-images fills in both digests with
// POSIX tools only (no sed -i, whose syntax BSD and GNU disagree on).
func TestPinImagesWritesDigests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := filepath.Join(dir, "base-images.lock")
	if err := os.WriteFile(lock, []byte("# c\nGO_IMAGE=golang:1.27.3-bookworm\nGO_DIGEST=\nRUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot\nRUNTIME_DIGEST=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stub := "#!/bin/sh\ncase \"$*\" in\n*golang*) echo '\"sha256:" + strings.Repeat("1", 64) + "\"';;\n" +
		"*distroless*) echo '\"sha256:" + strings.Repeat("2", 64) + "\"';;\nbuildx\\ version) echo v0.17;;\n*) exit 1;;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "pin-images.sh")
	cmd.Env = []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH"), "BASE_IMAGES_LOCK=" + lock}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pin-images.sh: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(lock)
	want := "# c\nGO_IMAGE=golang:1.27.3-bookworm\nGO_DIGEST=sha256:" + strings.Repeat("1", 64) +
		"\nRUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot\nRUNTIME_DIGEST=sha256:" + strings.Repeat("2", 64) + "\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	script, _ := os.ReadFile("pin-images.sh")
	if strings.Contains(string(script), "sed -i") {
		t.Error("pin-images.sh uses sed -i")
	}
}

func TestNeedsProjectAndRegion(t *testing.T) {
	t.Parallel()
	c := newCloud(t, "deployer@example.com")
	r := c.deploy("PROJECT=", "REGION=")
	if r.err == nil || !strings.Contains(r.out, "PROJECT: the project ID") || !strings.Contains(r.out, "REGION: the Cloud Run region") {
		t.Fatalf("got %v %s, want a failure naming PROJECT and REGION", r.err, r.out)
	}
}

// TestShellcheck checks the script (and .ci/run) with shellcheck, which
// .ci/run installs when it is missing.
func TestShellcheck(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
	}
	out, err := exec.Command("shellcheck", "-x", "deploy.sh", "rollback.sh", "pin-images.sh", "../../.ci/run").CombinedOutput()
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
