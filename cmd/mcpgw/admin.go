package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/gateway"
)

// The admin verbs talk to a running gateway's admin API.

// defaultAddr is the admin URL when neither --addr nor MCPGW_ADDR is set.
const defaultAddr = "http://127.0.0.1:9190"

// adminFlags are the flags every admin verb shares.
type adminFlags struct {
	addr  string
	token string
	outputFlag
}

func (a *adminFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&a.addr, "addr", "", "base URL of the gateway (env MCPGW_ADDR; default "+defaultAddr+")")
	c.Flags().StringVar(&a.token, "token", "", "bearer token with the admin scope (env MCPGW_TOKEN)")
	a.outputFlag.register(c)
}

// resolve fills addr and token from the environment when the flags are
// unset.
func (a *adminFlags) resolve() error {
	if a.addr == "" {
		a.addr = os.Getenv("MCPGW_ADDR")
	}
	if a.addr == "" {
		a.addr = defaultAddr
	}
	if a.token == "" {
		a.token = os.Getenv("MCPGW_TOKEN")
	}
	return a.check()
}

// call sends one admin request and decodes the JSON answer into out.
func (a *adminFlags) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.addr, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return fmt.Errorf("contacting %s: %w", a.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return a.httpError(resp, data)
	}
	return json.Unmarshal(data, out)
}

// httpError explains a failed admin request: for 401 and 403, why (from
// the WWW-Authenticate challenge) and which scope the token lacks.
func (a *adminFlags) httpError(resp *http.Response, data []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		return fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	ch := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", resp.StatusCode)
	if ch["error"] != "" {
		b.WriteString(" " + ch["error"])
	}
	switch {
	case ch["error_description"] != "":
		b.WriteString(": " + ch["error_description"])
	case msg != "":
		b.WriteString(": " + msg)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && a.token == "":
		b.WriteString("; no token was sent: pass --token or set MCPGW_TOKEN")
	case resp.StatusCode == http.StatusUnauthorized:
		b.WriteString("; the gateway did not accept the token (expired, wrong issuer or audience?)")
	}
	if s := ch["scope"]; s != "" {
		fmt.Fprintf(&b, "; the token needs scope %q", s)
	}
	return fmt.Errorf("%s", b.String())
}

// parseChallenge reads the auth-params of a Bearer challenge (RFC 6750
// section 3): error, error_description, scope, resource_metadata.
func parseChallenge(h string) map[string]string {
	out := map[string]string{}
	_, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(strings.TrimSpace(h[:len(h)-len(rest)]), "bearer") {
		return out
	}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		if strings.HasPrefix(v, `"`) {
			var val strings.Builder
			i := 1
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				val.WriteByte(v[i])
			}
			out[k] = val.String()
			rest = v[min(i+1, len(v)):]
			continue
		}
		end := strings.IndexByte(v, ',')
		if end < 0 {
			end = len(v)
		}
		out[k] = strings.TrimSpace(v[:end])
		rest = v[end:]
	}
	return out
}

// switchView is a kill switch or drain record as the admin API returns it.
// A switch without expiry has no expires member.
type switchView struct {
	ID      string    `json:"id"`
	Scope   string    `json:"scope"`
	Target  string    `json:"target,omitempty"`
	Reason  string    `json:"reason"`
	Ticket  string    `json:"ticket,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.RFC3339) + " (in " + time.Until(t).Round(time.Second).String() + ")"
}

func printSwitches(w io.Writer, list []switchView, wide bool) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no kill switches are active")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "ID\tSCOPE\tTARGET\tREASON\tTICKET\tBY\tEXPIRES"
	if wide {
		head += "\tCREATED"
	}
	fmt.Fprintln(tw, head)
	for i := range list {
		s := &list[i]
		target := s.Target
		if target == "" {
			target = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", s.ID, s.Scope, target, s.Reason, s.Ticket, s.Actor, expiry(s.Expires))
		if wide {
			fmt.Fprintf(tw, "\t%s", s.Created.Local().Format(time.RFC3339))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// adminCmds are the verbs against a running gateway.
func adminCmds() []*cobra.Command {
	return []*cobra.Command{
		killCmd(), reviveCmd(), switchesCmd(), drainCmd("drain"), drainCmd("undrain"),
		upstreamsCmd(), catalogCmd(), drainsCmd(), historyCmd(),
	}
}

// adminRun wraps a verb's body: it resolves the flags first.
func adminRun(a *adminFlags, body func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := a.resolve(); err != nil {
			return err
		}
		if err := body(cmd, args); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("%s: %w", cmd.Name(), err)}
		}
		return nil
	}
}

func killCmd() *cobra.Command {
	var (
		a                  adminFlags
		up, reason, ticket string
		all                bool
		ttl                time.Duration
	)
	c := &cobra.Command{
		Use:   "kill (TOOL_GLOB | --upstream NAME | --all) --reason TEXT [--ttl 1h] [--ticket ID]",
		Short: "Stop calls to tools, an upstream or everything, at once",
		Long: `Set a kill switch: calls to the matching tools are refused with -32060 and
the reason, on every replica sharing Redis, until the switch is revived or
its TTL passes. Each change is audited.`,
		Example: `  mcpgw kill 'orders__cancel_*' --reason "refund storm" --ticket INC-42 --ttl 1h
  mcpgw kill --upstream payments --reason "provider outage"
  mcpgw kill --all --reason "incident"`,
		Args: cobra.MaximumNArgs(1),
	}
	c.RunE = func(cmd *cobra.Command, pos []string) error {
		req := map[string]any{"reason": reason, "ticket": ticket}
		if ttl != 0 {
			req["ttl"] = ttl.String()
		}
		switch {
		case all && up == "" && len(pos) == 0:
			req["scope"] = "global"
		case up != "" && !all && len(pos) == 0:
			req["scope"], req["target"] = "upstream", up
		case len(pos) == 1 && !all && up == "":
			req["scope"], req["target"] = "tool", pos[0]
		default:
			return usageError("kill: name exactly one of TOOL_GLOB, --upstream NAME, --all")
		}
		return adminRun(&a, func(cmd *cobra.Command, _ []string) error {
			var sw switchView
			if err := a.call(cmd.Context(), http.MethodPost, "/admin/v1/killswitches", req, &sw); err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), sw, func(w io.Writer, wide bool) {
				fmt.Fprintf(w, "kill switch %s is active\n", sw.ID)
				printSwitches(w, []switchView{sw}, wide)
			})
		})(cmd, pos)
	}
	a.register(c)
	c.Flags().StringVar(&up, "upstream", "", "kill every tool of this upstream")
	c.Flags().BoolVar(&all, "all", false, "kill every tool (global switch)")
	c.Flags().StringVar(&reason, "reason", "", "why (required)")
	c.Flags().StringVar(&ticket, "ticket", "", "incident or change ticket")
	c.Flags().DurationVar(&ttl, "ttl", 0, "lift the switch after this long (e.g. 1h); 0 means until revived")
	return c
}

func reviveCmd() *cobra.Command {
	var a adminFlags
	c := &cobra.Command{
		Use:     "revive ID",
		Short:   "Lift a kill switch",
		Example: "  mcpgw revive ks-1a2b3c4d5e6f7a8b   # the ID from kill or switches",
		Args:    cobra.ExactArgs(1),
		RunE: adminRun(&a, func(cmd *cobra.Command, args []string) error {
			var sw switchView
			if err := a.call(cmd.Context(), http.MethodDelete, "/admin/v1/killswitches/"+url.PathEscape(args[0]), nil, &sw); err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), sw, func(w io.Writer, wide bool) {
				fmt.Fprintf(w, "kill switch %s removed (%s %s)\n", sw.ID, sw.Scope, sw.Target)
				if wide {
					printSwitches(w, []switchView{sw}, true)
				}
			})
		}),
	}
	a.register(c)
	return c
}

// listCmd completes c as a listing verb: it GETs the admin endpoint that
// path returns, decodes the answer into a T, and renders it with -o
// (printOut for text and wide). Each listing verb is one call of it.
func listCmd[T any](c *cobra.Command, path func() string, printOut func(w io.Writer, out *T, wide bool)) *cobra.Command {
	a := &adminFlags{}
	if c.Args == nil {
		c.Args = cobra.NoArgs
	}
	c.RunE = adminRun(a, func(cmd *cobra.Command, _ []string) error {
		var out T
		if err := a.call(cmd.Context(), http.MethodGet, path(), nil, &out); err != nil {
			return err
		}
		return a.render(cmd.OutOrStdout(), out, func(w io.Writer, wide bool) { printOut(w, &out, wide) })
	})
	a.register(c)
	return c
}

// at is a fixed admin path.
func at(path string) func() string { return func() string { return path } }

// switchList is GET /admin/v1/killswitches.
type switchList struct {
	KillSwitches []switchView `json:"killswitches"`
	Degraded     bool         `json:"degraded"`
}

func switchesCmd() *cobra.Command {
	return listCmd(&cobra.Command{Use: "switches", Short: "List the active kill switches"},
		at("/admin/v1/killswitches"), func(w io.Writer, out *switchList, wide bool) {
			if out.Degraded {
				fmt.Fprintln(w, "WARNING: kill-switch state is unavailable; the gateway refuses every call until it loads")
			}
			printSwitches(w, out.KillSwitches, wide)
		})
}

// drainCmd is mcpgw drain U and mcpgw undrain U.
func drainCmd(verb string) *cobra.Command {
	var (
		a      adminFlags
		reason string
	)
	c := &cobra.Command{
		Use:  verb + " UPSTREAM --reason TEXT",
		Args: cobra.ExactArgs(1),
		RunE: adminRun(&a, func(cmd *cobra.Command, args []string) error {
			var out struct {
				Upstream string `json:"upstream"`
				Drained  bool   `json:"drained"`
			}
			body := map[string]string{"reason": reason}
			if err := a.call(cmd.Context(), http.MethodPost, "/admin/v1/upstreams/"+url.PathEscape(args[0])+"/"+verb, body, &out); err != nil {
				return err
			}
			return a.render(cmd.OutOrStdout(), out, func(w io.Writer, _ bool) {
				fmt.Fprintf(w, "upstream %s: %sed\n", out.Upstream, verb)
			})
		}),
	}
	if verb == "drain" {
		c.Short = "Refuse new calls to an upstream; calls in flight finish"
		c.Example = `  mcpgw drain orders --reason "db migration"`
		c.Flags().StringVar(&reason, "reason", "", "why (required)")
	} else {
		c.Short = "Let calls reach a drained upstream again"
		c.Example = `  mcpgw undrain orders --reason "migration done"`
		c.Flags().StringVar(&reason, "reason", "", "why (audited)")
	}
	a.register(c)
	return c
}

// upstreamList is GET /admin/v1/upstreams.
type upstreamList struct {
	Upstreams []gateway.UpstreamState `json:"upstreams"`
}

func upstreamsCmd() *cobra.Command {
	return listCmd(&cobra.Command{
		Use:   "upstreams",
		Short: "List upstreams: health, era, breaker, drain, tools and dropped tools",
		Long: `List every upstream of the running configuration: whether it is loaded and
available, the protocol era spoken to it, its breaker, whether it is drained,
how many tools it contributes, and how many the catalog dropped because the
exposed name fails catalog.name_pattern (DROPPED) or clashes with an earlier
upstream's (CLASHED). -o wide adds the protocol version, load, per-tool
breakers and the dropped tools' names.`,
	}, at("/admin/v1/upstreams"), func(w io.Writer, out *upstreamList, wide bool) { printUpstreams(w, out.Upstreams, wide) })
}

func printUpstreams(w io.Writer, ups []gateway.UpstreamState, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "NAME\tHEALTH\tERA\tBREAKER\tDRAINED\tTOOLS\tDROPPED\tCLASHED"
	if wide {
		head += "\tVERSION\tIN FLIGHT\tQUEUED\tREQUIRED\tTOOL BREAKERS"
	}
	fmt.Fprintln(tw, head)
	for i := range ups {
		u := &ups[i]
		health := "down"
		switch {
		case !u.Loaded:
			health = "loading"
		case u.Available:
			health = "up"
		}
		breaker, era := dash(u.Breaker), dash(u.Era)
		drained := "no"
		if u.Drained {
			drained = "yes"
			if u.Drain != nil && u.Drain.Reason != "" {
				drained += " (" + u.Drain.Reason + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d", u.Name, health, era, breaker, drained, u.Tools, u.ToolsDroppedName, u.ToolsClashed)
		if wide {
			var tb []string
			for _, b := range u.Breakers {
				tb = append(tb, b.Tool+"="+b.State)
			}
			fmt.Fprintf(tw, "\t%s\t%d\t%d\t%t\t%s", dash(u.ProtocolVersion), u.InFlight, u.Queued, u.Required, dash(strings.Join(tb, ",")))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	for i := range ups {
		if n := ups[i].ToolsDroppedName + ups[i].ToolsClashed; n > 0 && !wide {
			fmt.Fprintf(w, "upstream %s: %d tool(s) left out of the catalog; -o wide lists them\n", ups[i].Name, n)
		}
		if wide {
			for _, p := range ups[i].Problems {
				fmt.Fprintln(w, "  "+p)
			}
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func catalogCmd() *cobra.Command {
	var (
		asScopes []string
		as       bool
	)
	c := listCmd(&cobra.Command{
		Use:   "catalog [--as-scopes SCOPE,...]",
		Short: "List the merged catalog's tools, optionally as a principal sees them",
		Long: `List every tool of the merged catalog with its upstream, original name,
whether tools/list shows it, and why not (upstream down, killed, missing
scopes). With --as-scopes the view is that of a principal granted exactly
those scopes (--as-scopes "" for none): LISTED and MISSING are its own.`,
		Example: `  mcpgw catalog
  mcpgw catalog --as-scopes orders:read,mcp:tools -o wide`,
	}, func() string {
		if as {
			return "/admin/v1/catalog?scopes=" + url.QueryEscape(strings.Join(asScopes, ","))
		}
		return "/admin/v1/catalog"
	}, printCatalog)
	c.Flags().StringSliceVar(&asScopes, "as-scopes", nil, "view the catalog as a principal granted these scopes")
	c.PreRun = func(cmd *cobra.Command, _ []string) { as = cmd.Flags().Changed("as-scopes") }
	return c
}

func printCatalog(w io.Writer, v *gateway.CatalogView, wide bool) {
	if v.As != nil {
		fmt.Fprintf(w, "as a principal with scopes [%s] (catalog version %d)\n", strings.Join(v.As.Scopes, " "), v.Version)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "NAME\tUPSTREAM\tLISTED\tWHY NOT"
	if wide {
		head += "\tORIGINAL\tSCOPES\tHINTS"
	}
	fmt.Fprintln(tw, head)
	for i := range v.Tools {
		t := &v.Tools[i]
		var why []string
		if !t.Available {
			why = append(why, "upstream down")
		}
		if t.Killed {
			why = append(why, "killed")
		}
		if len(t.MissingScopes) > 0 {
			why = append(why, "missing "+strings.Join(t.MissingScopes, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", t.Name, t.Upstream, yesNo(t.Listed), dash(strings.Join(why, "; ")))
		if wide {
			var hints []string
			for _, h := range []struct {
				on   bool
				name string
			}{{t.ReadOnly, "read-only"}, {t.Destructive, "destructive"}, {t.Idempotent, "idempotent"}} {
				if h.on {
					hints = append(hints, h.name)
				}
			}
			fmt.Fprintf(tw, "\t%s\t%s\t%s", t.Original, dash(strings.Join(t.RequiredScopes, " ")), dash(strings.Join(hints, ",")))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d tool(s)\n", len(v.Tools))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// drainList is GET /admin/v1/drains.
type drainList struct {
	Drains   []switchView `json:"drains"`
	Degraded bool         `json:"degraded"`
}

func drainsCmd() *cobra.Command {
	return listCmd(&cobra.Command{Use: "drains", Short: "List the drained upstreams"}, at("/admin/v1/drains"), printDrains)
}

func printDrains(w io.Writer, out *drainList, wide bool) {
	if out.Degraded {
		fmt.Fprintln(w, "WARNING: drain state is unavailable")
	}
	if len(out.Drains) == 0 {
		fmt.Fprintln(w, "no upstream is drained")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "UPSTREAM\tREASON\tBY\tSINCE"
	if wide {
		head += "\tID"
	}
	fmt.Fprintln(tw, head)
	for i := range out.Drains {
		d := &out.Drains[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", d.Target, d.Reason, d.Actor, d.Created.Local().Format(time.RFC3339))
		if wide {
			fmt.Fprintf(tw, "\t%s", d.ID)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

// historyList is GET /admin/v1/killswitches/history.
type historyList struct {
	Events []struct {
		Time   time.Time  `json:"time"`
		Kind   string     `json:"kind"`
		Action string     `json:"action"`
		Actor  string     `json:"actor,omitempty"`
		Switch switchView `json:"switch"`
	} `json:"events"`
}

func historyCmd() *cobra.Command {
	return listCmd(&cobra.Command{
		Use:   "history",
		Short: "List recent kill-switch and drain changes (this replica's)",
		Long: `List the kill-switch and drain changes the replica at --addr made or saw
expire since it started (at most 500, oldest first). Changes made through
another replica show on that replica; the audit stream is the complete
record.`,
	}, at("/admin/v1/killswitches/history"), printHistory)
}

func printHistory(w io.Writer, out *historyList, wide bool) {
	if len(out.Events) == 0 {
		fmt.Fprintln(w, "no changes since the gateway started")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "TIME\tKIND\tACTION\tSCOPE\tTARGET\tREASON\tBY"
	if wide {
		head += "\tID\tTICKET\tEXPIRES"
	}
	fmt.Fprintln(tw, head)
	for i := range out.Events {
		e := &out.Events[i]
		s := &e.Switch
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s", e.Time.Local().Format(time.RFC3339), e.Kind, e.Action, s.Scope, dash(s.Target), s.Reason, e.Actor)
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s", dash(s.ID), dash(s.Ticket), expiry(s.Expires))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}
