package configs

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// JSONSchema returns the JSON Schema (draft 2020-12) of the configuration
// file, generated from Config's types: every key with its type, unknown
// keys refused (additionalProperties: false), the enumerated values, and
// durations as strings such as "30s". A string value may be a ${NAME}
// reference wherever a string is expected; serve expands it.
func JSONSchema() ([]byte, error) {
	s := schemaOf(reflect.TypeFor[Config]())
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/mcpgw/mcpgw/docs/mcpgw.schema.json"
	s["title"] = "mcpgw configuration"
	return json.MarshalIndent(s, "", "  ")
}

// schemaEnums are the enumerated values of string fields, by Go type and
// field name.
func schemaEnums() map[string][]string {
	return map[string][]string{
		"Log.Level":                {"debug", "info", "warn", "error"},
		"Log.Format":               {"json", "text"},
		"AuthIssuer.Discovery":     {DiscoveryAuto, DiscoveryOIDC, DiscoveryOAuth},
		"UpstreamAuth.Type":        {UpstreamAuthNone, UpstreamAuthStatic, UpstreamAuthClientCredentials, UpstreamAuthTokenExchange},
		"RateLimits.Backend":       {"local", "redis"},
		"RateLimits.OnRedisError":  {"", OnRedisErrorLocal, OnRedisErrorRefuse},
		"AuditSink.Type":           {"stdout", "file"},
		"Tracing.Exporter":         {"none", "otlp_grpc", "otlp_http"},
		"Upstream.ProtocolVersion": append([]string{"", ProtocolAuto}, ProtocolVersions()...),
		"Upstream.AuditArguments":  {"", string(ArgumentsNone), string(ArgumentsRedacted), string(ArgumentsFull)},
		"Upstream.Pinning":         {"", PinningOff, PinningWarn, PinningEnforce},
		"Pinning.Mode":             {"", PinningOff, PinningWarn, PinningEnforce},
		"Pinning.NewTools":         {"", NewToolsAllow, NewToolsQuarantine},
		"Breaker.Scope":            {"", BreakerScopeTool, BreakerScopeUpstream},
		"Rule.Effect":              {"", RuleDeny, RuleAllow},
	}
}

// durationPattern is a Go duration or a ${NAME} reference.
const durationPattern = `^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+|0)$`

func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return map[string]any{"type": "string", "pattern": durationPattern}
	case t == reflect.TypeFor[SecretRef]():
		return map[string]any{
			"type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1,
			"properties": map[string]any{
				"env": map[string]any{"type": "string"}, "file": map[string]any{"type": "string"}, "value": map[string]any{"type": "string"},
			},
		}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		enums := schemaEnums()
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			fs := schemaOf(f.Type)
			if e := enums[t.Name()+"."+f.Name]; len(e) > 0 && fs["type"] == "string" {
				fs["enum"] = e
			}
			props[tag] = fs
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	default:
		return map[string]any{}
	}
}
