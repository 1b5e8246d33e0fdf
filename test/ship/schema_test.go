package ship_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// kubeconform checks manifests against JSON schemas, which it normally
// downloads from GitHub (yannh/kubernetes-json-schema). Here they are built
// from the sources of truth, fetched through the Go module proxy and checked
// against the checksum database like any module:
//
//   - the OpenAPI document of the Kubernetes API, api/openapi-spec/swagger.json
//     in the k8s.io/kubernetes module;
//   - the ServiceMonitor CRD of the Prometheus operator.
//
// The conversion is the one openapi2jsonschema (which produced
// kubernetes-json-schema) does for its "standalone-strict" flavour: every
// schema with properties refuses other properties, and the int-or-string
// format becomes a oneOf.

// A pinned module and the hash go.sum would record for it.
type pinnedModule struct {
	path, version, sum string
}

var (
	// kubernetesAPI is the Kubernetes release whose API the chart is checked
	// against.
	kubernetesAPI = pinnedModule{"k8s.io/kubernetes", "v1.37.0", "h1:TDSD+Izz9inqs7SmtJCAu7L5/DuYW9hAZ3GBdF6Ddkw="}
	// prometheusOperator provides the ServiceMonitor CRD.
	prometheusOperator = pinnedModule{"github.com/prometheus-operator/prometheus-operator", "v0.85.0", "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="}
)

// download fetches m into the module cache and returns its directory. It
// runs outside any module, so nothing is added to a go.mod.
func download(t *testing.T, m pinnedModule) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "download", "-json", m.path+"@"+m.version)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	require.NoError(t, err, "go mod download %s@%s: %s", m.path, m.version, stderrOf(err))
	var info struct{ Dir, Sum, Error string }
	require.NoError(t, json.Unmarshal(out, &info))
	require.Empty(t, info.Error)
	require.Equal(t, m.sum, info.Sum, "checksum of %s@%s", m.path, m.version)
	return info.Dir
}

// schemaFile is the file kubeconform looks up for a resource with the
// location template schemaLocation: the kind, the first label of the API
// group and the version, lowercase (deployment-apps-v1.json,
// service-v1.json), as kubeconform's registry names them.
func schemaFile(apiVersion, kind string) string {
	group, version, found := strings.Cut(apiVersion, "/")
	if !found {
		return strings.ToLower(kind) + "-" + strings.ToLower(apiVersion) + ".json"
	}
	group, _, _ = strings.Cut(group, ".")
	return strings.ToLower(kind) + "-" + strings.ToLower(group) + "-" + strings.ToLower(version) + ".json"
}

const schemaLocation = "{{ .ResourceKind }}{{ .KindSuffix }}.json"

type gvk struct{ apiVersion, kind string }

// quantity is the definition of resource quantities (requests, limits).
const quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"

// writeSchemas writes a strict, standalone JSON schema into dir for each
// kind in kinds, and fails when one is unknown.
func writeSchemas(t *testing.T, dir string, kinds []gvk) {
	t.Helper()
	var defs map[string]any
	var crd map[string]any
	for _, k := range kinds {
		var schema map[string]any
		if k.apiVersion == "monitoring.coreos.com/v1" {
			if crd == nil {
				crd = readJSON(t, filepath.Join(download(t, prometheusOperator), "jsonnet", "prometheus-operator", "servicemonitors-crd.json"))
			}
			schema = crdSchema(t, crd, k)
		} else {
			if defs == nil {
				swagger := readJSON(t, filepath.Join(download(t, kubernetesAPI), "api", "openapi-spec", "swagger.json"))
				defs = swagger["definitions"].(map[string]any)
			}
			schema = apiSchema(t, defs, k)
		}
		data, err := json.Marshal(schema)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, schemaFile(k.apiVersion, k.kind)), data, 0o644))
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(data, &v))
	return v
}

// apiSchema finds the definition of k in the Kubernetes OpenAPI document by
// its x-kubernetes-group-version-kind and returns it with the definitions
// it references, transformed.
func apiSchema(t *testing.T, defs map[string]any, k gvk) map[string]any {
	t.Helper()
	group, version, found := strings.Cut(k.apiVersion, "/")
	if !found {
		group, version = "", k.apiVersion
	}
	var root string
	for _, name := range sortedKeys(defs) {
		d := defs[name].(map[string]any)
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			if g["group"] == group && g["version"] == version && g["kind"] == k.kind {
				root = name
			}
		}
	}
	require.NotEmpty(t, root, "Kubernetes %s has no kind %s in %s", kubernetesAPI.version, k.kind, k.apiVersion)

	// Collect the definitions reachable from root.
	reach := map[string]any{}
	var visit func(v any)
	visit = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/definitions/")
				if _, seen := reach[name]; !seen {
					d, ok := defs[name]
					require.True(t, ok, "dangling $ref %s", ref)
					reach[name] = d
					visit(d)
				}
			}
			for _, e := range v {
				visit(e)
			}
		case []any:
			for _, e := range v {
				visit(e)
			}
		}
	}
	reach[root] = defs[root]
	visit(defs[root])

	out := map[string]any{"$ref": "#/definitions/" + root, "definitions": map[string]any{}}
	for name, d := range reach {
		if name == quantity {
			// Typed string in the OpenAPI document, but the API server
			// also accepts a JSON number (resource.Quantity.UnmarshalJSON).
			d = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		}
		out["definitions"].(map[string]any)[name] = strictSchema(d)
	}
	return out
}

// crdSchema returns the openAPIV3Schema of the served version of a CRD.
func crdSchema(t *testing.T, crd map[string]any, k gvk) map[string]any {
	t.Helper()
	spec := crd["spec"].(map[string]any)
	group := spec["group"].(string)
	kind := spec["names"].(map[string]any)["kind"].(string)
	for _, v := range spec["versions"].([]any) {
		v := v.(map[string]any)
		if group+"/"+v["name"].(string) == k.apiVersion && kind == k.kind {
			s := v["schema"].(map[string]any)["openAPIV3Schema"]
			return strictSchema(s).(map[string]any)
		}
	}
	t.Fatalf("the CRD %s has no version %s", kind, k.apiVersion)
	return nil
}

// strictSchema returns a copy of the schema s with the transformations of
// openapi2jsonschema's strict flavour. It walks the schema by its keywords,
// so a property that happens to be called "properties" or "format" is left
// alone.
func strictSchema(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	out := make(map[string]any, len(m)+1)
	maps.Copy(out, m)
	if out["format"] == "int-or-string" || out["x-kubernetes-int-or-string"] == true {
		desc := out["description"]
		out = map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		if desc != nil {
			out["description"] = desc
		}
		return out
	}
	if props, ok := out["properties"].(map[string]any); ok {
		np := make(map[string]any, len(props))
		for k, v := range props {
			np[k] = strictSchema(v)
		}
		out["properties"] = np
		if _, set := out["additionalProperties"]; !set && out["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
	}
	if ap, ok := out["additionalProperties"].(map[string]any); ok {
		out["additionalProperties"] = strictSchema(ap)
	}
	if items, ok := out["items"]; ok {
		out["items"] = strictSchema(items)
	}
	for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := out[kw].([]any); ok {
			nl := make([]any, len(list))
			for i, e := range list {
				nl[i] = strictSchema(e)
			}
			out[kw] = nl
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return fmt.Sprint(err)
}
