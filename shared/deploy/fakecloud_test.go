package deploy

// A fake of the parts of Google Cloud that deploy.sh touches, played by this
// test binary itself: the tests put scripts named gcloud, docker, curl and
// sleep first in PATH that run the binary again with DEPLOY_FAKE set. The
// fake keeps the project's state in a JSON file (so a second run of
// deploy.sh sees what the first one created), appends every call to a log,
// answers reads in the shape the real commands print with --format=json
// (and the REST APIs answer), and refuses any command it does not know,
// so the script cannot drift from what the fake was written against.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// fakeState is the fake project.
type fakeState struct {
	Project string
	Number  string
	Account string
	APIs    map[string]bool
	// Resources by kind, then name, in the JSON shape gcloud prints.
	Res map[string]map[string]map[string]any
	// Policies: IAM policy per "kind/resource": role to members.
	Policies map[string]map[string][]string
	// Secrets: the values of each version, oldest first.
	Secrets map[string][]string
	// Propagation: how many more times a binding naming a service account
	// created by the fake fails as not existing yet.
	Propagation map[string]int
	Seq         int
}

// Fault switches, from the environment of the deploy.sh run.
const (
	envFailRead    = "FAKE_FAIL_READ"   // a read whose command line holds this fails with PERMISSION_DENIED
	envPropagation = "FAKE_PROPAGATION" // bindings for a new service account fail this many times first
	envDry         = "FAKE_DRY"         // any mutating call fails the run (and is logged as such)
)

// fakeMain runs one call of the fake and returns its exit status.
func fakeMain(tool string, args []string) int {
	f := &fake{tool: tool, args: args}
	if err := f.load(); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 70
	}
	line := tool + " " + strings.Join(args, " ")
	mut := isMutation(tool, args)
	logLine := line
	if mut {
		logLine = "MUTATE " + line
	}
	if mut && os.Getenv(envDry) == "1" {
		appendLog("DRY-RUN VIOLATION " + line)
		fmt.Fprintln(os.Stderr, "fake: a mutating command in a dry run")
		return 99
	}
	appendLog(logLine)
	if s := os.Getenv(envFailRead); s != "" && !mut && strings.Contains(line, s) {
		fmt.Fprintf(os.Stderr, "ERROR: (gcloud) PERMISSION_DENIED: Permission denied on resource (%s).\n", s)
		return 1
	}
	var code int
	switch tool {
	case "gcloud":
		code = f.gcloud()
	case "docker":
		code = f.docker()
	case "curl":
		code = f.curl()
	case "sleep":
		code = 0
	default:
		code = f.unknown()
	}
	if err := f.save(); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 70
	}
	return code
}

func appendLog(line string) {
	fh, err := os.OpenFile(os.Getenv("FAKE_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer fh.Close()
	fmt.Fprintln(fh, line)
}

// isMutation says whether a call changes something (in the cloud, or in
// the local Docker configuration).
func isMutation(tool string, args []string) bool {
	switch tool {
	case "gcloud":
		for _, a := range positional(args) {
			switch a {
			case "create", "update", "replace", "enable", "delete", "add-iam-policy-binding",
				"remove-iam-policy-binding", "configure-docker", "add", "update-traffic":
				return true
			}
		}
	case "docker":
		p := positional(args)
		return len(p) >= 2 && p[0] == "buildx" && p[1] == "build" || len(p) >= 1 && p[0] == "push"
	case "curl":
		for i, a := range args {
			if a == "-X" && i+1 < len(args) && args[i+1] != "GET" {
				return true
			}
		}
	}
	return false
}

// positional lists the arguments that are not flags (--x=y, or -X value
// for curl).
func positional(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--"):
		case a == "-X" || a == "-H" || a == "-o" || a == "-w" || a == "--data-binary":
			i++
		case strings.HasPrefix(a, "-") && len(a) > 1:
		default:
			out = append(out, a)
		}
	}
	return out
}

type fake struct {
	tool string
	args []string
	st   *fakeState
}

func (f *fake) load() error {
	b, err := os.ReadFile(os.Getenv("FAKE_STATE"))
	if err != nil {
		return err
	}
	f.st = &fakeState{}
	return json.Unmarshal(b, f.st)
}

func (f *fake) save() error {
	b, err := json.MarshalIndent(f.st, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(os.Getenv("FAKE_STATE"), b, 0o600)
}

func (f *fake) unknown() int {
	fmt.Fprintf(os.Stderr, "fake: unsupported call: %s %s\n", f.tool, strings.Join(f.args, " "))
	return 64
}

// flag returns the value of --name=value.
func (f *fake) flag(name string) (string, bool) {
	for _, a := range f.args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name {
			return "", true
		}
	}
	return "", false
}

func (f *fake) flags(name string) []string {
	var out []string
	for _, a := range f.args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

func printJSON(v any) int {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Println(string(b))
	return 0
}

func notFound(what string) int {
	fmt.Fprintf(os.Stderr, "ERROR: (gcloud) NOT_FOUND: %s not found.\n", what)
	return 1
}

func (f *fake) res(kind string) map[string]map[string]any {
	if f.st.Res == nil {
		f.st.Res = map[string]map[string]map[string]any{}
	}
	if f.st.Res[kind] == nil {
		f.st.Res[kind] = map[string]map[string]any{}
	}
	return f.st.Res[kind]
}

// apiOff answers like gcloud when the API of a command is not enabled.
func (f *fake) apiOff(api string) bool {
	if f.st.APIs[api] {
		return false
	}
	fmt.Fprintf(os.Stderr, "ERROR: (gcloud) PERMISSION_DENIED: %s has not been used in project %s before or it is disabled. reason: SERVICE_DISABLED\n", api, f.st.Number)
	return true
}

var groupAPI = map[string]string{
	"firestore": "firestore.googleapis.com", "pubsub": "pubsub.googleapis.com", "iam": "iam.googleapis.com",
	"secrets": "secretmanager.googleapis.com", "artifacts": "artifactregistry.googleapis.com", "run": "run.googleapis.com",
	"scheduler": "cloudscheduler.googleapis.com", "logging": "logging.googleapis.com",
}

func (f *fake) gcloud() int {
	p := positional(f.args)
	if len(p) == 0 {
		return f.unknown()
	}
	if p[0] != "version" && p[0] != "auth" {
		if prj, _ := f.flag("project"); prj != f.st.Project && !(p[0] == "projects" && len(p) > 2 && p[1] == "describe") {
			fmt.Fprintf(os.Stderr, "fake: --project=%s, want %s\n", prj, f.st.Project)
			return 64
		}
	}
	if api, ok := groupAPI[p[0]]; ok && f.apiOff(api) {
		return 1
	}
	key := strings.Join(p, " ") + " "
	is := func(words string) bool { return strings.HasPrefix(key, words+" ") }
	switch {
	case p[0] == "version":
		return printJSON(map[string]string{"Google Cloud SDK": "528.0.0"})
	case is("auth list"):
		if f.st.Account != "" {
			fmt.Println(f.st.Account)
		}
		return 0
	case is("auth print-access-token"):
		if f.st.Account == "" {
			fmt.Fprintln(os.Stderr, "ERROR: (gcloud.auth.print-access-token) You do not currently have an active account selected.")
			return 1
		}
		fmt.Println("ya29.fake-token")
		return 0
	case is("auth configure-docker"):
		return 0
	case is("projects describe"):
		if p[2] != f.st.Project {
			fmt.Fprintln(os.Stderr, "ERROR: (gcloud.projects.describe) The project may not exist, or you lack permission: PERMISSION_DENIED")
			return 1
		}
		return printJSON(map[string]any{"projectId": f.st.Project, "projectNumber": f.st.Number, "lifecycleState": "ACTIVE"})
	case is("services list"):
		out := []any{}
		names := sortedKeys(f.st.APIs)
		for _, n := range names {
			out = append(out, map[string]any{"config": map[string]any{"name": n}, "name": "projects/" + f.st.Number + "/services/" + n})
		}
		return printJSON(out)
	case is("services enable"):
		for _, a := range p[2:] {
			f.st.APIs[a] = true
		}
		return 0
	case p[0] == "firestore":
		return f.firestore(p)
	case iamVerb(p) != nil:
		q := iamVerb(p)
		if q[2] == "get-iam-policy" {
			return f.getPolicy(q)
		}
		return f.setPolicy(q)
	case is("iam service-accounts describe"):
		return f.describe("sa", arg(p, 3))
	case is("iam service-accounts create"):
		email := arg(p, 3) + "@" + f.st.Project + ".iam.gserviceaccount.com"
		f.res("sa")[email] = map[string]any{"email": email}
		if n, _ := strconv.Atoi(os.Getenv(envPropagation)); n > 0 {
			if f.st.Propagation == nil {
				f.st.Propagation = map[string]int{}
			}
			f.st.Propagation[email] = n
		}
		return 0
	case is("pubsub topics describe"):
		return f.describe("topic", arg(p, 3))
	case is("pubsub topics create"):
		f.res("topic")[arg(p, 3)] = map[string]any{"name": "projects/" + f.st.Project + "/topics/" + arg(p, 3)}
		return 0
	case is("pubsub subscriptions describe"):
		return f.describe("subscription", arg(p, 3))
	case is("pubsub subscriptions create"), is("pubsub subscriptions update"):
		return f.subscription(p)
	case is("secrets describe"):
		return f.describe("secret", arg(p, 2))
	case is("secrets create"):
		return f.secretCreate(arg(p, 2))
	case is("secrets versions describe"), is("secrets versions access"), is("secrets versions add"):
		return f.secretVersion(p)
	case is("artifacts repositories describe"):
		return f.describe("repo", arg(p, 3))
	case is("artifacts repositories create"):
		f.res("repo")[arg(p, 3)] = map[string]any{"name": arg(p, 3), "format": "DOCKER"}
		return 0
	case is("artifacts docker images"):
		if arg(p, 3) != "describe" {
			return f.unknown()
		}
		return f.describe("image", arg(p, 4))
	case is("run revisions describe"):
		return f.describe("revision", arg(p, 3))
	case is("run services update-traffic"):
		to, _ := f.flag("to-revisions")
		rev, pct, _ := strings.Cut(to, "=")
		svc, ok := f.res("service")[arg(p, 3)]
		if _, known := f.res("revision")[rev]; !ok || !known || pct != "100" {
			return notFound("service or revision")
		}
		svc["status"].(map[string]any)["traffic"] = []any{map[string]any{"revisionName": rev, "percent": 100}}
		return 0
	case is("run services describe"):
		return f.describe("service", arg(p, 3))
	case is("run services replace"):
		return f.runReplace(arg(p, 3))
	case is("scheduler jobs describe"):
		return f.describe("job", arg(p, 3))
	case is("scheduler jobs create"), is("scheduler jobs update"):
		return f.schedulerJob(p)
	case is("logging metrics describe"):
		return f.describe("metric", arg(p, 3))
	case is("logging metrics create"), is("logging metrics update"):
		d, _ := f.flag("description")
		flt, _ := f.flag("log-filter")
		f.res("metric")[arg(p, 3)] = map[string]any{"name": arg(p, 3), "description": d, "filter": flt}
		return 0
	}
	return f.unknown()
}

func arg(p []string, i int) string {
	if i < len(p) {
		return p[i]
	}
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *fake) describe(kind, name string) int {
	r, ok := f.res(kind)[name]
	if !ok {
		if kind == "service" {
			fmt.Fprintf(os.Stderr, "ERROR: (gcloud.run.services.describe) Cannot find service [%s]\n", name)
			return 1
		}
		return notFound(kind + " " + name)
	}
	return printJSON(r)
}

func (f *fake) firestore(p []string) int {
	if db, _ := f.flag("database"); db != "(default)" {
		fmt.Fprintln(os.Stderr, "fake: firestore call without --database=(default)")
		return 64
	}
	key := strings.Join(p[1:], " ") + " "
	is := func(words string) bool { return strings.HasPrefix(key, words+" ") }
	dbs := f.res("database")
	_, haveDB := dbs["(default)"]
	if !is("databases") && !haveDB {
		fmt.Fprintln(os.Stderr, "ERROR: (gcloud) NOT_FOUND: The database (default) does not exist for project")
		return 1
	}
	switch {
	case is("databases describe"):
		return f.describe("database", "(default)")
	case is("databases create"):
		loc, _ := f.flag("location")
		dbs["(default)"] = map[string]any{"name": "projects/" + f.st.Project + "/databases/(default)", "locationId": loc,
			"type": "FIRESTORE_NATIVE", "pointInTimeRecoveryEnablement": "POINT_IN_TIME_RECOVERY_DISABLED",
			"deleteProtectionState": "DELETE_PROTECTION_DISABLED"}
		return 0
	case is("databases update"):
		if _, ok := f.flag("enable-pitr"); ok {
			dbs["(default)"]["pointInTimeRecoveryEnablement"] = "POINT_IN_TIME_RECOVERY_ENABLED"
		}
		if _, ok := f.flag("delete-protection"); ok {
			dbs["(default)"]["deleteProtectionState"] = "DELETE_PROTECTION_ENABLED"
		}
		return 0
	case is("fields ttls list"):
		return printJSON(values(f.res("ttl")))
	case is("fields ttls update"):
		g, _ := f.flag("collection-group")
		if _, ok := f.flag("enable-ttl"); !ok {
			return f.unknown()
		}
		name := "projects/" + f.st.Project + "/databases/(default)/collectionGroups/" + g + "/fields/" + arg(p, 4)
		f.res("ttl")[name] = map[string]any{"name": name, "ttlConfig": map[string]any{"state": "CREATING"}}
		return 0
	case is("indexes composite list"):
		return printJSON(values(f.res("index")))
	case is("indexes composite create"):
		g, _ := f.flag("collection-group")
		scope, _ := f.flag("query-scope")
		var fields []any
		for _, c := range f.flags("field-config") {
			m := regexp.MustCompile(`^field-path=([^,]+),order=(ascending|descending)$`).FindStringSubmatch(c)
			if m == nil {
				return f.unknown()
			}
			fields = append(fields, map[string]any{"fieldPath": m[1], "order": strings.ToUpper(m[2])})
		}
		// Firestore appends the document name in the last field's order.
		last := fields[len(fields)-1].(map[string]any)["order"]
		fields = append(fields, map[string]any{"fieldPath": "__name__", "order": last})
		f.st.Seq++
		name := fmt.Sprintf("projects/%s/databases/(default)/collectionGroups/%s/indexes/CICAg%d", f.st.Project, g, f.st.Seq)
		f.res("index")[name] = map[string]any{"name": name, "queryScope": strings.ToUpper(scope), "fields": fields, "state": "CREATING"}
		return 0
	case is("backups schedules list"):
		return printJSON(values(f.res("backup")))
	case is("backups schedules create"), is("backups schedules update"):
		ret, _ := f.flag("retention")
		n, _ := strconv.Atoi(strings.TrimRight(ret, "dw"))
		secs := n * 86400
		if strings.HasSuffix(ret, "w") {
			secs = n * 604800
		}
		id, ok := f.flag("backup-schedule")
		if !ok {
			f.st.Seq++
			id = fmt.Sprintf("sched%d", f.st.Seq)
		}
		name := "projects/" + f.st.Project + "/databases/(default)/backupSchedules/" + id
		f.res("backup")[name] = map[string]any{"name": name, "retention": fmt.Sprintf("%ds", secs), "dailyRecurrence": map[string]any{}}
		return 0
	}
	return f.unknown()
}

func values(m map[string]map[string]any) []any {
	out := []any{}
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// iamVerb normalizes an IAM call to [group, subgroup, verb, resource]
// (subgroup "" for projects and secrets), or nil.
func iamVerb(p []string) []string {
	isVerb := func(v string) bool {
		return v == "get-iam-policy" || v == "add-iam-policy-binding" || v == "remove-iam-policy-binding"
	}
	switch {
	case len(p) >= 3 && (p[0] == "projects" || p[0] == "secrets") && isVerb(p[1]):
		return []string{p[0], "", p[1], p[2]}
	case len(p) >= 4 && isVerb(p[2]):
		return p[:4]
	}
	return nil
}

// policyKey names a resource's IAM policy by gcloud group and resource.
func policyKey(p []string) string { return p[0] + " " + p[1] + "/" + p[3] }

func (f *fake) getPolicy(p []string) int {
	if !f.policyTargetExists(p) {
		return notFound(strings.Join(p, " "))
	}
	pol := f.st.Policies[policyKey(p)]
	var bindings []any
	for _, role := range sortedKeys(pol) {
		bindings = append(bindings, map[string]any{"role": role, "members": pol[role]})
	}
	return printJSON(map[string]any{"bindings": bindings, "etag": "BwX", "version": 1})
}

func (f *fake) policyTargetExists(p []string) bool {
	switch p[0] + " " + p[1] {
	case "projects ":
		return p[3] == f.st.Project
	case "secrets ":
		_, ok := f.res("secret")[p[3]]
		return ok
	case "pubsub topics":
		_, ok := f.res("topic")[p[3]]
		return ok
	case "pubsub subscriptions":
		_, ok := f.res("subscription")[p[3]]
		return ok
	case "iam service-accounts":
		_, ok := f.res("sa")[p[3]]
		return ok
	case "run services":
		_, ok := f.res("service")[p[3]]
		return ok
	}
	return false
}

func (f *fake) setPolicy(p []string) int {
	verb := p[2]
	member, _ := f.flag("member")
	role, _ := f.flag("role")
	if p[0] == "projects" {
		if c, _ := f.flag("condition"); c != "None" {
			fmt.Fprintln(os.Stderr, "ERROR: (gcloud.projects.add-iam-policy-binding) Adding a binding without specifying a condition to a policy containing conditions is prohibited in non-interactive mode.")
			return 1
		}
	}
	if !f.policyTargetExists(p) {
		return notFound(strings.Join(p, " "))
	}
	// A service account just created is not known to IAM at once.
	for _, sa := range []string{strings.TrimPrefix(member, "serviceAccount:"), p[3]} {
		if f.st.Propagation[sa] > 0 {
			f.st.Propagation[sa]--
			fmt.Fprintf(os.Stderr, "ERROR: Policy modification failed. INVALID_ARGUMENT: Service account %s does not exist.\n", sa)
			return 1
		}
	}
	if f.st.Policies == nil {
		f.st.Policies = map[string]map[string][]string{}
	}
	k := policyKey(p)
	if f.st.Policies[k] == nil {
		f.st.Policies[k] = map[string][]string{}
	}
	members := f.st.Policies[k][role]
	if verb == "remove-iam-policy-binding" {
		var kept []string
		for _, m := range members {
			if m != member {
				kept = append(kept, m)
			}
		}
		f.st.Policies[k][role] = kept
		return 0
	}
	for _, m := range members {
		if m == member {
			return 0
		}
	}
	f.st.Policies[k][role] = append(members, member)
	return 0
}

func (f *fake) subscription(p []string) int {
	name := arg(p, 3)
	subs := f.res("subscription")
	s, exists := subs[name]
	if p[2] == "create" {
		if exists {
			fmt.Fprintln(os.Stderr, "ERROR: ALREADY_EXISTS")
			return 1
		}
		topic, _ := f.flag("topic")
		if _, ok := f.res("topic")[topic]; !ok {
			return notFound("topic " + topic)
		}
		s = map[string]any{"name": "projects/" + f.st.Project + "/subscriptions/" + name, "topic": "projects/" + f.st.Project + "/topics/" + topic,
			"ackDeadlineSeconds": 10, "messageRetentionDuration": "604800s", "expirationPolicy": map[string]any{"ttl": "2678400s"}, "pushConfig": map[string]any{}}
		if _, ok := f.flag("enable-message-ordering"); ok {
			s["enableMessageOrdering"] = true
		}
		subs[name] = s
	} else if !exists {
		return notFound("subscription " + name)
	}
	if v, ok := f.flag("ack-deadline"); ok {
		n, _ := strconv.Atoi(v)
		s["ackDeadlineSeconds"] = n
	}
	if v, ok := f.flag("message-retention-duration"); ok && v == "7d" {
		s["messageRetentionDuration"] = "604800s"
	}
	if v, ok := f.flag("expiration-period"); ok && v == "never" {
		s["expirationPolicy"] = map[string]any{}
	}
	if v, ok := f.flag("push-endpoint"); ok {
		sa, _ := f.flag("push-auth-service-account")
		if _, known := f.res("sa")[sa]; !known {
			return notFound("service account " + sa)
		}
		aud, _ := f.flag("push-auth-token-audience")
		s["pushConfig"] = map[string]any{"pushEndpoint": v, "oidcToken": map[string]any{"serviceAccountEmail": sa, "audience": aud}}
	}
	minB, okMin := f.flag("min-retry-delay")
	maxB, okMax := f.flag("max-retry-delay")
	if okMin || okMax {
		s["retryPolicy"] = map[string]any{"minimumBackoff": minB, "maximumBackoff": maxB}
	}
	return 0
}

func (f *fake) secretCreate(name string) int {
	if _, ok := f.res("secret")[name]; ok {
		fmt.Fprintln(os.Stderr, "ERROR: ALREADY_EXISTS")
		return 1
	}
	if v, _ := f.flag("data-file"); v != "-" {
		return f.unknown()
	}
	value, _ := readAllStdin()
	repl := map[string]any{"automatic": map[string]any{}}
	if pol, _ := f.flag("replication-policy"); pol == "user-managed" {
		loc, _ := f.flag("locations")
		repl = map[string]any{"userManaged": map[string]any{"replicas": []any{map[string]any{"location": loc}}}}
	}
	f.res("secret")[name] = map[string]any{"name": "projects/" + f.st.Number + "/secrets/" + name, "replication": repl}
	if f.st.Secrets == nil {
		f.st.Secrets = map[string][]string{}
	}
	f.st.Secrets[name] = []string{value}
	return 0
}

func readAllStdin() (string, error) {
	b, err := readAll(os.Stdin)
	return string(b), err
}

func (f *fake) secretVersion(p []string) int {
	verb := arg(p, 2)
	name, _ := f.flag("secret")
	if verb == "add" {
		name = arg(p, 3)
	}
	vs, ok := f.st.Secrets[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "ERROR: (gcloud.secrets.versions.%s) NOT_FOUND: Secret [projects/%s/secrets/%s] not found or has no versions.\n", verb, f.st.Number, name)
		return 1
	}
	switch verb {
	case "describe":
		return printJSON(map[string]any{"name": fmt.Sprintf("projects/%s/secrets/%s/versions/%d", f.st.Number, name, len(vs)), "state": "ENABLED"})
	case "access":
		i := len(vs)
		if v := arg(p, 3); v != "latest" {
			i, _ = strconv.Atoi(v)
		}
		if i < 1 || i > len(vs) {
			return notFound("version " + arg(p, 3))
		}
		fmt.Print(vs[i-1])
		return 0
	case "add":
		v, _ := readAllStdin()
		f.st.Secrets[name] = append(vs, v)
		return 0
	}
	return f.unknown()
}

var (
	yamlName  = regexp.MustCompile(`(?m)^  name: '([^']+)'$`)
	yamlLabel = regexp.MustCompile(`(?m)^    tokenservice-spec: '([0-9a-f]*)'$`)
	yamlSA    = regexp.MustCompile(`(?m)^      serviceAccountName: '([^']+)'$`)
)

func (f *fake) runReplace(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR: (gcloud.run.services.replace)", err)
		return 1
	}
	y := string(b)
	name, label, sa := yamlName.FindStringSubmatch(y), yamlLabel.FindStringSubmatch(y), yamlSA.FindStringSubmatch(y)
	if name == nil || label == nil || sa == nil || strings.Contains(y, "%") && regexp.MustCompile(`%[A-Z_]+%`).MatchString(y) {
		fmt.Fprintln(os.Stderr, "ERROR: (gcloud.run.services.replace) the fake cannot read this service YAML")
		return 1
	}
	if _, ok := f.res("sa")[sa[1]]; !ok {
		fmt.Fprintf(os.Stderr, "ERROR: (gcloud.run.services.replace) Service account %s does not exist.\n", sa[1])
		return 1
	}
	region, _ := f.flag("region")
	svc, ok := f.res("service")[name[1]]
	rev := 1
	if ok {
		rev = int(svc["revisions"].(float64)) + 1
	}
	f.res("service")[name[1]] = map[string]any{
		"metadata":  map[string]any{"name": name[1], "labels": map[string]any{"tokenservice-spec": label[1]}},
		"status":    map[string]any{"url": fmt.Sprintf("https://%s-%s.%s.run.app", name[1], f.st.Number, region)},
		"revisions": rev,
		"yaml":      y,
	}
	return 0
}

func (f *fake) schedulerJob(p []string) int {
	name := arg(p, 4)
	jobs := f.res("job")
	if _, ok := jobs[name]; ok == (p[2] == "create") {
		return notFound("job " + name)
	}
	get := func(n string) string { v, _ := f.flag(n); return v }
	if _, ok := f.res("sa")[get("oidc-service-account-email")]; !ok {
		return notFound("service account " + get("oidc-service-account-email"))
	}
	jobs[name] = map[string]any{
		"name": "projects/" + f.st.Project + "/locations/" + get("location") + "/jobs/" + name, "schedule": get("schedule"),
		"timeZone": "Etc/UTC", "state": "ENABLED", "attemptDeadline": get("attempt-deadline"),
		"httpTarget": map[string]any{"uri": get("uri"), "httpMethod": get("http-method"),
			"oidcToken": map[string]any{"serviceAccountEmail": get("oidc-service-account-email"), "audience": get("oidc-token-audience")}},
	}
	return 0
}

// docker plays buildx: a build registers the image under its tag, with a
// digest that depends only on the inputs named on the command line.
func (f *fake) docker() int {
	p := positional(f.args)
	switch {
	case len(p) == 2 && p[0] == "buildx" && p[1] == "version":
		fmt.Println("github.com/docker/buildx v0.17.1 fake")
		return 0
	case len(p) >= 2 && p[0] == "buildx" && p[1] == "build":
		out, _ := f.flag("output")
		m := regexp.MustCompile(`name=([^,]+),push=true`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "rewrite-timestamp=true") {
			return f.unknown()
		}
		if v, _ := f.flag("provenance"); v != "false" {
			fmt.Fprintln(os.Stderr, "fake: a build with provenance is not reproducible")
			return 1
		}
		if os.Getenv("SOURCE_DATE_EPOCH") == "" {
			fmt.Fprintln(os.Stderr, "fake: a build without SOURCE_DATE_EPOCH is not reproducible")
			return 1
		}
		ref := m[1]
		repo := strings.Split(ref, "/")
		if _, ok := f.res("repo")[repo[len(repo)-2]]; !ok {
			return notFound("repository")
		}
		sum := sha256.Sum256([]byte(strings.Join(f.args, " ") + os.Getenv("SOURCE_DATE_EPOCH")))
		f.res("image")[ref] = map[string]any{"image_summary": map[string]any{"digest": "sha256:" + hex.EncodeToString(sum[:])}}
		return 0
	}
	return f.unknown()
}
