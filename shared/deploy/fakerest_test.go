package deploy

// The REST half of the fake: curl against the Firebase Rules API and the
// Cloud Monitoring API, as deploy.sh calls them.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

func readAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }

// curl answers one request: the body goes to -o, the status to stdout
// (-w '%{http_code}').
func (f *fake) curl() int {
	if len(f.args) == 1 && f.args[0] == "--version" {
		fmt.Println("curl 8.5.0 (x86_64-pc-linux-gnu) libcurl/8.5.0")
		return 0
	}
	var method, out, headers, body, target string
	for i := 0; i < len(f.args); i++ {
		a := f.args[i]
		next := func() string { i++; return arg(f.args, i) }
		switch a {
		case "-X":
			method = next()
		case "-o":
			out = next()
		case "-H":
			headers = next()
		case "--data-binary":
			body = next()
		case "-w", "-sS":
			if a == "-w" {
				next()
			}
		default:
			target = a
		}
	}
	h, err := os.ReadFile(strings.TrimPrefix(headers, "@"))
	if err != nil || !strings.Contains(string(h), "Authorization: Bearer ya29.fake-token") ||
		!strings.Contains(string(h), "x-goog-user-project: "+f.st.Project) {
		return f.unknown()
	}
	var in map[string]any
	if body != "" {
		b, err := os.ReadFile(strings.TrimPrefix(body, "@"))
		if err != nil || json.Unmarshal(b, &in) != nil {
			fmt.Fprintln(os.Stderr, "fake: the request body is not JSON")
			return 64
		}
	}
	u, err := url.Parse(target)
	if err != nil || out == "" || method == "" {
		return f.unknown()
	}
	code, answer := f.rest(method, u, in)
	b, _ := json.Marshal(answer)
	if err := os.WriteFile(out, b, 0o600); err != nil {
		return 23
	}
	fmt.Print(code)
	return 0
}

func (f *fake) rest(method string, u *url.URL, in map[string]any) (int, any) {
	prefix := map[string]string{
		"firebaserules.googleapis.com": "/v1/projects/" + f.st.Project + "/",
		"monitoring.googleapis.com":    "/v3/projects/" + f.st.Project + "/",
	}[u.Host]
	path, ok := strings.CutPrefix(u.Path, prefix)
	if prefix == "" || !ok {
		return 400, map[string]any{"error": map[string]any{"message": "fake: unknown URL " + u.String()}}
	}
	if !f.st.APIs[u.Host] {
		return 403, map[string]any{"error": map[string]any{"status": "PERMISSION_DENIED", "message": u.Host + " is disabled (SERVICE_DISABLED)"}}
	}
	notFound := map[string]any{"error": map[string]any{"status": "NOT_FOUND"}}
	switch {
	case method == "GET" && path == "releases/cloud.firestore":
		if r, ok := f.res("release")["cloud.firestore"]; ok {
			return 200, r
		}
		return 404, notFound
	case method == "GET" && strings.HasPrefix(path, "rulesets/"):
		if r, ok := f.res("ruleset")[path]; ok {
			return 200, r
		}
		return 404, notFound
	case method == "POST" && path == "rulesets":
		f.st.Seq++
		name := fmt.Sprintf("projects/%s/rulesets/rs%d", f.st.Project, f.st.Seq)
		in["name"] = name
		f.res("ruleset")[strings.TrimPrefix(name, "projects/"+f.st.Project+"/")] = in
		return 200, in
	case method == "POST" && path == "releases", method == "PATCH" && path == "releases/cloud.firestore":
		rel := in
		if method == "PATCH" {
			rel, _ = in["release"].(map[string]any)
		}
		rs, _ := rel["rulesetName"].(string)
		if _, ok := f.res("ruleset")[strings.TrimPrefix(rs, "projects/"+f.st.Project+"/")]; !ok {
			return 400, map[string]any{"error": map[string]any{"message": "no such ruleset " + rs}}
		}
		f.res("release")["cloud.firestore"] = rel
		return 200, rel
	case method == "GET" && (path == "notificationChannels" || path == "alertPolicies"):
		return 200, map[string]any{path: values(f.res(path))}
	case method == "POST" && (path == "notificationChannels" || path == "alertPolicies"):
		f.st.Seq++
		in["name"] = fmt.Sprintf("projects/%s/%s/%d", f.st.Project, path, f.st.Seq)
		f.res(path)[in["name"].(string)] = in
		return 200, in
	case method == "PATCH" && strings.HasPrefix(path, "alertPolicies/"):
		name := "projects/" + f.st.Project + "/" + path
		if _, ok := f.res("alertPolicies")[name]; !ok {
			return 404, notFound
		}
		in["name"] = name
		f.res("alertPolicies")[name] = in
		return 200, in
	}
	return 400, map[string]any{"error": map[string]any{"message": "fake: unsupported " + method + " " + u.String()}}
}
