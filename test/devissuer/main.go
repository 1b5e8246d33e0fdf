// Command devissuer is a DEVELOPMENT-ONLY OpenID provider for make demo: it
// serves discovery, a JWKS and a token endpoint on a loopback address, and
// mints signed access tokens for whoever asks. It authenticates nobody. It
// is NOT FOR PRODUCTION, and refuses to listen anywhere but loopback.
//
// Serve, printing the issuer URL and a ready token:
//
//	devissuer -listen 127.0.0.1:0 -audience http://127.0.0.1:9190/mcp -keyfile /tmp/devissuer.json
//	ISSUER_URL=http://127.0.0.1:41234
//	TOKEN=eyJ...
//
// Mint more tokens from another process, with the same key file (the keys,
// the issuer URL and the audience persist there):
//
//	devissuer mint -sub alice -scope "mcp:tools orders:write" -keyfile /tmp/devissuer.json
//
// The token endpoint (/token) serves the client credentials grant and RFC
// 8693 token exchange for the client -client-id/-client-secret.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

const banner = `
********************************************************************
*  devissuer: DEVELOPMENT ONLY — NOT FOR PRODUCTION                 *
*  It signs a token for anyone who asks. Never point a gateway that *
*  serves real users at it.                                         *
********************************************************************
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop() // not deferred: os.Exit below would skip it
	if err != nil {
		fmt.Fprintln(os.Stderr, "devissuer:", err)
		os.Exit(1)
	}
}

// run serves (the default) or mints (args[0] == "mint") until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fmt.Fprint(stderr, banner)
	if len(args) > 0 && args[0] == "mint" {
		return mint(args[1:], stdout, stderr)
	}
	return serve(ctx, args, stdout, stderr)
}

// tokenFlags are the flags that shape a minted token.
type tokenFlags struct {
	sub, scope, clientID string
	ttl                  time.Duration
}

func (t *tokenFlags) register(flags *flag.FlagSet, sub string) {
	flags.StringVar(&t.sub, "sub", sub, "subject (sub) of the token")
	flags.StringVar(&t.scope, "scope", "mcp:tools", "space-separated scopes of the token")
	flags.StringVar(&t.clientID, "client-id", "mcpgw-dev", "client_id of the token, and the client registered at /token")
	flags.DurationVar(&t.ttl, "ttl", time.Hour, "lifetime of tokens")
}

func (t *tokenFlags) claims() map[string]any {
	c := map[string]any{"sub": t.sub, "client_id": t.clientID}
	if t.scope != "" {
		c["scope"] = t.scope
	}
	return c
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("devissuer", flag.ContinueOnError)
	flags.SetOutput(stderr)
	listen := flags.String("listen", "127.0.0.1:0", "loopback host:port to listen on (port 0 picks one)")
	audience := flags.String("audience", "", "aud of minted tokens: the gateway's auth.resource (required)")
	keyfile := flags.String("keyfile", "", "file keeping the signing keys, issuer and audience for mint (created if missing; empty: keys die with the process)")
	secret := flags.String("client-secret", "dev-secret", "secret of the client at /token")
	var tf tokenFlags
	tf.register(flags, "dev")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *audience == "" {
		return errors.New("-audience is required: the gateway's auth.resource")
	}
	if err := checkLoopback(*listen); err != nil {
		return err
	}

	cfg := authntest.ProviderConfig{
		Audience: *audience,
		TokenTTL: tf.ttl,
		Clients:  []authntest.Client{{ID: tf.clientID, Secret: *secret}},
	}
	if *keyfile != "" {
		kf, err := authntest.ReadKeyFile(*keyfile)
		switch {
		case err == nil:
			cfg.Keys = kf.Keys
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	defer l.Close()
	cfg.URL = "http://" + l.Addr().String()
	p, err := authntest.NewProvider(&cfg)
	if err != nil {
		return err
	}
	if *keyfile != "" {
		if err := authntest.WriteKeyFile(*keyfile, &authntest.KeyFile{Issuer: p.URL(), Audience: *audience, Keys: p.Keys()}); err != nil {
			return fmt.Errorf("writing key file: %w", err)
		}
	}
	tok, err := p.Mint(tf.claims())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ISSUER_URL=%s\nTOKEN=%s\n", p.URL(), tok)

	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

func mint(args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("devissuer mint", flag.ContinueOnError)
	flags.SetOutput(stderr)
	issuer := flags.String("issuer", "", "issuer URL (default: the one in the key file)")
	audience := flags.String("audience", "", "aud of the token (default: the one in the key file)")
	keyfile := flags.String("keyfile", "", "key file written by the serving devissuer (required)")
	var tf tokenFlags
	tf.register(flags, "")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *keyfile == "" {
		return errors.New("-keyfile is required: the file the serving devissuer keeps its keys in")
	}
	if tf.sub == "" {
		return errors.New("-sub is required")
	}
	kf, err := authntest.ReadKeyFile(*keyfile)
	if err != nil {
		return err
	}
	if *issuer == "" {
		*issuer = kf.Issuer
	}
	if *audience == "" {
		*audience = kf.Audience
	}
	if *issuer == "" {
		return errors.New("-issuer is required: the key file names none")
	}
	p, err := authntest.NewProvider(&authntest.ProviderConfig{
		URL:      strings.TrimSuffix(*issuer, "/"),
		Audience: *audience,
		TokenTTL: tf.ttl,
		Keys:     kf.Keys,
	})
	if err != nil {
		return err
	}
	tok, err := p.Mint(tf.claims())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// checkLoopback refuses addresses that are not loopback: this issuer signs
// for anyone who can reach it.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-listen %s is not a loopback address; devissuer is for development only", addr)
}
