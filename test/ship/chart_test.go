// Package ship_test checks what mcpgw ships besides its code: the Helm chart
// in charts/mcpgw and the container image built by the Dockerfile.
//
// The chart is linted as helm lint --strict lints it, rendered as helm
// template renders it for three value sets (the defaults and the files in
// charts/mcpgw/ci), and each render is compared with a golden file in
// testdata (go test ./test/ship -update rewrites them), validated by
// kubeconform against the Kubernetes API schemas (schema_test.go), and
// loaded by configs.Parse as the pod would load it. Linting and rendering
// are helm's own packages, run by tools/chart/helmlite (a cold build of the
// whole helm CLI cost twice as much); helm and kubeconform are pinned in
// tools/chart/go.mod and both commands run with go tool.
//
// go test caches a passing result keyed by the files the test process
// opens; helmlite and kubeconform read the chart in other processes, so the
// test reads every chart file itself (track) to keep the cache honest.
package ship_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/configs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// root is the repository root, two levels up from this package.
var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Join(wd, "..", "..")
}()

const (
	chartDir  = "charts/mcpgw"
	release   = "mcpgw"
	namespace = "mcp"
)

// valueSets are the renders kept as golden files.
var valueSets = []struct {
	name   string
	values string // relative to root; "" renders the defaults
}{
	{"default", ""},
	{"production", chartDir + "/ci/production-values.yaml"},
	{"bundled-redis", chartDir + "/ci/bundled-redis-values.yaml"},
}

// track opens every file under each path (a file or a directory), so go
// test's cache knows the result depends on them.
func track(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = os.ReadFile(path)
			return err
		})
		require.NoError(t, err)
	}
}

var (
	toolsOnce sync.Once
	toolPaths map[string]string
	errTools  error
)

// tool returns the path of a command of tools/chart (helmlite, or
// kubeconform pinned in its go.mod), built (or found in the build cache) by
// go tool -n in that module with the build settings make uses for the tools
// (SHIPENV in the Makefile: the Dockerfile's CGO_ENABLED=0 -trimpath), so
// that the build make test's deps phase made is the one found.
func tool(t *testing.T, name string) string {
	t.Helper()
	ctx := t.Context() // Do runs synchronously, within this test.
	toolsOnce.Do(func() {
		toolPaths = map[string]string{}
		goflags, err := exec.CommandContext(ctx, "go", "env", "GOFLAGS").Output()
		if err != nil {
			errTools = fmt.Errorf("go env GOFLAGS: %w: %s", err, stderrOf(err))
			return
		}
		env := append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS="+strings.TrimSpace(string(goflags)+" -trimpath"))
		for _, n := range []string{"helmlite", "kubeconform"} {
			cmd := exec.CommandContext(ctx, "go", "tool", "-n", n)
			cmd.Dir = filepath.Join(root, "tools", "chart")
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				errTools = fmt.Errorf("building %s: %w: %s", n, err, stderrOf(err))
				return
			}
			toolPaths[n] = strings.TrimSpace(string(out))
		}
	})
	require.NoError(t, errTools)
	track(t, "tools/chart")
	return toolPaths[name]
}

// helm runs tools/chart/helmlite: helm lint or helm template, with the
// flags before the arguments.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := tool(t, "helmlite")
	track(t, chartDir)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// kubeVersion is the Kubernetes version renders target: the one whose API
// schemas kubeconform checks them against.
func kubeVersion() string { return strings.TrimPrefix(kubernetesAPI.version, "v") }

// render runs helm template with a values file ("" for none) and --set
// flags.
func render(t *testing.T, values string, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", "--namespace", namespace, "--kube-version", kubeVersion()}
	if values != "" {
		track(t, values)
		args = append(args, "--values", values)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return helm(t, append(args, release, chartDir)...)
}

func TestChartLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			args := []string{"lint", "--strict", "--kube-version", kubeVersion()}
			if vs.values != "" {
				args = append(args, "--values", vs.values)
			}
			out, err := helm(t, append(args, chartDir)...)
			require.NoError(t, err)
			assert.Contains(t, out, "1 chart(s) linted, 0 chart(s) failed")
		})
	}
}

// TestChartLintCatchesMistakes makes sure the lint is strict: a copy of the
// chart with one mistake fails it, a warning as an error does.
func TestChartLintCatchesMistakes(t *testing.T) {
	chartYAML, err := os.ReadFile(filepath.Join(root, chartDir, "Chart.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(chartYAML), "\nversion: 0.1.0\n")
	tests := []struct{ name, file, content, severity, want string }{
		{
			"error: a version that is not semver", "Chart.yaml",
			strings.Replace(string(chartYAML), "\nversion: 0.1.0\n", "\nversion: one\n", 1),
			"[ERROR]", "version 'one' is not a valid SemVer",
		},
		{
			"warning: an object name Kubernetes refuses", "templates/zz-mistake.yaml",
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Name\n",
			"[WARNING]", "object name does not conform to Kubernetes naming requirements",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mcpgw")
			copyDir(t, filepath.Join(root, chartDir), dir)
			require.NoError(t, os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644))
			out, err := helm(t, "lint", "--strict", "--kube-version", kubeVersion(), dir)
			require.Error(t, err, "lint passed the broken chart: %s", out)
			assert.Contains(t, out, tt.severity)
			assert.Contains(t, out, tt.want)
			assert.Contains(t, err.Error(), "1 chart(s) linted, 1 chart(s) failed")
		})
	}
}

// copyDir copies the files under from into to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	require.NoError(t, err)
}

func TestChartGolden(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, vs.values)
			require.NoError(t, err)
			golden := filepath.Join("testdata", vs.name+".golden.yaml")
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./test/ship -update to create the golden file")
			if string(want) != out {
				t.Errorf("render differs from %s; run go test ./test/ship -update and review the diff:\n%s", golden, firstDifference(string(want), out))
			}
		})
	}
}

// firstDifference shows the first differing line of two texts, with a few
// lines of context: enough to see what changed without printing both.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	var b strings.Builder
	for j := max(0, i-3); j < i; j++ {
		fmt.Fprintf(&b, "  %4d   %s\n", j+1, w[j])
	}
	for j := i; j < min(len(w), i+4); j++ {
		fmt.Fprintf(&b, "- %4d   %s\n", j+1, w[j])
	}
	for j := i; j < min(len(g), i+4); j++ {
		fmt.Fprintf(&b, "+ %4d   %s\n", j+1, g[j])
	}
	return b.String()
}

// kubeconform validates manifests strictly: unknown fields, wrong types
// and duplicate keys are errors, and so is a kind without a schema. Every
// document must come out valid; none may be skipped.
func kubeconform(t *testing.T, manifests string) {
	t.Helper()
	docs := decodeDocs(t, manifests)
	var kinds []gvk
	for _, d := range docs {
		k := gvk{d["apiVersion"].(string), d["kind"].(string)}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	dir := t.TempDir()
	writeSchemas(t, dir, kinds)

	cmd := exec.CommandContext(t.Context(), tool(t, "kubeconform"),
		"-strict", "-summary", "-output", "json",
		"-schema-location", filepath.Join(dir, schemaLocation),
		"-")
	cmd.Stdin = strings.NewReader(manifests)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var report struct {
		Resources []struct {
			Filename, Kind, Name, Status, Msg string
		} `json:"resources"`
		Summary struct {
			Valid, Invalid, Errors, Skipped int
		} `json:"summary"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report), "kubeconform output: %s%s", stdout.String(), stderr.String())
	for _, r := range report.Resources {
		t.Errorf("kubeconform: %s %s: %s: %s", r.Kind, r.Name, r.Status, r.Msg)
	}
	require.NoError(t, runErr, "kubeconform: %s", stderr.String())
	assert.Equal(t, len(docs), report.Summary.Valid, "every document is validated")
	assert.Zero(t, report.Summary.Invalid+report.Summary.Errors+report.Summary.Skipped)
}

func TestChartKubeconform(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, vs.values)
			require.NoError(t, err)
			kubeconform(t, out)
		})
	}
}

// TestChartValueCombinations renders less common values, beyond the golden
// sets, and validates each render.
func TestChartValueCombinations(t *testing.T) {
	tests := []struct {
		name string
		set  []string
	}{
		{"redis password without redis", []string{"redis.auth.secretName=pw"}},
		{"hot reload instead of restarts", []string{"rollOnConfigChange=false"}},
		{"memory autoscaling", []string{"autoscaling.enabled=true", "autoscaling.targetMemoryUtilizationPercentage=80"}},
		{"pdb minAvailable percentage", []string{"podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=50%", "podDisruptionBudget.maxUnavailable="}},
		{"existing service account", []string{"serviceAccount.create=false", "serviceAccount.name=gw"}},
		{"no dashboard", []string{"dashboard.enabled=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := render(t, "", tt.set...)
			require.NoError(t, err)
			kubeconform(t, out)
			parseRender(t, out).loadConfig(t)
		})
	}
}

// TestChartKubeconformCatchesMistakes makes sure the schemas are strict: a
// misspelt field and a wrong type are reported.
func TestChartKubeconformCatchesMistakes(t *testing.T) {
	out, err := render(t, "")
	require.NoError(t, err)
	tests := []struct{ name, from, to, want string }{
		{"unknown field", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "readOnlyRootFileSystem"},
		{"wrong type", "revisionHistoryLimit: 5", "revisionHistoryLimit: five", "revisionHistoryLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, out, tt.from)
			bad := strings.Replace(out, tt.from, tt.to, 1)
			kinds := []gvk{{"apps/v1", "Deployment"}, {"v1", "Service"}, {"v1", "ConfigMap"}, {"v1", "ServiceAccount"}}
			dir := t.TempDir()
			writeSchemas(t, dir, kinds)
			cmd := exec.CommandContext(t.Context(), tool(t, "kubeconform"), "-strict", "-summary",
				"-schema-location", filepath.Join(dir, schemaLocation), "-")
			cmd.Stdin = strings.NewReader(bad)
			msg, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "kubeconform accepted the broken manifest: %s", msg)
			assert.Contains(t, string(msg), tt.want)
		})
	}
}

// TestChartConfigLoads loads the configuration file of each render with
// configs.Parse, in the environment the pod would have: the Deployment's
// env (secret values made up) and the mounted secret files.
func TestChartConfigLoads(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, vs.values)
			require.NoError(t, err)
			r := parseRender(t, out)
			cfg := r.loadConfig(t)

			c := r.container(t, "Deployment", release, "mcpgw")
			port := r.containerPort(t, c, "http")
			assert.Equal(t, ":"+strconv.Itoa(port), cfg.Server.Listen, "server.listen is the container port")

			// terminationGracePeriodSeconds covers the preStop sleep (if
			// any), the shutdown delay and the drain, so the kubelet never
			// kills a draining gateway; the delay lets balancers deregister
			// the pod before anything is refused.
			pod := r.podSpec(t, "Deployment", release)
			grace := time.Duration(num(t, pod["terminationGracePeriodSeconds"])) * time.Second
			var preStop time.Duration
			if _, ok := c["lifecycle"]; ok {
				preStop = time.Duration(num(t, dig(t, c, "lifecycle", "preStop", "sleep", "seconds"))) * time.Second
			}
			assert.Positive(t, cfg.Server.ShutdownDelay, "server.shutdown_delay is set")
			assert.Greater(t, grace, preStop+cfg.Server.ShutdownDelay+cfg.Server.ShutdownTimeout,
				"grace period > preStop + server.shutdown_delay + server.shutdown_timeout")
		})
	}
}

// TestChartPodHardening checks probes and security settings of every
// container the chart renders, the bundled Redis included.
func TestChartPodHardening(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, vs.values)
			require.NoError(t, err)
			r := parseRender(t, out)
			for _, d := range r.docs {
				if d["kind"] != "Deployment" {
					continue
				}
				name := dig(t, d, "metadata", "name").(string)
				pod := r.podSpec(t, "Deployment", name)
				assert.Equal(t, false, pod["automountServiceAccountToken"], "%s: no API token", name)
				psc := pod["securityContext"].(map[string]any)
				assert.Equal(t, true, psc["runAsNonRoot"], name)
				assert.Equal(t, "RuntimeDefault", dig(t, psc, "seccompProfile", "type"), name)
				for _, c := range pod["containers"].([]any) {
					c := c.(map[string]any)
					sc := c["securityContext"].(map[string]any)
					assert.Equal(t, true, sc["readOnlyRootFilesystem"], name)
					assert.Equal(t, false, sc["allowPrivilegeEscalation"], name)
					assert.Equal(t, true, sc["runAsNonRoot"], name)
					assert.Equal(t, []any{"ALL"}, dig(t, sc, "capabilities", "drop"), name)
					assert.Equal(t, "RuntimeDefault", dig(t, sc, "seccompProfile", "type"), name)
					assert.NotNil(t, c["readinessProbe"], name)
					assert.NotNil(t, c["livenessProbe"], name)
				}
			}

			c := r.container(t, "Deployment", release, "mcpgw")
			assert.Equal(t, "/readyz", dig(t, c, "readinessProbe", "httpGet", "path"))
			assert.Equal(t, "/healthz", dig(t, c, "livenessProbe", "httpGet", "path"))
			// The distroless nonroot user, which the image runs as.
			assert.Equal(t, 65532, num(t, dig(t, r.podSpec(t, "Deployment", release), "securityContext", "runAsUser")))
		})
	}
}

// TestChartMetricsPort moves metrics to a separate listener: the pod, the
// Service, the ServiceMonitor and the NetworkPolicy follow.
func TestChartMetricsPort(t *testing.T) {
	tests := []struct {
		name     string
		set      []string
		portName string
		port     int
	}{
		{"main listener", nil, "http", 9190},
		{"separate listener", []string{"metrics.port=9464"}, "metrics", 9464},
		{"same port as the service", []string{"metrics.port=9190"}, "http", 9190},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := append([]string{"serviceMonitor.enabled=true", "networkPolicy.enabled=true", "metrics.path=/metrics"}, tt.set...)
			out, err := render(t, "", set...)
			require.NoError(t, err)
			r := parseRender(t, out)
			sm := r.object(t, "ServiceMonitor", release)
			ep := dig(t, sm, "spec", "endpoints").([]any)[0].(map[string]any)
			assert.Equal(t, tt.portName, ep["port"])
			assert.Equal(t, "/metrics", ep["path"])
			assert.Equal(t, tt.port, r.containerPort(t, r.container(t, "Deployment", release, "mcpgw"), tt.portName))
			var svcPorts []string
			for _, p := range dig(t, r.object(t, "Service", release), "spec", "ports").([]any) {
				p := p.(map[string]any)
				svcPorts = append(svcPorts, fmt.Sprintf("%s:%d", p["name"], num(t, p["port"])))
			}
			assert.Contains(t, svcPorts, fmt.Sprintf("%s:%d", tt.portName, tt.port))
			var npPorts []any
			for _, rule := range dig(t, r.object(t, "NetworkPolicy", release), "spec", "ingress").([]any) {
				for _, p := range rule.(map[string]any)["ports"].([]any) {
					npPorts = append(npPorts, p.(map[string]any)["port"])
				}
			}
			assert.Contains(t, npPorts, tt.portName)
			kubeconform(t, out)
		})
	}
}

// TestChartRefuses checks the values the chart rejects, each with a message
// saying what to do.
func TestChartRefuses(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"listen set in config", []string{"config.server.listen=:8080"}, "config.server.listen is set by the chart from service.port"},
		{"shutdown delay set in config", []string{"config.server.shutdown_delay=10s"}, "config.server.shutdown_delay is set by the chart from drain.shutdownDelaySeconds"},
		{"shutdown timeout set in config", []string{"config.server.shutdown_timeout=10s"}, "config.server.shutdown_timeout is set by the chart from drain.shutdownTimeoutSeconds"},
		{"both redis kinds", []string{"redis.enabled=true", "redis.url=redis://r:6379"}, "redis.enabled and redis.url are exclusive"},
		{"redis url set in config", []string{"redis.url=redis://r:6379", "config.redis.url=redis://other:6379"}, "config.redis.url is set by the chart"},
		{"misspelt value (values.schema.json)", []string{"serviceMonitor.enable=true"}, "additional properties 'enable' not allowed"},
		{"pdb with both bounds", []string{"podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1"}, "set minAvailable or maxUnavailable, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render(t, "", tt.set...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// contractMetrics are the Prometheus metric names of the telemetry
// contract (one per instrument; histograms add _bucket, _sum and _count).
var contractMetrics = []string{
	"mcp_server_operation_duration_seconds",
	"mcp_client_operation_duration_seconds",
	"mcpgw_decisions_total",
	"mcpgw_breaker_state",
	"mcpgw_sessions_active",
	"mcpgw_catalog_items",
	"mcpgw_catalog_version",
	"mcpgw_config_reloads_total",
	"mcpgw_audit_queue_depth",
	"mcpgw_audit_refused_total",
	"mcpgw_killswitches_active",
}

// contractLabels are the labels of those metrics, plus le of histogram
// buckets and namespace, which Prometheus adds when it scrapes a pod.
var contractLabels = []string{
	"mcp_method_name", "gen_ai_tool_name", "mcp_protocol_version", "error_type",
	"upstream", "decision", "state", "kind", "result", "scope", "le", "namespace",
}

// TestDashboard checks that the Grafana dashboard queries only metrics and
// labels of the telemetry contract, and shows what it must.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, chartDir, "files", "dashboard.json"))
	require.NoError(t, err)
	var dash map[string]any
	require.NoError(t, json.Unmarshal(data, &dash))
	assert.Equal(t, "mcpgw-overview", dash["uid"])

	var exprs []string
	ids := map[float64]bool{}
	for _, p := range dash["panels"].([]any) {
		p := p.(map[string]any)
		id := p["id"].(float64)
		assert.False(t, ids[id], "panel id %v is unique", id)
		ids[id] = true
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			exprs = append(exprs, tg.(map[string]any)["expr"].(string))
		}
	}
	require.NotEmpty(t, exprs)

	metricRe := regexp.MustCompile(`\bmcp(?:gw)?_[a-z_]+`)
	byRe := regexp.MustCompile(`\bby \(([^)]*)\)`)
	matcherRe := regexp.MustCompile(`([a-z_]+)\s*(?:=~|!=|=)\s*"[^"]*"`)
	used := map[string]bool{}
	for _, e := range exprs {
		// Label names (in by clauses and matchers) are not metric names.
		bare := matcherRe.ReplaceAllString(byRe.ReplaceAllString(e, ""), "")
		for _, m := range metricRe.FindAllString(bare, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
			if strings.HasSuffix(base, "_seconds") && base != m {
				assert.Contains(t, contractMetrics, base, "%s in %s", m, e)
			} else {
				assert.Contains(t, contractMetrics, m, "%s in %s", m, e)
			}
			used[base] = true
		}
		for _, g := range byRe.FindAllStringSubmatch(e, -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				assert.Contains(t, contractLabels, strings.TrimSpace(l), "label in %s", e)
			}
		}
		for _, g := range matcherRe.FindAllStringSubmatch(e, -1) {
			assert.Contains(t, contractLabels, g[1], "label in %s", e)
		}
	}
	for _, m := range []string{"mcpgw_decisions_total", "mcp_client_operation_duration_seconds", "mcpgw_breaker_state", "mcpgw_killswitches_active"} {
		assert.True(t, used[m], "the dashboard shows %s", m)
	}
	joined := strings.Join(exprs, "\n")
	assert.Contains(t, joined, "histogram_quantile(0.5, sum by (le, upstream)")
	assert.Contains(t, joined, "histogram_quantile(0.99, sum by (le, upstream)")
	assert.Contains(t, joined, "sum by (decision)")

	// The ConfigMap carries the file unchanged, labelled for the sidecar.
	out, err := render(t, "")
	require.NoError(t, err)
	cm := parseRender(t, out).object(t, "ConfigMap", release+"-dashboard")
	assert.Equal(t, "1", dig(t, cm, "metadata", "labels", "grafana_dashboard"))
	assert.JSONEq(t, string(data), dig(t, cm, "data", "mcpgw.json").(string))
}

// rendered is a parsed render.
type rendered struct {
	docs []map[string]any
}

func decodeDocs(t *testing.T, manifests string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(manifests))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err)
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func parseRender(t *testing.T, manifests string) *rendered {
	t.Helper()
	return &rendered{docs: decodeDocs(t, manifests)}
}

func (r *rendered) object(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	for _, d := range r.docs {
		if d["kind"] == kind && dig(t, d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("the render has no %s %s", kind, name)
	return nil
}

func (r *rendered) podSpec(t *testing.T, kind, name string) map[string]any {
	t.Helper()
	return dig(t, r.object(t, kind, name), "spec", "template", "spec").(map[string]any)
}

func (r *rendered) container(t *testing.T, kind, name, container string) map[string]any {
	t.Helper()
	for _, c := range r.podSpec(t, kind, name)["containers"].([]any) {
		if c := c.(map[string]any); c["name"] == container {
			return c
		}
	}
	t.Fatalf("%s %s has no container %s", kind, name, container)
	return nil
}

func (r *rendered) containerPort(t *testing.T, c map[string]any, name string) int {
	t.Helper()
	for _, p := range c["ports"].([]any) {
		if p := p.(map[string]any); p["name"] == name {
			return num(t, p["containerPort"])
		}
	}
	t.Fatalf("container %s has no port %s", c["name"], name)
	return 0
}

// loadConfig parses the gateway's configuration file as the pod would: with
// the container's environment (secret values made up, plain values as
// given) and its secret volumes (files under a temporary directory).
func (r *rendered) loadConfig(t *testing.T) *configs.Config {
	t.Helper()
	text := dig(t, r.object(t, "ConfigMap", release), "data", "mcpgw.yaml").(string)
	c := r.container(t, "Deployment", release, "mcpgw")
	// A 32-byte key in hex: valid as a session key and as any other secret.
	const secret = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	if env, ok := c["env"].([]any); ok {
		for _, e := range env {
			e := e.(map[string]any)
			if v, ok := e["value"].(string); ok {
				t.Setenv(e["name"].(string), v)
			} else {
				t.Setenv(e["name"].(string), secret)
			}
		}
	}
	dir := t.TempDir()
	if mounts, ok := c["volumeMounts"].([]any); ok {
		for _, m := range mounts {
			m := m.(map[string]any)
			if !strings.HasPrefix(m["name"].(string), "secret-") {
				continue
			}
			mp := m["mountPath"].(string)
			local := filepath.Join(dir, m["name"].(string))
			text = strings.ReplaceAll(text, mp+"/", local+"/")
			for _, f := range regexp.MustCompile(regexp.QuoteMeta(local+"/")+`[^\s"']+`).FindAllString(text, -1) {
				require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o700))
				require.NoError(t, os.WriteFile(f, []byte(secret+"\n"), 0o600))
			}
		}
	}
	cfg, err := configs.Parse([]byte(text))
	require.NoError(t, err, "the chart's config does not load:\n%s", strings.Join(configs.Problems(err), "\n"))
	return cfg
}

// dig walks nested maps.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		require.True(t, ok, "no map at %q of %v", k, keys)
		v, ok = m[k]
		require.True(t, ok, "no key %q of %v", k, keys)
	}
	return v
}

func num(t *testing.T, v any) int {
	t.Helper()
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	t.Fatalf("%v is not a number", v)
	return 0
}
