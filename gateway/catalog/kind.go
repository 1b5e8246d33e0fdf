package catalog

// Kind names a list: tools, resources, resource templates, prompts.
type Kind int

// The lists of an MCP server.
const (
	Tools Kind = iota
	Resources
	ResourceTemplates
	Prompts
)

// numKinds is the number of valid Kinds; arrays indexed by Kind use it.
const numKinds = 4

// Valid reports whether k is one of the four lists.
func (k Kind) Valid() bool { return k >= 0 && k < numKinds }

// String is the list's key in a list result: "tools", "resources",
// "resourceTemplates" or "prompts".
func (k Kind) String() string {
	switch k {
	case Tools:
		return "tools"
	case Resources:
		return "resources"
	case ResourceTemplates:
		return "resourceTemplates"
	case Prompts:
		return "prompts"
	default:
		return "unknown"
	}
}

// member is the member that identifies one item of a valid k.
func (k Kind) member() string {
	switch k {
	case Resources:
		return "uri"
	case ResourceTemplates:
		return "uriTemplate"
	default:
		return "name"
	}
}

// noun is the singular used in problems: "tool", "resource template".
func (k Kind) noun() string {
	switch k {
	case Tools:
		return "tool"
	case Resources:
		return "resource"
	case ResourceTemplates:
		return "resource template"
	case Prompts:
		return "prompt"
	default:
		return "item"
	}
}

// emptyResult is the encoded result of an empty list of a valid k, such
// as {"tools":[]}. It is built per call: only empty lists and pages past
// the end need it.
func (k Kind) emptyResult() []byte {
	return []byte(`{"` + k.String() + `":[]}`)
}
