package configs

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
)

// Endpoint is a virtual endpoint: a second MCP server on its own path,
// such as /mcp/support, serving a curated subset of the merged catalog
// with its own required scopes and instructions. It is a complete MCP
// server in both protocol eras, and an OAuth protected resource of its
// own: its resource URI is auth.resource's scheme and host with the
// endpoint's path, its RFC 9728 metadata is served at
// /.well-known/oauth-protected-resource followed by that path, and tokens
// presented to it must name that resource in aud (docs/policy.md,
// "Virtual endpoints").
//
// A tool is on the endpoint when its exposed name matches one of tools
// (or tools is empty) and when is true of it (or when is empty); at
// least one of the two is required. Resources, resource templates and
// prompts are served whole, as on /mcp. Kill switches, drains, rate
// limits, policy rules and the audit stream apply on every endpoint
// alike.
//
//	endpoints:
//	  - path: /mcp/support
//	    tools: ["customers__*", "orders__get_*"]
//	    required_scopes: [support]
//	    instructions: Read-only tools for the support desk.
//	  - path: /mcp/readonly
//	    when: 'tool.annotations.?readOnlyHint.orValue(false)'
type Endpoint struct {
	// Path is where the endpoint is served, such as /mcp/support: '/'
	// and segments of letters, digits, '-', '_', '.' and '~'. Required,
	// unique, and neither server.mcp_path nor a path the gateway serves
	// itself (/, /admin…, /metrics, /healthz, /readyz, /.well-known…).
	Path string `mapstructure:"path" yaml:"path"`
	// Tools are path.Match globs over exposed tool names (after the
	// upstream's prefix): a tool matching any of them is selected.
	Tools []string `mapstructure:"tools" yaml:"tools,omitempty"`
	// When is a CEL expression of type bool over the variable tool (name,
	// original, upstream, annotations; as in policy.rules) that selects
	// tools. It is evaluated when the catalog loads, never per call; an
	// evaluation error leaves the tool out.
	When string `mapstructure:"when" yaml:"when,omitempty"`
	// RequiredScopes are needed for any access to this endpoint, in place
	// of auth.required_scopes. A token without them gets 403 with an
	// insufficient_scope challenge. Needs auth. Default none.
	RequiredScopes []string `mapstructure:"required_scopes" yaml:"required_scopes,omitempty"`
	// Instructions are the endpoint's instructions to the model, in the
	// initialize and server/discover results. Default: the gateway's
	// description of its merged catalog.
	Instructions string `mapstructure:"instructions" yaml:"instructions,omitempty"`
}

// SelectorVarTool is the one variable an Endpoint.When expression sees.
const SelectorVarTool = "tool"

// endpointPath is what an endpoint path may be.
var endpointPath = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// reservedPaths are served by the gateway itself; an endpoint may be
// neither one of them nor under one ending in '/'.
var reservedPaths = [...]string{"/admin", "/admin/", "/.well-known/", "/metrics", "/healthz", "/readyz"} //nolint:gochecknoglobals // read-only.

// SelectorEnv is the CEL environment of Endpoint.When: the tool variable
// of policy.rules alone, since an endpoint's tools are chosen when the
// catalog loads, before any principal or arguments exist. Built once and
// safe for concurrent use.
var SelectorEnv = sync.OnceValues(func() (*cel.Env, error) { //nolint:gochecknoglobals // built once: an environment costs milliseconds to declare.
	return cel.NewEnv(
		cel.Variable(SelectorVarTool, cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
	)
})

// CompileSelector parses and type-checks an Endpoint.When expression in
// SelectorEnv; it must be of type bool (or dyn).
func CompileSelector(expr string) (*cel.Ast, error) {
	env, err := SelectorEnv()
	if err != nil {
		return nil, fmt.Errorf("selector environment: %w", err)
	}
	return compileBool(env, expr)
}

// endpoints checks the virtual endpoints: paths, selectors, and scopes
// only with auth.
func (v *validator) endpoints(c *Config) {
	seen := make(map[string]int, len(c.Endpoints))
	for i := range c.Endpoints {
		e := &c.Endpoints[i]
		p := fmt.Sprintf("endpoints[%d]", i)
		v.endpointPath(p+".path", e.Path, c.Server.MCPPath, seen, i)
		if len(e.Tools) == 0 && e.When == "" {
			v.add(p, "tools or when is required: an endpoint selects its tools (tools: [\"*\"] selects all)")
		}
		for j, g := range e.Tools {
			if _, err := path.Match(g, ""); err != nil || g == "" {
				v.add(fmt.Sprintf("%s.tools[%d]", p, j), "%q is not a glob: %v", g, errOr(err, "empty"))
			}
		}
		if e.When != "" {
			if _, err := CompileSelector(e.When); err != nil {
				v.add(p+".when", "%v", err)
			}
		}
		if len(e.RequiredScopes) > 0 && c.Auth == nil {
			v.add(p+".required_scopes", "needs auth")
		}
		for j, s := range e.RequiredScopes {
			if s == "" || strings.ContainsAny(s, " \"\\") {
				v.add(fmt.Sprintf("%s.required_scopes[%d]", p, j), "%q is not a scope", s)
			}
		}
	}
}

// endpointPath checks one endpoint's path.
func (v *validator) endpointPath(p, ep, mcpPath string, seen map[string]int, i int) {
	switch {
	case ep == "":
		v.add(p, "required")
		return
	case !endpointPath.MatchString(ep) || path.Clean(ep) != ep:
		v.add(p, "%q must be '/' and segments of letters, digits, '-', '_', '.' and '~', without a trailing '/'", ep)
		return
	case ep == mcpPath:
		v.add(p, "%q is server.mcp_path", ep)
		return
	}
	for _, r := range reservedPaths {
		if ep == strings.TrimSuffix(r, "/") || (strings.HasSuffix(r, "/") && strings.HasPrefix(ep, r)) {
			v.add(p, "%q clashes with %s, which the gateway serves itself", ep, r)
			return
		}
	}
	if j, dup := seen[ep]; dup {
		v.add(p, "%q is already the path of endpoints[%d]", ep, j)
		return
	}
	seen[ep] = i
}

// errOr is err's text, or alt when err is nil.
func errOr(err error, alt string) string {
	if err == nil {
		return alt
	}
	return err.Error()
}
