package catalog

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchSources is a realistic catalog: 10 upstreams of 100 tools each,
// with schemas, resources and templates.
func benchSources(available bool) []Source {
	sources := make([]Source, 10)
	for u := range sources {
		name := fmt.Sprintf("upstream%d", u)
		src := Source{Upstream: name, Prefix: name, Available: available, Exclude: []string{"internal_*"}}
		for i := range 100 {
			src.Tools = append(src.Tools, json.RawMessage(fmt.Sprintf(
				`{"name":"tool_%d","description":"Does thing %d.","inputSchema":{"type":"object","properties":{"id":{"type":"string"},"name":{"type":"string"}},"required":["id"]},"annotations":{"readOnlyHint":true}}`, i, i)))
			src.Resources = append(src.Resources, resource(fmt.Sprintf("doc://%d", i)))
		}
		src.ResourceTemplates = []json.RawMessage{resourceTemplate(fmt.Sprintf("%s://{id}", name))}
		sources[u] = src
	}
	return sources
}

func BenchmarkTool(b *testing.B) {
	s, _ := Build(1, defaultOpts, benchSources(true))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Tool("upstream7__tool_42"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkResourceTemplate(b *testing.B) {
	s, _ := Build(1, defaultOpts, benchSources(true))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Resource("upstream9://42"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkPage(b *testing.B) {
	s, _ := Build(1, Options{Separator: "__", PageSize: 100}, benchSources(true))
	cursor := encodeCursor(Tools, 1, 500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Page(Tools, cursor); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild1000(b *testing.B) {
	sources := benchSources(true)
	b.ReportAllocs()
	for b.Loop() {
		s, problems := Build(1, defaultOpts, sources)
		if len(problems) > 0 || s.Len(Tools) != 1000 {
			b.Fatal(problems)
		}
	}
}
