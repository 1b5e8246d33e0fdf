package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
)

// toolsCmd is `mcpgw tools pin|diff|approve`: the lock file of pinned
// tool contracts (docs/policy.md). The work is in gateway (LiveLock,
// DiffLocks, Approve, ReadLock, WriteLock); these commands parse and
// print.
func toolsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "tools",
		Short: "Pin tool contracts in the lock file, show changes, approve them",
		Long: `Pinned tool contracts (docs/policy.md): each tool's name, description,
schemas and annotations, recorded in the lock file (pinning.lock_file,
mcpgw.lock beside the configuration by default). Each verb connects to the
configured upstreams and reads what they list now.`,
	}
	c.AddCommand(toolsPinCmd(), toolsDiffCmd(), toolsApproveCmd())
	return c
}

// toolsFlags are the flags every tools verb takes.
type toolsFlags struct {
	path string
	wait time.Duration
}

func (f *toolsFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.path, "config", "c", "mcpgw.yaml", "configuration file")
	c.Flags().DurationVar(&f.wait, "wait", 30*time.Second, "how long to wait for the upstreams' catalogs")
	_ = c.MarkFlagFilename("config", "yaml", "yml")
}

// live loads the configuration and pins what the upstreams list now.
func (f *toolsFlags) live(cmd *cobra.Command) (*configs.Config, *gateway.Lock, error) {
	cfg, err := configs.Load(f.path)
	if err != nil {
		for _, p := range configs.Problems(err) {
			fmt.Fprintf(cmd.ErrOrStderr(), "config: %s\n", p)
		}
		return nil, nil, errFailed
	}
	current, err := gateway.LiveLock(cmd.Context(), cfg, f.wait)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	return cfg, current, nil
}

func toolsPinCmd() *cobra.Command {
	var f toolsFlags
	c := &cobra.Command{
		Use:   "pin",
		Short: "Write the lock file from the tools the upstreams list now",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, current, err := f.live(cmd)
			if err != nil {
				return err
			}
			lockPath := cfg.LockFilePath(f.path)
			if err := gateway.WriteLock(lockPath, current); err != nil {
				return &exitError{code: 1, err: err}
			}
			n := 0
			for _, tools := range current.Upstreams {
				n += len(tools)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pinned %d tools of %d upstreams in %s\n", n, len(current.Upstreams), lockPath)
			return nil
		},
	}
	f.register(c)
	return c
}

func toolsDiffCmd() *cobra.Command {
	var (
		f   toolsFlags
		out outputFlag
	)
	c := &cobra.Command{
		Use:   "diff",
		Short: "Show what changed since the lock file, member by member; exit 1 on changes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			cfg, current, err := f.live(cmd)
			if err != nil {
				return err
			}
			pinned, err := gateway.ReadLock(cfg.LockFilePath(f.path))
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			changes := gateway.DiffLocks(pinned, current)
			if changes == nil {
				changes = []gateway.ContractChange{}
			}
			if err := out.render(cmd.OutOrStdout(), changes, func(w io.Writer, _ bool) { printChanges(w, changes) }); err != nil {
				return err
			}
			if len(changes) > 0 {
				return errFailed
			}
			return nil
		},
	}
	f.register(c)
	out.register(c)
	return c
}

func toolsApproveCmd() *cobra.Command {
	var (
		f              toolsFlags
		addr, token    string
		digest, reason string
	)
	c := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve the current contract of one tool: in the lock file, or on a running gateway with --addr",
		Long: `Without --addr, pins the current contract of one tool (exposed name, or
UPSTREAM/TOOL) in the lock file; a running gateway applies it on reload
(SIGHUP, or serve -watch, which watches the lock file too).

With --addr, asks a running gateway to approve the contract it quarantined
(POST /admin/v1/tools/NAME/approve, exposed name, admin scope): the
approval takes effect at once and reaches every replica sharing Redis. Pin
it in the lock file as well (without --addr) to keep it across restarts.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr != "" {
				return approveLive(cmd, addr, token, args[0], digest, reason)
			}
			cfg, current, err := f.live(cmd)
			if err != nil {
				return err
			}
			lockPath := cfg.LockFilePath(f.path)
			pinned, err := gateway.ReadLock(lockPath)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if digest != "" {
				if ch, err := gateway.Approve(cfg, &gateway.Lock{Upstreams: cloneLock(pinned)}, current, args[0]); err == nil && ch.Current != digest {
					return &exitError{code: 1, err: fmt.Errorf("%s: the contract changed again: reviewed %s, now %s", args[0], digest, ch.Current)}
				}
			}
			ch, err := gateway.Approve(cfg, pinned, current, args[0])
			if err == nil {
				err = gateway.WriteLock(lockPath, pinned)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved %s %s/%s (%s) in %s\n", ch.Kind, ch.Upstream, ch.Tool, ch.Current, lockPath)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&addr, "addr", "", "base URL of a running gateway to approve on (admin API) instead of writing the lock file")
	c.Flags().StringVar(&token, "token", "", "bearer token with the admin scope, with --addr (env MCPGW_TOKEN)")
	c.Flags().StringVar(&digest, "digest", "", "the contract digest reviewed (from tools diff): refuse if the tool changed again since")
	c.Flags().StringVar(&reason, "reason", "", "why, for the audit record (with --addr)")
	return c
}

// cloneLock copies a lock's maps, so that a trial Approve leaves it as it
// was.
func cloneLock(l *gateway.Lock) map[string]map[string]gateway.PinnedTool {
	out := make(map[string]map[string]gateway.PinnedTool, len(l.Upstreams))
	for up, tools := range l.Upstreams {
		out[up] = maps.Clone(tools)
	}
	return out
}

// approveLive approves a quarantined tool on a running gateway.
func approveLive(cmd *cobra.Command, addr, token, name, digest, reason string) error {
	a := adminFlags{addr: addr, token: token}
	if a.token == "" {
		a.token = os.Getenv("MCPGW_TOKEN")
	}
	var got gateway.ApprovedContract
	body := map[string]string{"digest": digest, "reason": reason}
	if err := a.call(cmd.Context(), http.MethodPost, "/admin/v1/tools/"+url.PathEscape(name)+"/approve", body, &got); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "approved %s %s/%s (%s) on %s\n", got.Kind, got.Upstream, got.Original, got.Current, addr)
	return nil
}

// printChanges prints contract changes member by member.
func printChanges(w io.Writer, changes []gateway.ContractChange) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, ch := range changes {
		fmt.Fprintf(w, "%s %s/%s\n", ch.Kind, ch.Upstream, ch.Tool)
		for _, m := range ch.Members {
			fmt.Fprintf(w, "  %s:\n    - %s\n    + %s\n", m.Member, orAbsent(m.Pinned), orAbsent(m.Current))
		}
	}
}

func orAbsent(b []byte) string {
	if len(b) == 0 {
		return "(absent)"
	}
	return string(b)
}
