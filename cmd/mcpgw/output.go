package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// The output formats every verb takes with -o. json and yaml print the
// same document (yaml is the json document re-encoded, so field names
// match); text is a table or a sentence; wide is text with more columns.
func outputFormats() []string { return []string{"text", "json", "yaml", "wide"} }

// outputFlag is the -o flag of one command.
type outputFlag struct{ format string }

func (o *outputFlag) register(c *cobra.Command) {
	c.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text, json, yaml or wide")
	_ = c.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return outputFormats(), cobra.ShellCompDirectiveNoFileComp
	})
}

// check refuses an unknown format before the command does anything.
func (o *outputFlag) check() error {
	if !slices.Contains(outputFormats(), o.format) {
		return usageError("-o %q: must be one of text, json, yaml, wide", o.format)
	}
	return nil
}

// render prints v as JSON or YAML, or calls text with wide set for -o wide.
func (o *outputFlag) render(w io.Writer, v any, text func(w io.Writer, wide bool)) error {
	switch o.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := toYAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "text", "wide":
		text(w, o.format == "wide")
		return nil
	default:
		return o.check()
	}
}

// toYAML encodes v's JSON document as YAML, keeping the JSON member order.
func toYAML(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	// YAML is a superset of JSON: decoding the JSON text as YAML gives a
	// node tree in the members' order, which re-encodes in block style.
	if err := yaml.Unmarshal(raw, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encoding YAML: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// blockStyle clears the flow and quoting styles the JSON text gave every
// node; the encoder quotes the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle | yaml.DoubleQuotedStyle
	for _, c := range n.Content {
		blockStyle(c)
	}
}
