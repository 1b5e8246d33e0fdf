package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
)

// probeTimeout bounds each reachability check of Probe.
const probeTimeout = 5 * time.Second

// Probe reaches what cfg names, for validate --resolve: each issuer's
// discovery document, each HTTP or SSE upstream's host, each stdio
// upstream's command, Redis (connected and PINGed as serve does, with
// its timeouts and password), the host names of the listen addresses,
// the audit files (or their directories) and the state file's
// directory. It changes nothing and reports one problem per thing it
// could not reach, with the configuration path that names it.
func Probe(ctx context.Context, cfg *configs.Config) []configs.Problem {
	var out []configs.Problem
	add := func(path, format string, args ...any) {
		out = append(out, configs.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	client := &http.Client{Timeout: probeTimeout, Transport: &http.Transport{}}
	if cfg.Auth != nil {
		for i := range cfg.Auth.Issuers {
			is := &cfg.Auth.Issuers[i]
			if err := probeIssuer(ctx, client, is); err != nil {
				add(fmt.Sprintf("auth.issuers[%d].issuer", i), "%v", err)
			}
		}
	}
	for i := range cfg.Upstreams {
		if path, err := probeUpstream(ctx, i, &cfg.Upstreams[i]); err != nil {
			add(path, "%v", err)
		}
	}
	if cfg.Redis != nil && !unset(cfg.Redis.URL) {
		// As serve connects: its timeouts, its password, PING.
		rc, err := policy.NewRedisClient(ctx, cfg.Redis)
		if err != nil {
			add("redis.url", "%v", err)
		} else {
			_ = rc.Close()
		}
	}
	for path, addr := range map[string]string{"server.listen": cfg.Server.Listen, "telemetry.metrics.listen": cfg.Telemetry.Metrics.Listen} {
		if host := configs.ListenHost(addr); host != "" && !unset(host) {
			if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
				add(path, "cannot bind %q: %v", addr, err)
			}
		}
	}
	for i, s := range cfg.Audit.Sinks {
		if s.Type == "file" {
			if err := writable(s.Path); err != nil {
				add(fmt.Sprintf("audit.sinks[%d].path", i), "%v", err)
			}
		}
	}
	if f := cfg.Policy.KillSwitches.StateFile; f != "" {
		if err := dirExists(f); err != nil {
			add("policy.kill_switches.state_file", "%v", err)
		}
	}
	return out
}

// probeUpstream reaches upstream i: its host, or its command on PATH.
func probeUpstream(ctx context.Context, i int, u *configs.Upstream) (string, error) {
	p := fmt.Sprintf("upstreams[%d]", i)
	switch {
	case u.HTTP != nil && unset(u.HTTP.URL), u.SSE != nil && unset(u.SSE.URL):
		// An unset variable or a missing URL, reported already.
	case u.HTTP != nil:
		if err := dialURL(ctx, u.HTTP.URL); err != nil {
			return p + ".http.url", fmt.Errorf("upstream %q is not reachable: %w", u.Name, err)
		}
	case u.SSE != nil:
		if err := dialURL(ctx, u.SSE.URL); err != nil {
			return p + ".sse.url", fmt.Errorf("upstream %q is not reachable: %w", u.Name, err)
		}
	case u.Stdio != nil:
		if _, err := exec.LookPath(u.Stdio.Command); err != nil {
			return p + ".stdio.command", err
		}
	}
	return "", nil
}

// probeIssuer fetches the issuer's discovery document as its discovery
// setting names it.
func probeIssuer(ctx context.Context, client *http.Client, is *configs.AuthIssuer) error {
	base := strings.TrimSuffix(is.Issuer, "/")
	var docs []string
	if is.Discovery != configs.DiscoveryOAuth {
		docs = append(docs, base+"/.well-known/openid-configuration")
	}
	if is.Discovery != configs.DiscoveryOIDC {
		if u, err := url.Parse(is.Issuer); err == nil {
			docs = append(docs, u.Scheme+"://"+u.Host+"/.well-known/oauth-authorization-server"+strings.TrimSuffix(u.Path, "/"))
		}
	}
	var last error
	for _, d := range docs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = fmt.Errorf("issuer %q is not reachable: %w", is.Issuer, err)
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("issuer %q: discovery document %s answered HTTP %d", is.Issuer, d, resp.StatusCode)
	}
	return last
}

// dialURL opens and closes a TCP connection to the URL's host. It reports
// errors without the URL, which may carry credentials.
func dialURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		switch u.Scheme {
		case "https":
			port = "443"
		case "redis", "rediss":
			port = "6379"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", host, err)
	}
	return c.Close()
}

// dirExists checks that the directory a file would be written in exists.
func dirExists(file string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// writable checks that the gateway can append to file, as it does to an
// audit file: an existing file is opened for appending (and closed,
// unchanged), a missing one needs its directory.
func writable(file string) error {
	st, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return dirExists(file)
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", file)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// unset reports a URL that is empty or still holds a ${NAME} reference.
func unset(raw string) bool { return raw == "" || strings.Contains(raw, "${") }
