package configs

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
)

// Rule effects (Rule.Effect).
const (
	// RuleDeny refuses the call when the rule's expression is true.
	RuleDeny = "deny"
	// RuleAllow admits the call when the rule's expression is true, and
	// no later rule is consulted.
	RuleAllow = "allow"
)

// Rule is one authorization rule written in CEL
// (https://cel.dev). Rules are checked in order after the required scopes;
// the first rule whose expression is true decides the call (refused for
// deny, admitted for allow), and a call no rule matches is admitted. The
// same rules filter the lists: a principal never sees a tool that some
// rule refuses it whatever its arguments.
//
// An expression sees four variables:
//
//   - principal: issuer, subject, client_id, scopes (list), roles (list)
//     and claims (the verified token's payload, a map). Without auth the
//     subject is "anonymous" and the rest is empty.
//   - tool: name (as exposed), original (as the upstream names it),
//     upstream, and annotations (the tool's annotations object as the
//     upstream sent it, such as readOnlyHint and destructiveHint; empty
//     when it sent none).
//   - endpoint: the path the call came in on, such as /mcp.
//   - args: the call's arguments object. A rule that names args makes the
//     gateway decode the arguments of the calls it may match; calls that
//     no such rule can match keep the raw fast path.
//
// Optional field syntax is on: tool.annotations.?readOnlyHint.orValue(false)
// reads a hint that may be absent. Reading an absent key without it is an
// evaluation error, which makes a deny rule refuse and an allow rule not
// match (fail closed).
//
//	rules:
//	  - name: support-read-only
//	    when: '"support" in principal.claims.?groups.orValue([]) && !tool.annotations.?readOnlyHint.orValue(false)'
//	  - name: refunds-need-a-human
//	    when: 'tool.original == "refund" && args.amount > 100 && !has(principal.claims.act)'
type Rule struct {
	// Name identifies the rule in the refusal's data and the audit
	// record. Required, unique; letters, digits, '-', '_' and '.'.
	Name string `mapstructure:"name" yaml:"name"`
	// Effect is deny or allow: what a true expression does to the call.
	// Default deny.
	Effect string `mapstructure:"effect" yaml:"effect"`
	// When is the CEL expression, of type bool. It is compiled and
	// type-checked when the configuration loads.
	When string `mapstructure:"when" yaml:"when"`
}

// The variables a rule's expression sees (Rule).
const (
	RuleVarPrincipal = "principal"
	RuleVarTool      = "tool"
	RuleVarEndpoint  = "endpoint"
	RuleVarArgs      = "args"
)

// ruleName is what a rule name may hold.
var ruleName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// RuleEnv is the CEL environment rules are written in: the one
// declaration of the variables a Rule may name. Validate type-checks rules
// in it, and policy compiles them into programs in it. It is built once and
// safe for concurrent use.
var RuleEnv = sync.OnceValues(func() (*cel.Env, error) { //nolint:gochecknoglobals // built once: an environment costs milliseconds to declare.
	obj := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable(RuleVarPrincipal, obj),
		cel.Variable(RuleVarTool, obj),
		cel.Variable(RuleVarEndpoint, cel.StringType),
		cel.Variable(RuleVarArgs, obj),
		cel.OptionalTypes(),
		// Claims and arguments arrive as JSON numbers (doubles):
		// args.amount > 100 must compare a double with an int.
		cel.CrossTypeNumericComparisons(true),
	)
})

// CompileRule parses and type-checks a rule's expression in RuleEnv; the
// expression must be of type bool (or dyn, such as a claim read alone).
func CompileRule(expr string) (*cel.Ast, error) {
	env, err := RuleEnv()
	if err != nil {
		return nil, fmt.Errorf("rule environment: %w", err)
	}
	return compileBool(env, expr)
}

// compileBool parses and type-checks expr in env; it must be of type
// bool (or dyn).
func compileBool(env *cel.Env, expr string) (*cel.Ast, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		// One line per problem, without the source snippet cel-go draws
		// below it, so that each stays one line of `mcpgw validate`.
		msgs := make([]string, 0, len(iss.Errors()))
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	switch t := ast.OutputType(); {
	case t.IsExactType(cel.BoolType), t.IsExactType(cel.DynType):
	default:
		return nil, fmt.Errorf("must be of type bool, not %s", t)
	}
	return ast, nil
}

// rules checks the policy's rules: names, effects, and every expression
// compiled and type-checked.
func (v *validator) rules(rules []Rule) {
	seen := make(map[string]int, len(rules))
	for i, r := range rules {
		p := fmt.Sprintf("policy.rules[%d]", i)
		switch {
		case r.Name == "":
			v.add(p+".name", "required")
		case !ruleName.MatchString(r.Name):
			v.add(p+".name", "%q may hold only letters, digits, '-', '_' and '.'", r.Name)
		default:
			if j, dup := seen[r.Name]; dup {
				v.add(p+".name", "%q is already the name of policy.rules[%d]", r.Name, j)
			}
			seen[r.Name] = i
		}
		switch r.Effect {
		case "", RuleDeny, RuleAllow:
		default:
			v.add(p+".effect", "%q must be deny or allow", r.Effect)
		}
		if r.When == "" {
			v.add(p+".when", "required")
			continue
		}
		if _, err := CompileRule(r.When); err != nil {
			v.add(p+".when", "%v", err)
		}
	}
}

// EffectiveEffect is the rule's effect, deny when unset.
func (r *Rule) EffectiveEffect() string {
	if r.Effect == "" {
		return RuleDeny
	}
	return r.Effect
}
