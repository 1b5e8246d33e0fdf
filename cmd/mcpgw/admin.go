package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// The kill-switch and drain commands talk to a running gateway's admin API.

// adminFlags are the flags every admin command shares.
type adminFlags struct {
	addr   string
	output string
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("MCPGW_ADDR")
	if def == "" {
		def = "http://127.0.0.1:9190"
	}
	fs.StringVar(&a.addr, "addr", def, "base URL of the gateway (env MCPGW_ADDR)")
	fs.StringVar(&a.output, "o", "text", "output: text or json")
}

// interleaved parses flags given before or after positional arguments, as
// operators type them (`mcpgw kill orders__cancel_order --reason …`).
func interleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// call sends one admin request and decodes the JSON answer into out.
func (a *adminFlags) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.addr, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if tok := os.Getenv("MCPGW_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return fmt.Errorf("contacting %s: %w", a.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// switchView is a kill switch as the admin API returns it.
type switchView struct {
	ID      string    `json:"id"`
	Scope   string    `json:"scope"`
	Target  string    `json:"target"`
	Reason  string    `json:"reason"`
	Ticket  string    `json:"ticket"`
	Actor   string    `json:"actor"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func printSwitches(w io.Writer, list []switchView) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no kill switches are active")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tTARGET\tREASON\tTICKET\tBY\tEXPIRES")
	for i := range list {
		s := &list[i]
		expires := "never"
		if !s.Expires.IsZero() {
			expires = s.Expires.Local().Format(time.RFC3339) + " (in " + time.Until(s.Expires).Round(time.Second).String() + ")"
		}
		target := s.Target
		if target == "" {
			target = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Scope, target, s.Reason, s.Ticket, s.Actor, expires)
	}
	_ = tw.Flush()
}

// kill: mcpgw kill TOOL|--upstream U|--all --reason … [--ttl 1h] [--ticket …]
func kill(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a adminFlags
	a.register(fs)
	up := fs.String("upstream", "", "kill every tool of this upstream")
	all := fs.Bool("all", false, "kill every tool (global switch)")
	reason := fs.String("reason", "", "why (required)")
	ticket := fs.String("ticket", "", "incident or change ticket")
	ttl := fs.Duration("ttl", 0, "lift the switch after this long (e.g. 1h); 0 means until revived")
	pos, err := interleaved(fs, args)
	if err != nil {
		return 2
	}
	req := map[string]any{"reason": *reason, "ticket": *ticket}
	if *ttl != 0 {
		req["ttl"] = ttl.String()
	}
	switch {
	case *all && *up == "" && len(pos) == 0:
		req["scope"] = "global"
	case *up != "" && !*all && len(pos) == 0:
		req["scope"], req["target"] = "upstream", *up
	case len(pos) == 1 && !*all && *up == "":
		req["scope"], req["target"] = "tool", pos[0]
	default:
		fmt.Fprintln(stderr, "usage: mcpgw kill TOOL_GLOB | --upstream NAME | --all  --reason TEXT [--ttl 1h] [--ticket ID]")
		return 2
	}
	var sw switchView
	if err := a.call(http.MethodPost, "/admin/v1/killswitches", req, &sw); err != nil {
		fmt.Fprintln(stderr, "mcpgw kill:", err)
		return 1
	}
	if a.output == "json" {
		printJSON(stdout, sw)
		return 0
	}
	fmt.Fprintf(stdout, "kill switch %s is active\n", sw.ID)
	printSwitches(stdout, []switchView{sw})
	return 0
}

// revive: mcpgw revive ID
func revive(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("revive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a adminFlags
	a.register(fs)
	pos, err := interleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: mcpgw revive ID")
		return 2
	}
	var sw switchView
	if err := a.call(http.MethodDelete, "/admin/v1/killswitches/"+url.PathEscape(pos[0]), nil, &sw); err != nil {
		fmt.Fprintln(stderr, "mcpgw revive:", err)
		return 1
	}
	if a.output == "json" {
		printJSON(stdout, sw)
		return 0
	}
	fmt.Fprintf(stdout, "kill switch %s removed (%s %s)\n", sw.ID, sw.Scope, sw.Target)
	return 0
}

// switches: mcpgw switches
func switches(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switches", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a adminFlags
	a.register(fs)
	if _, err := interleaved(fs, args); err != nil {
		return 2
	}
	var out struct {
		KillSwitches []switchView `json:"killswitches"`
		Degraded     bool         `json:"degraded"`
	}
	if err := a.call(http.MethodGet, "/admin/v1/killswitches", nil, &out); err != nil {
		fmt.Fprintln(stderr, "mcpgw switches:", err)
		return 1
	}
	if a.output == "json" {
		printJSON(stdout, out)
		return 0
	}
	if out.Degraded {
		fmt.Fprintln(stdout, "WARNING: kill-switch state is unavailable; the gateway refuses every call until it loads")
	}
	printSwitches(stdout, out.KillSwitches)
	return 0
}

// drainCmd runs mcpgw drain U and mcpgw undrain U.
func drainCmd(verb string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var a adminFlags
	a.register(fs)
	reason := fs.String("reason", "", "why")
	pos, err := interleaved(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "usage: mcpgw %s UPSTREAM\n", verb)
		return 2
	}
	var body any
	if verb == "drain" {
		body = map[string]string{"reason": *reason}
	}
	var out map[string]any
	if err := a.call(http.MethodPost, "/admin/v1/upstreams/"+url.PathEscape(pos[0])+"/"+verb, body, &out); err != nil {
		fmt.Fprintf(stderr, "mcpgw %s: %v\n", verb, err)
		return 1
	}
	if a.output == "json" {
		printJSON(stdout, out)
		return 0
	}
	fmt.Fprintf(stdout, "upstream %s: %sed\n", pos[0], verb)
	return 0
}
