package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// The call path's trust steps: the CEL rules of policy.rules and the
// argument checks against a tool's inputSchema (docs/policy.md).
//
// The rules run in two halves. stepRules, right after the scopes, asks the
// rules with the arguments unknown; the answer depends only on the
// principal, the endpoint and the tool, so it is cached per token, tool
// and catalog version, and a call that no argument rule can match never
// has its arguments decoded. Only when the answer depends on them does
// stepArguments, once the body is read (a header-first call has none
// before), decode the arguments and ask again; it also checks them
// against the tool's compiled schema when the upstream asks for it.

// verdictCacheSize bounds the cached rule verdicts: one per token, tool
// and catalog version.
const verdictCacheSize = 16384

// verdictKey names one cached verdict.
type verdictKey struct {
	version  uint64
	endpoint string
	token    string // the token's hash; "" for the anonymous principal
	tool     string // exposed name
}

// ruleSet is the compiled rules of a runtime and their cache; nil when no
// rule is configured.
type ruleSet struct {
	rules    *policy.Rules
	verdicts *lru.Cache[verdictKey, policy.Verdict]
}

// newRuleSet compiles the configured rules.
func newRuleSet(cfg *configs.Config) (*ruleSet, error) {
	rules, err := policy.NewRules(cfg.Policy.Rules)
	if err != nil || rules == nil {
		return nil, err
	}
	cache, err := lru.New[verdictKey, policy.Verdict](verdictCacheSize)
	if err != nil {
		return nil, fmt.Errorf("rule cache: %w", err)
	}
	return &ruleSet{rules: rules, verdicts: cache}, nil
}

// ruleInput is what the rules see of a call to the exposed tool, without
// its arguments.
func ruleInput(snap *catalog.Snapshot, p *authn.Principal, endpoint, exposed string, route catalog.Route) *policy.Input {
	var ann map[string]any
	if raw, ok := snap.ToolObject(exposed); ok {
		if a := rawjson.Member(raw, "annotations"); len(a) > 0 {
			_ = json.Unmarshal(a, &ann) // a malformed annotations object reads as none
		}
	}
	return &policy.Input{
		Principal: policy.PrincipalVars(p, anonymous),
		Tool:      policy.ToolVars(exposed, route.Name, route.Upstream, ann),
		Endpoint:  endpoint,
	}
}

// checkRules is stepRules: the rules' verdict without the arguments.
func (c *call) checkRules() *rpcError {
	rs := c.rt.rules
	if rs == nil {
		return nil
	}
	p, _ := authn.PrincipalFrom(c.r.Context())
	key := verdictKey{version: c.snap.Version(), endpoint: c.r.URL.Path, tool: c.t.name}
	cacheable := p == nil || p.TokenHash != ""
	if p != nil {
		key.token = p.TokenHash
	}
	v, ok := policy.Verdict{}, false
	if cacheable {
		v, ok = rs.verdicts.Get(key)
	}
	if !ok {
		v = rs.rules.Decide(c.ruleInput(p))
		if cacheable {
			rs.verdicts.Add(key, v)
		}
	}
	if v.NeedsArgs {
		c.needArgs = true
		return nil
	}
	return c.ruleDenial(v)
}

// ruleInput is what the rules see of this call, without its arguments.
func (c *call) ruleInput(p *authn.Principal) *policy.Input {
	route := catalog.Route{Upstream: c.t.upstream, Name: c.t.original, Hints: c.t.hints}
	return ruleInput(c.snap, p, c.r.URL.Path, c.t.name, route)
}

// ruleDenial refuses a call a rule denies, naming the rule.
func (c *call) ruleDenial(v policy.Verdict) *rpcError {
	if !v.Deny {
		return nil
	}
	c.rec.Decision, c.rec.Rule = audit.DecisionDenied, "rule:"+v.Rule
	data := map[string]any{"rule": v.Rule, "tool": c.t.name, "upstream": c.t.upstream}
	msg := "tool " + strconv.Quote(c.t.name) + " is refused by policy rule " + strconv.Quote(v.Rule)
	if v.Err != nil {
		data["error"] = v.Err.Error()
		msg += " (the rule failed to evaluate, which refuses)"
	}
	return newRPCError(mcpwire.CodePolicyDenied, msg, data)
}

// checkArguments is stepArguments: the rules that need the arguments, and
// the tool's input schema when the upstream checks arguments. It runs
// once the body is read and decodes the arguments at most once.
func (c *call) checkArguments() *rpcError {
	schema := c.rt.schemas.Load().lookup(c.t.name)
	if !c.needArgs && schema == nil {
		return nil
	}
	var args any = map[string]any{}
	if raw := rawjson.Member(c.t.params, "arguments"); len(raw) > 0 && !rawjson.IsNull(raw) {
		// The body was validated (no duplicate members at any depth), so
		// decoding it cannot read a different value than the upstream.
		if err := json.Unmarshal(raw, &args); err != nil {
			return c.invalidArguments("arguments: "+err.Error(), nil)
		}
	}
	// The schema first: rules are written for arguments of the right
	// shape.
	if schema != nil {
		if err := schema.Validate(args); err != nil {
			return c.schemaRefusal(err)
		}
	}
	if !c.needArgs {
		return nil
	}
	obj, _ := args.(map[string]any)
	if obj == nil {
		obj = map[string]any{}
	}
	in := c.ruleInput(principalOf(c))
	in.Args = obj
	return c.ruleDenial(c.rt.rules.rules.Decide(in))
}

// principalOf is the call's principal; nil without one.
func principalOf(c *call) *authn.Principal {
	p, _ := authn.PrincipalFrom(c.r.Context())
	return p
}

// schemaRefusal refuses arguments that do not conform to the tool's
// inputSchema: invalid params, as the MCP spec has servers answer
// arguments that fail validation (server/tools, "Error Handling"), with
// each error's JSON pointer into the arguments.
func (c *call) schemaRefusal(err error) *rpcError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return c.invalidArguments(err.Error(), nil)
	}
	var problems []map[string]string
	first := ""
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		problems = append(problems, map[string]string{"path": loc, "error": u.Error.String()})
		if first == "" {
			first = loc + ": " + u.Error.String()
		}
	}
	return c.invalidArguments(first, problems)
}

// invalidArguments refuses the call's arguments as invalid params.
func (c *call) invalidArguments(why string, problems []map[string]string) *rpcError {
	c.rec.Decision, c.rec.Rule = audit.DecisionInvalid, "schema:"+why
	data := map[string]any{"tool": c.t.name, "upstream": c.t.upstream}
	if problems != nil {
		data["errors"] = problems
	}
	return newRPCError(mcpwire.CodeInvalidParams, "invalid arguments for tool "+strconv.Quote(c.t.name)+": "+why, data)
}

// argSchemas are the compiled input schemas of the tools whose arguments
// are checked, by exposed name, for one catalog snapshot.
type argSchemas struct {
	byTool map[string]*jsonschema.Schema
}

// lookup returns the schema of an exposed tool; nil when its arguments
// are not checked.
func (s *argSchemas) lookup(exposed string) *jsonschema.Schema {
	if s == nil {
		return nil
	}
	return s.byTool[exposed]
}

// compileSchemas compiles the input schema of every tool of snap whose
// upstream checks its arguments. It runs when a snapshot is published,
// never per call. A schema that does not compile is logged and leaves its
// tool unchecked: the upstream still validates its own arguments.
func (rt *runtime) compileSchemas(snap *catalog.Snapshot) {
	var out *argSchemas
	for _, exposed := range snap.Names(catalog.Tools) {
		route, _ := snap.Tool(exposed)
		globs := rt.upCfg[route.Upstream].CheckArguments
		if !matchesAny(globs, route.Name) {
			continue
		}
		raw, _ := snap.ToolObject(exposed)
		sch, err := compileSchema(rawjson.Member(raw, "inputSchema"))
		if err != nil {
			rt.log.Warn("input schema does not compile; arguments unchecked", slog.String("upstream", route.Upstream),
				slog.String("tool", route.Name), slog.Any("error", err))
			continue
		}
		if out == nil {
			out = &argSchemas{byTool: make(map[string]*jsonschema.Schema)}
		}
		out.byTool[exposed] = sch
	}
	rt.schemas.Store(out)
}

// compileSchema compiles one inputSchema. It never loads anything: a $ref
// to another document fails to compile rather than reach a file or the
// network on an upstream's say-so.
func compileSchema(raw []byte) (*jsonschema.Schema, error) {
	if len(raw) == 0 {
		return nil, errors.New("no inputSchema")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	// Tools' schemas default to JSON Schema 2020-12 (MCP 2025-11-25,
	// server/tools, "JSON Schema Usage").
	c.DefaultDraft(jsonschema.Draft2020)
	const loc = "mcpgw:///inputSchema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

// noLoader refuses to load any schema document.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %s: schemas are not loaded from outside the tool's inputSchema", url)
}

// matchesAny reports whether name matches one of the path.Match globs.
func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
