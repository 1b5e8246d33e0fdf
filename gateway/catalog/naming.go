package catalog

import "strings"

// GatewayScheme starts the reversible form of a resource URI that more than
// one upstream exposes: mcpgw://<upstream>/<original-uri>.
const GatewayScheme = "mcpgw://"

// ExposedName is the name hosts see for an upstream tool or prompt:
// prefix + sep + name, or name when prefix is "". It is the one place that
// owns the naming scheme.
func ExposedName(prefix, sep, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + sep + name
}

// GatewayURI is the reversible gateway form of an upstream's resource URI
// or URI template: mcpgw://<upstream>/<uri>, the original appended
// verbatim.
func GatewayURI(upstream, uri string) string {
	return GatewayScheme + upstream + "/" + uri
}

// ParseGatewayURI reverses GatewayURI. It reports false when uri is not in
// the gateway form or either part is empty. It does not allocate.
func ParseGatewayURI(uri string) (upstream, original string, ok bool) {
	rest, ok := strings.CutPrefix(uri, GatewayScheme)
	if !ok {
		return "", "", false
	}
	upstream, original, ok = strings.Cut(rest, "/")
	if !ok || upstream == "" || original == "" {
		return "", "", false
	}
	return upstream, original, true
}
