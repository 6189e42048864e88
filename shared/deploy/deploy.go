// Package deploy is the deployment of the token service on Cloud Run, as
// files: the service definitions (Knative YAML, api.service.yaml and
// worker.service.yaml), the RunMonitoring config of the metrics sidecar,
// the base images pinned by digest (base-images.lock), the alert policies
// (alerts/*.json) and the scripts: deploy.sh, which reads every resource
// and creates or updates only what differs (`make deploy PROJECT=…
// REGION=… ALERT_EMAIL=…`, DRY_RUN=1 for the plan), rollback.sh and
// pin-images.sh. The procedure is shared/docs/deployment.md.
//
// Its Go code only reads the service definitions, for tests: the api's and
// the worker's tests check that every path a probe uses is served, this
// package's that every environment name is one the binaries read. The
// package's tests also run the scripts against a fake of the cloud
// (fakecloud_test.go) that records every call.
package deploy

import (
	"embed"
	"regexp"
	"strings"
)

//go:embed api.service.yaml worker.service.yaml
var services embed.FS

// ServiceYAML is the service definition (a template) of binary, "api" or
// "worker".
func ServiceYAML(binary string) string {
	b, err := services.ReadFile(binary + ".service.yaml")
	if err != nil {
		panic("deploy: no service definition for " + binary)
	}
	return string(b)
}

// Probe is one HTTP probe of a container.
type Probe struct {
	Kind string // startupProbe, livenessProbe or readinessProbe
	Path string
	Port string
}

var (
	probeLine = regexp.MustCompile(`^(\s*)(startupProbe|livenessProbe|readinessProbe):\s*$`)
	fieldLine = regexp.MustCompile(`^(\s*)(path|port): *'?([^'\s]*)'?\s*$`)
	envLine   = regexp.MustCompile(`^(\s*)env:\s*$`)
	nameLine  = regexp.MustCompile(`^(\s*)- name: *([A-Za-z_][A-Za-z0-9_]*)\s*$`)
)

// Probes lists the HTTP probes of a service definition, in order.
func Probes(yaml string) []Probe {
	var out []Probe
	var cur *Probe
	indent := -1
	for _, line := range strings.Split(yaml, "\n") {
		if m := probeLine.FindStringSubmatch(line); m != nil {
			out = append(out, Probe{Kind: m[2]})
			cur, indent = &out[len(out)-1], len(m[1])
			continue
		}
		if cur == nil || strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if leading(line) <= indent {
			cur = nil
			continue
		}
		if m := fieldLine.FindStringSubmatch(line); m != nil {
			if m[2] == "path" {
				cur.Path = m[3]
			} else {
				cur.Port = m[3]
			}
		}
	}
	return out
}

// EnvNames lists the environment variable names a service definition sets,
// in order, including those of blocks that deploy.sh may leave out.
func EnvNames(yaml string) []string {
	var out []string
	indent := -1
	for _, line := range strings.Split(yaml, "\n") {
		if m := envLine.FindStringSubmatch(line); m != nil {
			indent = len(m[1])
			continue
		}
		if indent < 0 || strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if leading(line) < indent || (leading(line) == indent && !strings.HasPrefix(strings.TrimSpace(line), "- ")) {
			indent = -1
			continue
		}
		if m := nameLine.FindStringSubmatch(line); m != nil && len(m[1]) == indent {
			out = append(out, m[2])
		}
	}
	return out
}

func leading(line string) int { return len(line) - len(strings.TrimLeft(line, " ")) }
