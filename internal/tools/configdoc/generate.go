package main

import (
	"bytes"
	"encoding"
	"fmt"
	"go/ast"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/printer"
	"go/token"
	"html"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/configs"
)

// configsPath is the import path of the package documented.
const configsPath = "github.com/mcpgw/mcpgw/configs"

// Generate returns the configuration reference for the configs package
// whose source is in dir, with the annotated example at examplePath
// embedded.
func Generate(dir, examplePath string) ([]byte, error) {
	src, err := parseSource(dir)
	if err != nil {
		return nil, err
	}
	example, err := os.ReadFile(examplePath)
	if err != nil {
		return nil, fmt.Errorf("reading the example: %w", err)
	}
	s := newSchema(reflect.TypeFor[configs.Config](), func(v any) {
		if c, ok := v.(*configs.Config); ok {
			c.SetDefaults()
		}
	})
	if err := s.fillDefaults(); err != nil {
		return nil, err
	}
	if missing := s.undocumented(src); len(missing) > 0 {
		return nil, fmt.Errorf("no doc comment on %s: every configuration field and type is documented", strings.Join(missing, ", "))
	}
	return render(s, src, example), nil
}

// source is the parsed configs package: documentation of its types, fields
// and typed constants.
type source struct {
	pkg *doc.Package
	// types maps a type name to its documentation.
	types map[string]*doc.Type
	// fields maps a struct type name and a field name to its doc comment.
	fields map[string]map[string]string
	// fset positions the AST, for printing constant values.
	fset *token.FileSet
}

// parseSource reads the non-test Go files of dir.
func parseSource(dir string) (*source, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parsing the configs source: %w", err)
		}
		if f.Name.Name != "configs" {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files of package configs in %s", dir)
	}
	pkg, err := doc.NewFromFiles(fset, files, configsPath, doc.PreserveAST)
	if err != nil {
		return nil, fmt.Errorf("reading the configs docs: %w", err)
	}

	src := &source{pkg: pkg, types: map[string]*doc.Type{}, fields: map[string]map[string]string{}, fset: fset}
	for _, t := range pkg.Types {
		src.types[t.Name] = t
		if docs := fieldDocs(t); docs != nil {
			src.fields[t.Name] = docs
		}
	}
	return src, nil
}

// fieldDocs maps the field names of a struct type to their doc comments
// (or line comments); nil for other types.
func fieldDocs(t *doc.Type) map[string]string {
	for _, spec := range t.Decl.Specs {
		ts, ok := spec.(*ast.TypeSpec)
		if !ok || ts.Name.Name != t.Name {
			continue
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return nil
		}
		docs := map[string]string{}
		for _, f := range st.Fields.List {
			text := f.Doc.Text()
			if text == "" {
				text = f.Comment.Text()
			}
			for _, n := range f.Names {
				docs[n.Name] = text
			}
			if len(f.Names) == 0 { // Embedded: named by its type.
				docs[embeddedName(f.Type)] = text
			}
		}
		return docs
	}
	return nil
}

// embeddedName is the field name of an embedded type expression.
func embeddedName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return embeddedName(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.Ident:
		return e.Name
	default:
		return ""
	}
}

// schema is what reflection finds from configs.Config down: one section per
// configs type that a field holds, in the order a depth-first walk first
// meets them.
type schema struct {
	root reflect.Type
	// setDefaults fills in the defaults of a *root.
	setDefaults func(any)
	order       []*section
	sections    map[reflect.Type]*section
}

// section documents one configs type: a struct with fields, or a named
// scalar type with its values.
type section struct {
	typ reflect.Type
	// paths are the YAML paths where the type appears.
	paths []string
	// steps reach the first of them from a Config, for reading defaults.
	steps []step
	// fields are a struct's keys, in declaration order.
	fields []*field
}

// field is one YAML key of a struct.
type field struct {
	key string
	// goName and owner find the doc comment: the field name and the type
	// that declares it (not the same as the section's type for squashed
	// embedded structs).
	goName, owner string
	index         []int
	typ           reflect.Type
	// def is the default, rendered; empty means none.
	def string
}

// step is one move from a value towards a nested struct: into a field
// (index) or into the element of a pointer, slice or map (elem).
type step struct {
	index []int
	elem  bool
}

// newSchema walks the struct type root: every named type of root's package
// that a field holds, directly or through pointers, lists and maps, gets a
// section.
func newSchema(root reflect.Type, setDefaults func(any)) *schema {
	s := &schema{root: root, setDefaults: setDefaults, sections: map[reflect.Type]*section{}}
	s.walk(root, "", nil, map[reflect.Type]bool{})
	return s
}

// walk records the struct type t at path and everything below it. onPath
// guards against recursive types.
func (s *schema) walk(t reflect.Type, path string, steps []step, onPath map[reflect.Type]bool) {
	sec := s.section(t, path, steps)
	if isScalar(t) || onPath[t] {
		return
	}
	onPath[t] = true
	defer delete(onPath, t)

	first := len(sec.fields) == 0
	for _, f := range structFields(t, nil, t.Name()) {
		if first {
			sec.fields = append(sec.fields, f)
		}
		var suffix strings.Builder // [] per list, .<name> per map on the way.
		childSteps := append(append([]step(nil), steps...), step{index: f.index})
		ft := f.typ
		for {
			switch ft.Kind() {
			case reflect.Pointer:
				childSteps = append(childSteps, step{elem: true})
				ft = ft.Elem()
				continue
			case reflect.Slice, reflect.Array:
				if ft.Elem().Kind() == reflect.Uint8 {
					break // Bytes are a scalar.
				}
				childSteps = append(childSteps, step{elem: true})
				suffix.WriteString("[]")
				ft = ft.Elem()
				continue
			case reflect.Map:
				childSteps = append(childSteps, step{elem: true})
				suffix.WriteString(".<" + keyWord(ft.Key()) + ">")
				ft = ft.Elem()
				continue
			default:
			}
			break
		}
		if s.documented(ft) {
			s.walk(ft, joinPath(path, f.key)+suffix.String(), childSteps, onPath)
		}
	}
}

// section returns the section of t, adding it and path.
func (s *schema) section(t reflect.Type, path string, steps []step) *section {
	sec, ok := s.sections[t]
	if !ok {
		sec = &section{typ: t, steps: steps}
		s.sections[t] = sec
		s.order = append(s.order, sec)
	}
	if path != "" {
		sec.paths = append(sec.paths, path)
	}
	return sec
}

// keyWord names the keys of a map in a path: <name> for strings.
func keyWord(t reflect.Type) string {
	if t.Kind() == reflect.String {
		return "name"
	}
	return "key"
}

// structFields lists the YAML keys of struct t, flattening embedded
// structs that mapstructure squashes. Unexported fields and fields tagged
// "-" are not keys.
func structFields(t reflect.Type, index []int, owner string) []*field {
	var out []*field
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		raw, ok := f.Tag.Lookup("mapstructure") // What configs decodes with.
		if !ok {
			raw = f.Tag.Get("yaml")
		}
		tag, opts, _ := strings.Cut(raw, ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && strings.Contains(","+opts+",", ",squash,") && f.Type.Kind() == reflect.Struct {
			out = append(out, structFields(f.Type, idx, f.Type.Name())...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name) // mapstructure matches names without case.
		}
		out = append(out, &field{key: tag, goName: f.Name, owner: owner, index: idx, typ: f.Type})
	}
	return out
}

// documented reports whether t gets a section of its own: a named type of
// the root's package.
func (s *schema) documented(t reflect.Type) bool {
	return t.PkgPath() == s.root.PkgPath() && t.Name() != ""
}

// isScalar reports whether t is written as one YAML scalar: not a struct,
// or a struct that decodes itself from text.
func isScalar(t reflect.Type) bool {
	if t == reflect.TypeFor[time.Duration]() {
		return true
	}
	if t.Kind() != reflect.Struct {
		return true
	}
	return reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// joinPath appends a key to a dotted path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fillDefaults reads the default of every field: for each struct section,
// a Config with just the containers on the way to the struct's first path
// allocated (one list element, one map entry, pointers set) goes through
// SetDefaults, and the fields of the struct are read back. A field's
// default is therefore what SetDefaults puts into a zero field.
func (s *schema) fillDefaults() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading defaults: %v", r)
		}
	}()
	for _, sec := range s.order {
		if len(sec.fields) == 0 {
			continue
		}
		cfg := reflect.New(s.root)
		root := cfg.Elem()
		allocate(root, sec.steps)
		s.setDefaults(cfg.Interface())
		v := follow(root, sec.steps)
		if !v.IsValid() {
			return fmt.Errorf("reading defaults: SetDefaults removed %s", sec.paths[0])
		}
		for _, f := range sec.fields {
			f.def = renderDefault(f, v.FieldByIndex(f.index))
		}
	}
	return nil
}

// probeKey is the key allocate adds to a map on the way to its element.
const probeKey = "name"

// allocate makes the containers on the way of steps non-empty. v is
// addressable.
func allocate(v reflect.Value, steps []step) {
	if len(steps) == 0 {
		return
	}
	st := steps[0]
	if !st.elem {
		allocate(v.FieldByIndex(st.index), steps[1:])
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		allocate(v.Elem(), steps[1:])
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
		}
		allocate(v.Index(0), steps[1:])
	case reflect.Array:
		allocate(v.Index(0), steps[1:])
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		key := mapKey(v.Type().Key())
		elem := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			elem.Set(old)
		}
		allocate(elem, steps[1:])
		v.SetMapIndex(key, elem)
	default:
		panic(fmt.Sprintf("cannot step into a %s", v.Kind()))
	}
}

// follow walks steps without allocating; the zero Value means a container
// on the way is empty.
func follow(v reflect.Value, steps []step) reflect.Value {
	for _, st := range steps {
		if !st.elem {
			v = v.FieldByIndex(st.index)
			continue
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		case reflect.Slice, reflect.Array:
			if v.Len() == 0 {
				return reflect.Value{}
			}
			v = v.Index(0)
		case reflect.Map:
			v = v.MapIndex(mapKey(v.Type().Key()))
			if !v.IsValid() {
				return v
			}
		default:
			return reflect.Value{}
		}
	}
	return v
}

// mapKey is the probe key for a map with keys of type t.
func mapKey(t reflect.Type) reflect.Value {
	if t.Kind() == reflect.String {
		return reflect.ValueOf(probeKey).Convert(t)
	}
	return reflect.Zero(t)
}

// renderDefault renders a field's value after SetDefaults: empty when it is
// the zero value (no default), except that a bool always has one.
func renderDefault(f *field, v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Bool {
		return code(fmt.Sprint(v.Bool()))
	}
	if v.IsZero() {
		return ""
	}
	if v.Kind() == reflect.Struct && !isScalar(v.Type()) {
		return "" // Its fields are documented in its own section.
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		return code(formatDuration(time.Duration(v.Int())))
	}
	text := flowYAML(v.Interface())
	if strings.HasSuffix(f.key, "bytes") && v.CanInt() {
		if size := formatSize(v.Int()); size != "" {
			return code(text) + " (" + size + ")"
		}
	}
	return code(text)
}

// formatDuration writes d in the largest unit that divides it, as a
// configuration file would: 30m, 250ms, 90s.
func formatDuration(d time.Duration) string {
	units := []struct {
		d      time.Duration
		suffix string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"}}
	for _, u := range units {
		if d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.suffix)
		}
	}
	return d.String()
}

// formatSize names a byte count in MiB or KiB when it is a whole number of
// them.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return ""
	}
}

// flowYAML writes v as YAML in flow style, on one line.
func flowYAML(v any) string {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	setFlow(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSpace(string(out))
}

func setFlow(n *yaml.Node) {
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode {
		n.Style = yaml.FlowStyle
	}
	for _, c := range n.Content {
		setFlow(c)
	}
}

// code writes s as a Markdown code span.
func code(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// undocumented lists the types and fields that have no doc comment.
func (s *schema) undocumented(src *source) []string {
	var missing []string
	for _, sec := range s.order {
		t, ok := src.types[sec.typ.Name()]
		if !ok || strings.TrimSpace(t.Doc) == "" {
			missing = append(missing, "type "+sec.typ.Name())
		}
		for _, f := range sec.fields {
			if strings.TrimSpace(src.fields[f.owner][f.goName]) == "" {
				missing = append(missing, f.owner+"."+f.goName)
			}
		}
	}
	return missing
}

// typeName renders the Go type t as a YAML-ish type with links to the
// sections of documented types.
func (s *schema) typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "duration"
	case s.documented(t):
		link := fmt.Sprintf("[%s](#%s)", t.Name(), anchor(t))
		if isScalar(t) {
			return kindName(t) + " (" + link + ")"
		}
		return link
	case t.Name() != "" && t.PkgPath() != "":
		return code(t.String()) // A type from another package.
	}
	switch t.Kind() {
	case reflect.Pointer:
		return s.typeName(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes"
		}
		return "list of " + s.typeName(t.Elem())
	case reflect.Map:
		return "map of " + s.typeName(t.Key()) + " to " + s.typeName(t.Elem())
	default:
		return kindName(t)
	}
}

// kindName is the YAML-ish name of a scalar kind.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Interface:
		return "any"
	case reflect.Struct:
		return "string" // A struct that decodes itself from text.
	default:
		return t.Kind().String()
	}
}

// anchor is the GitHub anchor of a type's heading, which is its name.
func anchor(t reflect.Type) string { return strings.ToLower(t.Name()) }

// constant is a typed constant of a scalar configs type: one of its values.
type constant struct {
	name, value, doc string
}

// constants lists the typed constants declared with a type, in source
// order.
func (src *source) constants(typeName string) []constant {
	t, ok := src.types[typeName]
	if !ok {
		return nil
	}
	var out []constant
	for _, group := range t.Consts {
		for _, spec := range group.Decl.Specs {
			vs, ok := spec.(*ast.ValueSpec)
			if !ok {
				continue
			}
			text := vs.Doc.Text()
			if text == "" {
				text = vs.Comment.Text()
			}
			for i, n := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				var b bytes.Buffer
				if err := printer.Fprint(&b, src.fset, vs.Values[i]); err != nil {
					continue
				}
				out = append(out, constant{name: n.Name, value: b.String(), doc: text})
			}
		}
	}
	return out
}

// markdown renders a doc comment as Markdown blocks, with code blocks
// fenced.
func (src *source) markdown(text string, headingLevel int, links map[string]bool) string {
	d := src.parse(text)
	p := src.printer(headingLevel, links)
	var b strings.Builder
	for _, blk := range d.Content {
		switch blk := blk.(type) {
		case *comment.Code:
			b.WriteString("```\n" + blk.Text + "```\n\n")
		case *comment.Heading:
			// The printer's own headings carry {#id} attributes, which
			// GitHub does not understand.
			title := p.Markdown(&comment.Doc{Content: []comment.Block{&comment.Paragraph{Text: blk.Text}}, Links: d.Links})
			b.WriteString(strings.Repeat("#", headingLevel) + " " + oneLine(title) + "\n\n")
		default:
			b.Write(p.Markdown(&comment.Doc{Content: []comment.Block{blk}, Links: d.Links}))
			b.WriteString("\n")
		}
	}
	return strings.TrimSpace(b.String()) + "\n"
}

// inline renders a doc comment for a table cell: one line, paragraphs
// separated by <br><br>.
func (src *source) inline(text string, links map[string]bool) string {
	d := src.parse(text)
	p := src.printer(4, links)
	var parts []string
	for _, blk := range d.Content {
		switch blk := blk.(type) {
		case *comment.Code:
			lines := strings.Split(strings.TrimRight(blk.Text, "\n"), "\n")
			for i, l := range lines {
				lines[i] = html.EscapeString(l)
			}
			parts = append(parts, "<pre>"+strings.Join(lines, "<br>")+"</pre>")
		case *comment.List:
			var items []string
			for _, it := range blk.Items {
				items = append(items, "• "+oneLine(p.Markdown(&comment.Doc{Content: it.Content, Links: d.Links})))
			}
			parts = append(parts, strings.Join(items, "<br>"))
		default:
			parts = append(parts, oneLine(p.Markdown(&comment.Doc{Content: []comment.Block{blk}, Links: d.Links})))
		}
	}
	return strings.ReplaceAll(strings.Join(parts, "<br><br>"), "|", `\|`)
}

// parse parses a doc comment, leaving bare URLs as text: GitHub links
// them itself, and the printer's links mangle URLs such as http://[::1].
func (src *source) parse(text string) *comment.Doc {
	d := src.pkg.Parser().Parse(text)
	var unlink func(ts []comment.Text) []comment.Text
	unlink = func(ts []comment.Text) []comment.Text {
		for i, t := range ts {
			switch t := t.(type) {
			case *comment.Link:
				if t.Auto {
					ts[i] = comment.Plain(t.URL)
				} else {
					t.Text = unlink(t.Text)
				}
			case *comment.Italic:
			default:
			}
		}
		return ts
	}
	var blocks func(bs []comment.Block)
	blocks = func(bs []comment.Block) {
		for _, b := range bs {
			switch b := b.(type) {
			case *comment.Paragraph:
				b.Text = unlink(b.Text)
			case *comment.Heading:
				b.Text = unlink(b.Text)
			case *comment.List:
				for _, it := range b.Items {
					blocks(it.Content)
				}
			default:
			}
		}
	}
	blocks(d.Content)
	return d
}

// oneLine joins the lines of rendered Markdown with spaces.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}

// printer renders doc links to documented types as links to their
// sections, and other doc links to pkg.go.dev.
func (src *source) printer(headingLevel int, links map[string]bool) *comment.Printer {
	p := src.pkg.Printer()
	p.HeadingLevel = headingLevel
	p.DocLinkURL = func(l *comment.DocLink) string {
		if (l.ImportPath == "" || l.ImportPath == configsPath) && l.Recv == "" && links[l.Name] {
			return "#" + strings.ToLower(l.Name)
		}
		return l.DefaultURL("https://pkg.go.dev")
	}
	return p
}

// leadingName replaces a doc comment's leading Go name (Listen is …) by
// the YAML word it documents (`listen` is …).
func leadingName(text, goName, word string) string {
	if rest, ok := strings.CutPrefix(text, goName+" "); ok {
		return code(word) + " " + rest
	}
	return text
}
