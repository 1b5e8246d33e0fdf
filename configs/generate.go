package configs

// The configuration reference, docs/configuration.md, is generated from the
// doc comments, types and defaults in this package; make docs runs this.
// A test in internal/tools/configdoc fails when the file is stale.
//go:generate go run ../internal/tools/configdoc -configs . -out ../docs/configuration.md

// The JSON Schema the examples' modeline names, from the same structs; a
// test in this package fails when it is stale.
//go:generate go run ../cmd/mcpgw config schema --out ../docs/mcpgw.schema.json
