package gateway

import (
	"bytes"
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"github.com/mcpgw/mcpgw/authn"
)

// endpoint is one line of the index at /.
type endpoint struct {
	Path  string `json:"path"`
	About string `json:"about"`
}

// indexPage is the index at /: a person opening the gateway's address in a
// browser, or an operator with curl, learns where everything is instead of
// meeting a 404.
type indexPage struct {
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Endpoints []endpoint `json:"endpoints"`
}

const indexHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}}</title></head>
<body><h1>{{.Name}} {{.Version}}</h1><ul>
{{range .Endpoints}}<li><a href="{{.Path}}"><code>{{.Path}}</code></a> {{.About}}</li>
{{end}}</ul></body></html>
`

// indexHandler serves the index of the gateway's endpoints at /, as JSON,
// or as HTML to a client that prefers it (a browser). Both bodies are
// built once, here.
func (g *Gateway) indexHandler() http.HandlerFunc {
	page := indexPage{Name: "mcpgw", Version: g.version, Endpoints: g.endpoints()}
	js, err := json.MarshalIndent(page, "", "  ")
	if err != nil {
		panic(err) // strings only
	}
	js = append(js, '\n')
	var html bytes.Buffer
	if err := template.Must(template.New("index").Parse(indexHTML)).Execute(&html, page); err != nil {
		panic(err)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if prefersHTML(r.Header.Values("Accept")) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html.Bytes())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(js)
	}
}

// endpoints lists what this gateway serves, as configured.
func (g *Gateway) endpoints() []endpoint {
	eps := []endpoint{{g.cfg.Server.MCPPath, "the MCP endpoint (Streamable HTTP, both protocol eras)"}}
	for i := range g.cfg.Endpoints {
		eps = append(eps, endpoint{g.cfg.Endpoints[i].Path, "a virtual MCP endpoint: a subset of the tools (endpoints)"})
	}
	if g.auth != nil {
		for _, p := range g.auth.MetadataPaths() {
			eps = append(eps, endpoint{p, "OAuth protected resource metadata (RFC 9728)"})
		}
		for i := range g.cfg.Endpoints {
			eps = append(eps, endpoint{authn.WellKnownPath + g.cfg.Endpoints[i].Path, "a virtual endpoint's protected resource metadata"})
		}
	}
	eps = append(eps,
		endpoint{jwksPath, "keys of the identity assertions sent to upstreams"},
		endpoint{"/healthz", "liveness"},
		endpoint{"/readyz", "readiness, with each upstream's state"},
	)
	if g.obs != nil && g.obs.tel.MetricsListen() == "" {
		eps = append(eps, endpoint{"/metrics", "Prometheus metrics"})
	}
	eps = append(eps,
		endpoint{"/admin/v1/", "the admin API (kill switches, drains, upstreams)"},
		endpoint{consolePath, "the SRE console (admin scope)"},
	)
	return eps
}

// prefersHTML reports whether an Accept header lists text/html before any
// JSON type, as browsers send it.
func prefersHTML(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			switch mt {
			case "text/html", "application/xhtml+xml":
				return true
			case "application/json", "*/*":
				return false
			}
		}
	}
	return false
}
