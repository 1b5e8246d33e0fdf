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

// kindInfo holds what each Kind needs: its JSON result key, the member that
// identifies an item, and the noun used in problems.
var kindInfo = [numKinds]struct {
	key    string // result key of the list call, also String
	member string // identifying member of one item
	noun   string // singular, for problems
	empty  []byte // encoded result of an empty list
}{
	Tools:             {"tools", "name", "tool", []byte(`{"tools":[]}`)},
	Resources:         {"resources", "uri", "resource", []byte(`{"resources":[]}`)},
	ResourceTemplates: {"resourceTemplates", "uriTemplate", "resource template", []byte(`{"resourceTemplates":[]}`)},
	Prompts:           {"prompts", "name", "prompt", []byte(`{"prompts":[]}`)},
}

// Valid reports whether k is one of the four lists.
func (k Kind) Valid() bool { return k >= 0 && k < numKinds }

// String is the list's key in a list result: "tools", "resources",
// "resourceTemplates" or "prompts".
func (k Kind) String() string {
	if !k.Valid() {
		return "unknown"
	}
	return kindInfo[k].key
}

// noun is the singular used in problems: "tool", "resource template".
func (k Kind) noun() string {
	if !k.Valid() {
		return "item"
	}
	return kindInfo[k].noun
}
