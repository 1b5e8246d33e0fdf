package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
)

// validateReport is what validate prints with -o json or yaml.
type validateReport struct {
	File     string            `json:"file"`
	OK       bool              `json:"ok"`
	Resolved bool              `json:"resolved"`
	Problems []configs.Problem `json:"problems"`
}

func validateCmd() *cobra.Command {
	var (
		out     outputFlag
		resolve bool
	)
	c := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file; exit 1 on problems",
		Long: `Check a configuration file and report every problem in one run, each
with its path and line.

By default it needs no environment, no secret and no network, so it runs in
CI before a deploy: it checks the structure, the types, unknown keys (with
suggestions), every rule serve enforces at start-up, and name lengths
(a prefix must leave room for tool names of 16 characters). Values that
hold ${NAME} references are checked only with --resolve.

--resolve also does what serve does with the environment: it expands ${NAME}
references and MCPGW_* overrides, reads secret files, and reaches the
issuers' discovery documents, the upstreams, Redis and the directories of
the audit and state files, and reads the lock file of pinned tool contracts
when an upstream pins.`,
		Example: `  mcpgw validate configs/example.yaml
  mcpgw validate --resolve /etc/mcpgw/mcpgw.yaml -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			problems := validateFile(cmd.Context(), args[0], resolve)
			rep := validateReport{File: args[0], OK: len(problems) == 0, Resolved: resolve, Problems: problems}
			if rep.Problems == nil {
				rep.Problems = []configs.Problem{}
			}
			w := cmd.OutOrStdout()
			if !rep.OK && (out.format == "text" || out.format == "wide") {
				w = cmd.ErrOrStderr()
			}
			if err := out.render(w, rep, func(w io.Writer, _ bool) {
				if rep.OK {
					level := "offline checks"
					if resolve {
						level = "resolved and reached"
					}
					fmt.Fprintf(w, "%s: ok (%s)\n", args[0], level)
					return
				}
				fmt.Fprintf(w, "%s: %d problem(s):\n", args[0], len(problems))
				for _, p := range problems {
					fmt.Fprintf(w, "  - %s\n", p)
				}
			}); err != nil {
				return err
			}
			if !rep.OK {
				return errFailed
			}
			return nil
		},
	}
	out.register(c)
	c.Flags().BoolVar(&resolve, "resolve", false, "also expand env references, read secrets, and reach issuers and upstreams")
	return c
}

// validateFile returns every problem validate finds in the file at path;
// with resolve, also what gateway.Probe finds reaching what it names.
func validateFile(ctx context.Context, path string, resolve bool) []configs.Problem {
	cfg, problems := configs.Check(path, configs.CheckOptions{Resolve: resolve})
	if cfg != nil && resolve {
		probed := gateway.Probe(ctx, cfg)
		if err := gateway.CheckLock(cfg, path); err != nil {
			probed = append(probed, configs.Problem{Path: "pinning.lock_file", Message: err.Error()})
		}
		configs.Locate(path, probed)
		problems = append(problems, probed...)
	}
	return problems
}

func configCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Configuration tools",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var outFile string
	schema := &cobra.Command{
		Use:   "schema [--out FILE]",
		Short: "Print the JSON Schema of the configuration file",
		Long: `Print the JSON Schema (draft 2020-12) of the configuration file, generated
from the configuration's Go types. Editors use it through the modeline the
examples carry:

  # yaml-language-server: $schema=<path or URL of the schema>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := configs.JSONSchema()
			if err != nil {
				return err
			}
			b = append(b, '\n')
			if outFile != "" {
				return os.WriteFile(outFile, b, 0o644) //nolint:gosec // a public schema, not a secret.
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	schema.Flags().StringVar(&outFile, "out", "", "write the schema to FILE instead of stdout (make docs writes docs/mcpgw.schema.json)")
	c.AddCommand(schema)
	return c
}
