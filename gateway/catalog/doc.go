// Package catalog merges upstream catalogs into one immutable, versioned
// snapshot: namespacing, filtering, collision checks, resource URI
// rewriting, and pre-encoded list pages. It is pure and imports nothing
// else from mcpgw.
//
// Build is the one function that owns the naming scheme; it runs when a
// catalog changes. The Snapshot it returns serves the hot path with map
// lookups and pre-encoded bytes that do not allocate, and items reach hosts
// byte for byte as their upstream sent them, except for the one value that
// names them.
package catalog
