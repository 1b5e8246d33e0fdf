package configs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite docs/mcpgw.schema.json")

// schemaFile is the schema the examples' modeline names.
const schemaFile = "../docs/mcpgw.schema.json"

// compileSchema compiles the generated schema with an independent
// validator.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := JSONSchema()
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("mcpgw.schema.json", doc))
	s, err := c.Compile("mcpgw.schema.json")
	require.NoError(t, err)
	return s
}

// yamlInstance reads a YAML file as the JSON value editors validate.
func yamlInstance(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	b, err := json.Marshal(jsonable(v))
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return inst
}

// jsonable turns YAML timestamps (an unquoted 2025-06-18) back into text.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
	case time.Time:
		return x.Format(time.DateOnly)
	}
	return v
}

// TestSchemaValidatesExamples: the schema accepts every shipped example,
// which names it in its modeline, and rejects the broken file of the
// validate test; docs/mcpgw.schema.json is current.
func TestSchemaValidatesExamples(t *testing.T) {
	s := compileSchema(t)
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(data), "# yaml-language-server: $schema=../docs/mcpgw.schema.json\n"), "%s carries the modeline", f)
		require.NoError(t, s.Validate(yamlInstance(t, f)), f)
	}
	err = s.Validate(yamlInstance(t, "../cmd/mcpgw/testdata/broken.yaml"))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"listn", "timout", "formt", "allowed_origins", "/log/level"} {
		assert.Contains(t, msg, want)
	}

	raw, err := JSONSchema()
	require.NoError(t, err)
	raw = append(raw, '\n')
	if *updateSchema {
		require.NoError(t, os.WriteFile(schemaFile, raw, 0o644))
	}
	current, err := os.ReadFile(schemaFile)
	require.NoError(t, err, "run make docs")
	assert.Equal(t, string(raw), string(current), "docs/mcpgw.schema.json is stale: make docs")
}
