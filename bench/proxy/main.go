// Command proxy is the benchmark's baseline: a bare httputil.ReverseProxy
// in front of the upstream, with the Transport a careful operator would
// configure (enough idle connections per host for the concurrency, no
// compression). Whatever mcpgw adds on top of this is what it costs.
//
//	go run ./bench/proxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:PORT/mcp
//
// prints PROXY_URL=http://127.0.0.1:PORT/mcp on stdout once listening; the
// path of the upstream URL is kept, and every request path is forwarded
// unchanged to the upstream's host.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "upstream MCP URL, such as http://127.0.0.1:9000/mcp")
	idle := flag.Int("max-idle-conns-per-host", 256, "idle keep-alive connections kept to the upstream")
	flag.Parse()
	log.SetFlags(0)

	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" || (target.Scheme != "http" && target.Scheme != "https") {
		log.Fatalf("proxy: -upstream must be an http(s) URL, got %q", *upstream) //nolint:forbidigo // a main package; a bad flag ends it.
	}

	h := newHandler(target, *idle)
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		log.Fatalf("proxy: %v", err) //nolint:forbidigo // a main package; it cannot listen.
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("PROXY_URL=http://%s%s\n", ln.Addr(), target.Path) //nolint:forbidigo // the bench runner reads this line from stdout.

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("proxy: %v", err) //nolint:forbidigo,gocritic // a main package; it cannot serve, and stop only undoes signal.Notify.
	}
}

// newHandler returns the reverse proxy to target's host, keeping up to idle
// keep-alive connections to it.
func newHandler(target *url.URL, idle int) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone() //nolint:errcheck // the standard library's default is an *http.Transport.
	tr.MaxIdleConns = 4 * idle
	tr.MaxIdleConnsPerHost = idle
	tr.IdleConnTimeout = 90 * time.Second
	tr.DisableCompression = true

	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.Host = target.Host
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  log.New(os.Stderr, "proxy: ", 0),
	}
	// Full duplex stops net/http from draining and closing the request body
	// when the proxy writes the response headers: a fast upstream answers
	// before the transport's final read of the body (the check that it was
	// not longer than declared), and that read on a closed body tears down
	// the upstream connection mid-response. Without this, about 3% of large
	// tools/list responses were truncated and their upstream connections
	// thrown away.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
}
