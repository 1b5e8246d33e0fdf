// Package catalog merges upstream catalogs into one immutable, versioned
// snapshot: namespacing, filtering, collision checks, resource URI
// rewriting, and pre-encoded list pages. It is pure and imports nothing
// else from mcpgw.
package catalog
