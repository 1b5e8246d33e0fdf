// Command helmlite runs the two helm commands test/ship needs, helm lint
// and helm template, on helm's own packages: the chart loader, the template
// engine, the values coalescing and schema validation of chartutil, the
// manifest sorting of releaseutil and the linter of pkg/lint. The helm CLI
// is those packages plus a Kubernetes client, an OCI registry client and a
// plugin system, which a chart check never uses and which took most of its
// cold build (about 330 CPU-seconds, against about 150 for this command).
//
// What it does is what helm v3's cmd/helm and pkg/action do for a local
// chart directory without a cluster; the golden renders in test/ship were
// written by the helm CLI and are compared byte for byte:
//
//	helmlite lint [--strict] [--kube-version V] [--values F]... CHART
//	helmlite template [--namespace NS] [--kube-version V] [--values F]... [--set K=V]... NAME CHART
//
// Flags come before the arguments, as the standard flag package parses
// them.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		// helm's own error format.
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// options are the flags both commands share.
type options struct {
	kubeVersion string
	namespace   string
	values      list
	set         list
	strict      bool
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: helmlite lint|template [flags] args")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("helmlite "+cmd, flag.ContinueOnError)
	var o options
	fs.StringVar(&o.kubeVersion, "kube-version", "", "the Kubernetes version the chart is checked or rendered for")
	// helm's default namespace when no kubeconfig names one.
	fs.StringVar(&o.namespace, "namespace", "default", "the release namespace")
	fs.Var(&o.values, "values", "a values file (repeatable)")
	switch cmd {
	case "lint":
		fs.BoolVar(&o.strict, "strict", false, "fail on warnings too")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("lint takes one chart directory")
		}
		return lintChart(out, fs.Arg(0), &o)
	case "template":
		fs.Var(&o.set, "set", "a value as helm --set takes it (repeatable)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return errors.New("template takes a release name and a chart directory")
		}
		return template(out, fs.Arg(0), fs.Arg(1), &o)
	default:
		return fmt.Errorf("unknown command %q: lint or template", cmd)
	}
}

// kubeVersion parses --kube-version as helm does; nil means helm's default.
func (o *options) kube() (*chartutil.KubeVersion, error) {
	if o.kubeVersion == "" {
		return nil, nil //nolint:nilnil // no version given: the caller keeps helm's default.
	}
	kv, err := chartutil.ParseKubeVersion(o.kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid kube version '%s': %w", o.kubeVersion, err)
	}
	return kv, nil
}

// mergeValues is pkg/cli/values.Options.MergeValues for local files and
// --set: each file merged over the previous ones, then each --set.
func (o *options) mergeValues() (map[string]any, error) {
	base := map[string]any{}
	for _, f := range o.values {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m := map[string]any{}
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", f, err)
		}
		base = mergeMaps(base, m)
	}
	for _, s := range o.set {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("failed parsing --set data: %w", err)
		}
	}
	return base, nil
}

// mergeMaps merges b over a, map values recursively, as helm does.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if v, ok := v.(map[string]any); ok {
			if bv, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(bv, v)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// lintChart is helm lint for one chart directory: pkg/action.Lint and
// cmd/helm's output. With --strict a warning fails it as an error does.
func lintChart(out io.Writer, dir string, o *options) error {
	kv, err := o.kube()
	if err != nil {
		return err
	}
	vals, err := o.mergeValues()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path.Join(dir, "Chart.yaml")); err != nil {
		return fmt.Errorf("unable to check Chart.yaml file in chart: %w", err)
	}
	tolerance := support.ErrorSev
	if o.strict {
		tolerance = support.WarningSev
	}
	linter := lint.AllWithKubeVersionAndSchemaValidation(dir, vals, o.namespace, kv, false)
	failed := 0
	fmt.Fprintf(out, "==> Linting %s\n", dir)
	for _, msg := range linter.Messages {
		fmt.Fprintf(out, "%s\n", msg)
		if msg.Severity >= tolerance {
			failed = 1
		}
	}
	fmt.Fprint(out, "\n")
	summary := fmt.Sprintf("1 chart(s) linted, %d chart(s) failed", failed)
	if failed > 0 {
		return errors.New(summary)
	}
	fmt.Fprintln(out, summary)
	return nil
}

// template is helm template for a chart directory: pkg/action.Install in
// client-only dry-run mode (its renderResources) and cmd/helm's output.
func template(out io.Writer, name, dir string, o *options) error {
	kv, err := o.kube()
	if err != nil {
		return err
	}
	vals, err := o.mergeValues()
	if err != nil {
		return err
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return err
	}
	if err := checkInstallable(ch); err != nil {
		return err
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if kv != nil {
		caps.KubeVersion = *kv
	}
	if ch.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", ch.Metadata.KubeVersion, caps.KubeVersion.String())
	}
	opts := chartutil.ReleaseOptions{Name: name, Namespace: o.namespace, Revision: 1, IsInstall: true}
	toRender, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, opts, caps, false)
	if err != nil {
		return err
	}
	var e engine.Engine
	files, err := e.Render(ch, toRender)
	if err != nil {
		return err
	}
	// NOTES.txt is not a manifest.
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return err
	}
	var doc bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&doc, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	var b bytes.Buffer
	fmt.Fprintln(&b, strings.TrimSpace(doc.String()))
	for _, h := range hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	_, err = out.Write(b.Bytes())
	return err
}

// checkInstallable refuses what helm install refuses: a library chart, and
// a chart with dependencies, which this command does not fetch.
func checkInstallable(ch *chart.Chart) error {
	if t := ch.Metadata.Type; t != "" && t != "application" {
		return fmt.Errorf("%s charts are not installable", t)
	}
	if len(ch.Metadata.Dependencies) > 0 {
		return errors.New("charts with dependencies are not supported by helmlite")
	}
	return nil
}
