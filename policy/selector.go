package policy

import (
	"fmt"
	"path"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/mcpgw/mcpgw/configs"
)

// Selector chooses the tools of a virtual endpoint (configs.Endpoint): a
// tool is selected when its exposed name matches one of the globs (or
// there are none) and the CEL expression is true of it (or there is
// none). It is compiled once per configuration and consulted when a
// catalog snapshot is built, never per call.
type Selector struct {
	globs []string
	prg   cel.Program // nil without an expression
}

// NewSelector compiles an endpoint's selector; path names it in errors.
func NewSelector(e *configs.Endpoint, where string) (*Selector, error) {
	s := &Selector{globs: e.Tools}
	for i, g := range e.Tools {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Errorf("%w: %s.tools[%d]: %w", ErrInvalidConfig, where, i, err)
		}
	}
	if e.When == "" {
		return s, nil
	}
	ast, err := configs.CompileSelector(e.When)
	if err != nil {
		return nil, fmt.Errorf("%w: %s.when: %w", ErrInvalidConfig, where, err)
	}
	env, err := configs.SelectorEnv()
	if err != nil {
		return nil, fmt.Errorf("%w: selector environment: %w", ErrInvalidConfig, err)
	}
	if s.prg, err = env.Program(ast); err != nil {
		return nil, fmt.Errorf("%w: %s.when: %w", ErrInvalidConfig, where, err)
	}
	return s, nil
}

// Selects reports whether the tool belongs on the endpoint. tool is the
// tool variable (ToolVars); an expression that fails to evaluate, or is
// not a bool, leaves the tool out.
func (s *Selector) Selects(exposed string, tool map[string]any) bool {
	if len(s.globs) > 0 && !matchesAny(s.globs, exposed) {
		return false
	}
	if s.prg == nil {
		return true
	}
	out, _, err := s.prg.Eval(map[string]any{configs.SelectorVarTool: tool})
	return err == nil && out == types.True
}

func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}
