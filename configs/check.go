package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one problem of a checked configuration file, for validate:
// the path of the offending key, its line in the file when known, and
// what is wrong.
type Problem struct {
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as "line 12: upstreams[0].http.url: ...".
func (p Problem) String() string {
	s := p.Message
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Line > 0 {
		s = "line " + strconv.Itoa(p.Line) + ": " + s
	}
	return s
}

// CheckOptions choose how deep Check looks.
type CheckOptions struct {
	// Resolve expands ${NAME} references and MCPGW_* overrides from the
	// environment and reads secrets, as serve does. Without it, Check
	// needs no environment, no secret and no network: it checks the
	// structure, the types, every rule Validate makes and the name
	// lengths, and skips only the values that hold ${NAME} references.
	Resolve bool
}

// Check reports every problem of the configuration file at path in one
// pass, each with its path and line, in schema order. It returns the
// configuration when there is none (with Resolve, as Load would).
func Check(path string, opts CheckOptions) (*Config, []Problem) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []Problem{{Message: fmt.Sprintf("reading config: %v", err)}}
	}
	return CheckBytes(data, opts)
}

// CheckBytes is Check of the file's contents. With problems, the
// configuration it returns is partly filled (nil after a YAML syntax
// error): enough to probe what it names, never to serve.
func CheckBytes(data []byte, opts CheckOptions) (*Config, []Problem) {
	cfg, errs := parse(data, opts.Resolve)
	if len(errs) == 0 {
		return cfg, nil
	}
	lines := lineIndex(data)
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			out = append(out, Problem{Message: e.Error()})
			continue
		}
		out = append(out, Problem{Path: fe.Path, Line: lines.line(fe.Path), Message: fe.Msg})
	}
	return cfg, out
}

// Locate fills in the line of each problem without one, from the
// configuration file at path.
func Locate(path string, problems []Problem) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	l := lineIndex(data)
	for i := range problems {
		if problems[i].Line == 0 && problems[i].Path != "" {
			problems[i].Line = l.line(problems[i].Path)
		}
	}
}

// lines maps paths, spelled as FieldError spells them, to the line of
// their key (or list entry) in the file.
type lines map[string]int

// line returns the line of path, or of its nearest ancestor in the file
// (a missing key is reported where its parent is); 0 when unknown.
func (l lines) line(path string) int {
	for path != "" {
		if n, ok := l[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// lineIndex walks the YAML node tree of data; it is empty when data does
// not parse.
func lineIndex(data []byte) lines {
	l := lines{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return l
	}
	l.walk(doc.Content[0], reflect.TypeFor[Config](), "")
	return l
}

func (l lines) walk(n *yaml.Node, t reflect.Type, path string) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var kp string
			var vt reflect.Type
			switch {
			case t != nil && t.Kind() == reflect.Map:
				kp, vt = path+"["+k.Value+"]", t.Elem()
			default:
				kp = joinPath(path, k.Value)
				if t != nil && t.Kind() == reflect.Struct {
					if f, ok := fieldByKey(t, k.Value); ok {
						vt = f.Type
					}
				}
			}
			l[kp] = k.Line
			l.walk(v, vt, kp)
		}
	case yaml.SequenceNode:
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i, c := range n.Content {
			ip := path + "[" + strconv.Itoa(i) + "]"
			l[ip] = c.Line
			l.walk(c, et, ip)
		}
	case yaml.DocumentNode, yaml.ScalarNode, yaml.AliasNode:
	}
}

// fieldKeys lists the keys of struct type t.
func fieldKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// didYouMean returns `; did you mean "x"?` for the option closest to v
// when it is close enough to be a likely typo, and "" otherwise.
func didYouMean[S ~string](v S, options ...S) string {
	if v == "" {
		return ""
	}
	best, bestD := "", -1
	for _, o := range options {
		d := editDistance(strings.ToLower(string(v)), strings.ToLower(string(o)))
		if bestD < 0 || d < bestD {
			best, bestD = string(o), d
		}
	}
	// A third of the word, at least one edit, at most three.
	if bestD < 0 || bestD > min(max(len(best)/3, 1), 3) {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// neighbours ("wran" is one edit from "warn").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
