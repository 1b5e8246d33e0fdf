package policy

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
)

// Rules are the configured CEL authorization rules (configs.Rule),
// compiled into programs once, when the configuration loads. The first
// rule whose expression is true decides; a call that no rule matches is
// admitted.
//
// The arguments are an input like no other: decoding them costs the call
// path an allocation per value, so a rule names them only when it needs
// them. Decide first evaluates every rule with the arguments unknown (CEL
// partial evaluation). Most calls are decided there: a rule such as
// `tool.original == "refund" && args.amount > 100` is false for every
// other tool whatever the arguments. Only when the answer depends on them
// does the caller decode the arguments and call Decide again with them.
// The answer without arguments depends on the principal and the tool
// alone, so the gateway caches it.
type Rules struct {
	rules []rule
	args  bool // some rule names the arguments
}

type rule struct {
	name  string
	allow bool
	args  bool // the expression names args
	prg   cel.Program
}

// Verdict is the answer of the rules for one call.
type Verdict struct {
	// Rule names the rule that decided; "" when none matched.
	Rule string
	// Deny is set when the call is refused.
	Deny bool
	// NeedsArgs is set when the answer depends on the arguments, which
	// Decide was not given; nothing else is set then.
	NeedsArgs bool
	// Err is the evaluation error of the deciding rule: an error makes a
	// deny rule refuse (fail closed) and an allow rule not match.
	Err error
}

// Input is what a rule sees of one call (configs.Rule documents the
// variables). Build Principal and Tool with PrincipalVars and ToolVars.
type Input struct {
	Principal map[string]any
	Tool      map[string]any
	Endpoint  string
	// Args are the call's decoded arguments; nil for unknown.
	Args map[string]any
}

// NewRules compiles rules in configs.RuleEnv. It returns nil when there
// are none: a nil *Rules admits every call at no cost.
func NewRules(rules []configs.Rule) (*Rules, error) {
	if len(rules) == 0 {
		return nil, nil //nolint:nilnil // no rules is a valid, free policy.
	}
	env, err := configs.RuleEnv()
	if err != nil {
		return nil, fmt.Errorf("%w: rule environment: %w", ErrInvalidConfig, err)
	}
	rs := &Rules{rules: make([]rule, 0, len(rules))}
	for i := range rules {
		r := &rules[i]
		ast, err := configs.CompileRule(r.When)
		if err != nil {
			return nil, fmt.Errorf("%w: policy.rules[%d].when: %w", ErrInvalidConfig, i, err)
		}
		cr := rule{name: r.Name, allow: r.EffectiveEffect() == configs.RuleAllow, args: namesArgs(ast)}
		opts := []cel.ProgramOption{}
		if cr.args {
			opts = append(opts, cel.EvalOptions(cel.OptPartialEval))
		}
		if cr.prg, err = env.Program(ast, opts...); err != nil {
			return nil, fmt.Errorf("%w: policy.rules[%d].when: %w", ErrInvalidConfig, i, err)
		}
		rs.args = rs.args || cr.args
		rs.rules = append(rs.rules, cr)
	}
	return rs, nil
}

// namesArgs reports whether a checked expression refers to the args
// variable.
func namesArgs(ast *cel.Ast) bool {
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if ref.Name == configs.RuleVarArgs {
			return true
		}
	}
	return false
}

// NamesArgs reports whether some rule refers to the arguments.
func (rs *Rules) NamesArgs() bool { return rs != nil && rs.args }

// Decide evaluates the rules for one call. With in.Args nil the
// arguments are unknown, and the verdict may be NeedsArgs.
func (rs *Rules) Decide(in *Input) Verdict {
	if rs == nil {
		return Verdict{}
	}
	act := in.activation()
	for i := range rs.rules {
		r := &rs.rules[i]
		out, err := r.eval(act, in.Args == nil)
		switch {
		case err != nil && r.allow:
			continue
		case err != nil:
			return Verdict{Rule: r.name, Deny: true, Err: err}
		case out == unknown:
			return Verdict{NeedsArgs: true}
		case out == matched:
			return Verdict{Rule: r.name, Deny: !r.allow}
		}
	}
	return Verdict{}
}

// Visible reports whether the rules may admit some call to the tool:
// whether it belongs in the principal's lists. A rule that depends on the
// arguments is taken to let some arguments through, so only a tool that
// the rules refuse whatever its arguments is hidden.
func (rs *Rules) Visible(in *Input) bool {
	if rs == nil {
		return true
	}
	act := in.activation()
	for i := range rs.rules {
		r := &rs.rules[i]
		out, err := r.eval(act, true)
		switch {
		case err != nil && r.allow:
			continue
		case err != nil:
			return false
		case out == unknown && r.allow:
			return true
		case out == unknown:
			continue // some arguments pass this rule
		case out == matched:
			return r.allow
		}
	}
	return true
}

// outcome is what one rule's expression came to.
type outcome int

const (
	unmatched outcome = iota // false
	matched                  // true
	unknown                  // depends on the unknown arguments
)

// eval evaluates one rule; a rule naming the arguments sees them as
// unknown when unknownArgs is set.
func (r *rule) eval(act map[string]any, unknownArgs bool) (outcome, error) {
	var vars any = act
	if r.args && unknownArgs {
		env, _ := configs.RuleEnv() // built by NewRules
		pv, err := env.PartialVars(act)
		if err != nil {
			return unmatched, err
		}
		vars = pv
	}
	out, _, err := r.prg.Eval(vars)
	switch {
	case err != nil:
		return unmatched, err
	case types.IsUnknown(out):
		return unknown, nil
	case out == types.True:
		return matched, nil
	case out == types.False:
		return unmatched, nil
	default:
		return unmatched, fmt.Errorf("rule %s: evaluates to %s, not bool", r.name, out.Type().TypeName())
	}
}

// activation is the CEL activation of in; args is absent when unknown.
func (in *Input) activation() map[string]any {
	act := map[string]any{
		configs.RuleVarPrincipal: in.Principal,
		configs.RuleVarTool:      in.Tool,
		configs.RuleVarEndpoint:  in.Endpoint,
	}
	if in.Args != nil {
		act[configs.RuleVarArgs] = in.Args
	}
	return act
}

// PrincipalVars is the principal variable of a rule for p; nil p is the
// anonymous principal of a gateway without auth.
func PrincipalVars(p *authn.Principal, anonymous string) map[string]any {
	if p == nil {
		return map[string]any{
			"issuer": "", "subject": anonymous, "client_id": "",
			"scopes": []string{}, "roles": []string{}, "claims": map[string]any{},
		}
	}
	claims := p.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return map[string]any{
		"issuer": p.Issuer, "subject": p.Subject, "client_id": p.ClientID,
		"scopes": nonNil(p.Scopes), "roles": nonNil(p.Roles), "claims": claims,
	}
}

// ToolVars is the tool variable of a rule. annotations may be nil.
func ToolVars(exposed, original, upstream string, annotations map[string]any) map[string]any {
	if annotations == nil {
		annotations = map[string]any{}
	}
	return map[string]any{"name": exposed, "original": original, "upstream": upstream, "annotations": annotations}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
