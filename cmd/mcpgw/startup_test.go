package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/redistest"
)

// TestServeRefusesOnlyWhatValidateReports is the mechanical proof that
// validate covers every check serve makes at start-up (issue 17): any
// check serve makes that validate does not is a bug.
//
// It mutates every key of some valid configurations, guided by the JSON
// Schema generated from the configuration's types (so a new key is
// mutated without touching this test): each enumerated value, zero,
// negative and huge numbers, empty, odd and overlong strings, durations
// from a nanosecond to a century, addresses and URLs of every shape, a
// key deleted, a list emptied, an entry duplicated or dropped, a map key
// added in another case, and a key set to the value of another key of the
// same name (two listeners on one port). For each mutant it runs serve's
// own start-up (start: Load, the telemetry providers, gateway.New with a
// real redis-server, real files and real listeners; it reaches no
// upstream) and validate at its default level, and fails when:
//
//   - serve refuses a mutant that validate accepts, unless
//     validate --resolve reports it (secrets, environment, network,
//     files), naming the key and serve's error;
//   - validate reports a mutant that serve starts with.
//
// It also fails when some key of the schema is in no base configuration,
// so the mutations reach every key.
func TestServeRefusesOnlyWhatValidateReports(t *testing.T) {
	if raceDetector {
		// make test runs it in its own phase without the race detector
		// (Makefile, "startup checks"): six thousand start-ups under -race
		// take minutes, and every path they run is raced by the other
		// tests of serve and the gateway.
		t.Skip("runs without -race, in make test's startup-checks phase")
	}
	for _, k := range configs.EnvKeys() {
		t.Setenv(k, "") // An empty variable overrides nothing.
	}
	e := newStartupEnv(t)
	schema := configSchema(t)
	bases := e.bases(t)
	// Relative paths (an audit file named "x") land in the test's
	// directory.
	t.Chdir(e.dir)

	covered := map[string]bool{}
	for _, b := range slices.Sorted(maps.Keys(bases)) {
		schemaPaths(schema, bases[b], "", covered)
	}
	for _, p := range leafPaths(schema, "") {
		if !covered[p] && notInBases[p] == "" {
			t.Errorf("%s is in no base configuration of this test: add it to one, so that its mutants are checked", p)
		}
	}

	for _, doc := range bases {
		collectNamesakes(doc, "")
	}
	type job struct{ base, path, what string }
	var (
		mu   sync.Mutex
		gaps []string
		wg   sync.WaitGroup
	)
	jobs := make(chan struct {
		job
		data []byte
	})
	// Most of a start is waiting (Redis, listeners, closing), so a few
	// run at once; each has its own file and port.
	for w := range 4 {
		file := filepath.Join(e.dir, fmt.Sprintf("mutant%d.yaml", w))
		wg.Go(func() {
			for j := range jobs {
				gap, err := e.check(t.Context(), file, j.data)
				mu.Lock()
				switch {
				case err != nil:
					gaps = append(gaps, fmt.Sprintf("%s: %s %s: %v", j.base, j.path, j.what, err))
				case gap != "":
					gaps = append(gaps, fmt.Sprintf("%s: %s %s: %s", j.base, j.path, j.what, gap))
				}
				mu.Unlock()
			}
		})
	}
	n, seen := 0, map[string]bool{}
	for _, b := range slices.Sorted(maps.Keys(bases)) {
		doc := bases[b]
		data := marshal(t, doc)
		if err := e.serve(t.Context(), e.file, data); err != nil {
			t.Fatalf("base %s: serve refuses it: %v", b, err)
		}
		if p, err := e.validate(t.Context(), e.file, data, true); err != nil || len(p) > 0 {
			t.Fatalf("base %s: validate --resolve reports %v %v", b, p, err)
		}
		mutate(schema, doc, "", "", func(v any) any { return v }, func(path, shape, what string, m any) {
			key := indexes.ReplaceAllString(path, "[]") + "|" + shape + "|" + what
			data := marshal(t, m)
			if seen[key] || seen[string(data)] {
				return
			}
			seen[key], seen[string(data)] = true, true
			n++
			jobs <- struct {
				job
				data []byte
			}{job{b, path, what}, data}
		})
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d mutants of %d base configurations", n, len(bases))
	slices.Sort(gaps)
	seenKnown := map[string]bool{}
	for _, g := range gaps {
		if k := knownGap(g); k != "" {
			seenKnown[k] = true
			t.Logf("known gap (%s): %s", knownGaps[k], g)
			continue
		}
		t.Error(g)
	}
	for k, why := range knownGaps {
		if !seenKnown[k] {
			t.Errorf("known gap %q (%s) no longer occurs: take it off knownGaps", k, why)
		}
	}
}

// knownGaps are start-up refusals validate does not report yet, by the
// key whose mutants show them: each fails the test once it stops
// occurring, so the list only shrinks. Add nothing here to make the test
// pass; fix validate.
var knownGaps = map[string]string{}

// knownGap returns the key of knownGaps a gap line is about, or "".
func knownGap(gap string) string {
	_, rest, _ := strings.Cut(gap, ": ")
	path, _, _ := strings.Cut(rest, " ")
	path = indexes.ReplaceAllString(path, "[]")
	for k := range knownGaps {
		if path == k {
			return k
		}
	}
	return ""
}

// notInBases are the schema keys no base configuration sets, with why.
// Their mutants (set where absent) are still checked.
var notInBases = map[string]string{
	"redis.password.env":           "the test's redis-server has no password",
	"redis.password.file":          "the test's redis-server has no password",
	"redis.password.value":         "the test's redis-server has no password",
	"upstreams[].breaker.per_tool": "the deprecated spelling of breaker.scope",
}

// startupEnv is what the base configurations reach: an HTTP server
// answering every request (upstreams, issuer discovery, token endpoints,
// the trace collector), a real redis-server, a directory for files, and
// a port that was free for server.listen.
type startupEnv struct {
	dir   string
	url   string
	redis string
	port  int      // server.listen's port in the bases; each mutant gets its own
	file  string   // where each mutant is written
	ports sync.Map // the ports mutants being checked hold
}

func newStartupEnv(t *testing.T) *startupEnv {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	port, err := freePort(t.Context())
	require.NoError(t, err)
	return &startupEnv{dir: dir, url: srv.URL, redis: redistest.Start(t).URL(), port: port, file: filepath.Join(dir, "mcpgw.yaml")}
}

// baseFull sets every key but the state file (Redis holds the state).
const baseFull = `
server:
  listen: 127.0.0.1:{{.Port}}
  mcp_path: /mcp
  public_url: http://127.0.0.1:{{.Port}}
  max_body_bytes: 4194304
  session_idle_ttl: 30m
  session_max_age: 24h
  session_key: {file: {{.Key}}}
  allowed_origins: [https://app.example.com]
  cors: {enabled: true, allowed_origins: [https://app.example.com], max_age: 10m}
  shutdown_delay: 1s
  shutdown_timeout: 30s
  read_header_timeout: 10s
  read_body_timeout: 30s
  idle_timeout: 2m
  max_header_bytes: 32768
  max_header_count: 100
  sse: {retry: 1s, replay_ttl: 1m, replay_session_bytes: 1048576, replay_total_bytes: 67108864}
  max_unauthenticated: 256
  mrtr_state_ttl: 10m
  mrtr_hold_timeout: 60s
catalog:
  separator: "__"
  name_pattern: '^[a-zA-Z0-9_-]{1,64}$'
  page_size: 500
  list_changed_debounce: 250ms
  list_ttl: 30s
upstreams:
  - name: orders
    prefix: shop
    http:
      url: {{.URL}}/mcp
      headers: {X-Api-Key: {value: k1}, X-Env: {env: {{.Env}}}, X-File: {file: {{.Secret}}}}
      max_idle_conns: 16
      sessions: {idle_timeout: 5m, max_per_principal: 8, max: 64}
    tools: {include: ["get_*"], exclude: [get_secret]}
    timeout: 30s
    timeouts: [{match: "export_*", timeout: 2m}]
    breaker: {failures: 5, window: 30s, open_for: 10s, half_open_probes: 1, scope: tool, disabled: false}
    bulkhead: {max_concurrent: 64, max_queued: 64, queue_timeout: 1s}
    retry: {attempts: 2, backoff: 100ms, tools: ["get_*"]}
    optional: true
    max_response_bytes: 16777216
    scopes: {default: ["orders:read"], tools: [{match: "create_*", scopes: ["orders:write"]}]}
    auth: {type: static, header: X-Auth, value: {value: Bearer abc}}
    identity_assertion: {enabled: true, header: X-MCPGW-Identity, ttl: 60s, issuer: https://mcp.example.com}
    audit_arguments: redacted
    protocol_version: "2025-06-18"
    check_arguments: ["*"]
    pinning: warn
  - name: payments
    prefix: ""
    stdio: {command: {{.Command}}, args: [--stdio], env: {MODE: {value: live}, KEY: {env: {{.Env}}}, FILE: {file: {{.Secret}}}}}
  - name: crm
    sse: {url: {{.URL}}/sse, headers: {Authorization: {value: Bearer x}, X-Env: {env: {{.Env}}}, X-File: {file: {{.Secret}}}}}
    protocol_version: "2024-11-05"
    auth: {type: client_credentials, token_url: {{.URL}}/token, client_id: mcpgw, client_secret: {env: {{.Env}}}, scopes: [crm], audience: crm, resource: https://crm.example.com}
  - name: billing
    http: {url: {{.URL}}/billing}
    auth: {type: token_exchange, token_url: {{.URL}}/token, client_id: mcpgw, client_secret: {file: {{.Secret}}}, scopes: [billing], audience: billing, resource: https://billing.example.com}
log: {level: info, format: json}
auth:
  resource: http://127.0.0.1:{{.Port}}/mcp
  resource_name: mcpgw
  issuers:
    - issuer: {{.URL}}
      audience: http://127.0.0.1:{{.Port}}/mcp
      discovery: auto
      algorithms: [RS256, ES256]
      scope_claims: [scope, scp]
      roles_claim: realm_access.roles
      client_id_claims: [client_id, azp]
  clock_skew: 60s
  scopes_supported: ["mcp:tools"]
  required_scopes: ["mcp:tools"]
  admin_scope: "mcpgw:admin"
  trusted_proxies: [10.0.0.0/8, 127.0.0.1]
  cache_size: 10000
  max_token_bytes: 8192
  jwks_refresh_min_interval: 1s
policy:
  rate_limits:
    per_principal: {rate: 10, burst: 20}
    per_principal_tool: {rate: 2, burst: 5}
    per_upstream: {rate: 200, burst: 400}
    per_upstream_overrides: {orders: {rate: 20, burst: 20}}
    backend: redis
    on_redis_error: local
    max_keys: 100000
  kill_switches: {resync_interval: 500ms}
  rules:
    - {name: no-export, effect: deny, when: 'tool.name == "shop__export"'}
redis: {url: "{{.Redis}}", key_prefix: "mcpgw:", dial_timeout: 2s, command_timeout: 2s}
audit:
  sinks: [{type: file, path: {{.Dir}}/audit.jsonl}, {type: stdout}]
  queue_size: 8192
  stuck_after: 2s
telemetry:
  tracing:
    exporter: otlp_http
    endpoint: "{{.URL}}"
    sample_ratio: 0.5
    headers: {X-Key: {value: k}, X-Env: {env: {{.Env}}}, X-File: {file: {{.Secret}}}}
  metrics: {listen: "127.0.0.1:0"}
  profiling: true
pinning: {mode: warn, lock_file: {{.Dir}}/mcpgw.lock, new_tools: allow}
endpoints:
  - path: /mcp/support
    tools: ["shop__get_*"]
    when: 'tool.upstream == "orders"'
    required_scopes: ["mcp:tools"]
    instructions: Support tools.
`

// baseLocal is one replica without auth or Redis: kill switches in a
// state file, local rate limits, a gRPC trace exporter.
const baseLocal = `
server:
  listen: "127.0.0.1:{{.Port}}"
  session_key: {env: {{.KeyEnv}}}
upstreams:
  - name: orders
    http: {url: {{.URL}}/mcp}
    auth: {type: static, value: {file: {{.Secret}}}}
  - name: search
    http: {url: {{.URL}}/search}
    auth: {type: client_credentials, token_url: {{.URL}}/token, client_id: mcpgw, client_secret: {value: s}}
  - name: lookup
    http: {url: {{.URL}}/lookup}
    auth: {type: static, value: {env: {{.Env}}}}
policy:
  kill_switches: {state_file: {{.Dir}}/state.json}
  rate_limits: {backend: local, per_principal: {rate: 0.5}}
telemetry:
  tracing: {exporter: otlp_grpc, endpoint: "{{.URL}}"}
`

// baseMinimal sets only what has no default.
const baseMinimal = `
server:
  listen: "127.0.0.1:{{.Port}}"
  session_key: {value: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=}
upstreams: [{name: orders, http: {url: "{{.URL}}/mcp"}}]
`

// bases returns the base configurations as YAML documents. Each must
// start and validate clean, with --resolve too.
func (e *startupEnv) bases(t *testing.T) map[string]any {
	t.Helper()
	secret, key := filepath.Join(e.dir, "secret"), filepath.Join(e.dir, "session.key")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	require.NoError(t, os.WriteFile(key, []byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600))
	const envName, keyEnv = "MCPGW_STARTUP_TEST_SECRET", "MCPGW_STARTUP_TEST_KEY"
	t.Setenv(envName, "from-env")
	t.Setenv(keyEnv, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	command, err := filepath.Abs(os.Args[0])
	require.NoError(t, err)
	vars := map[string]any{
		"Port": e.port, "URL": e.url, "Redis": e.redis, "Dir": e.dir,
		"Command": command, "Env": envName, "Secret": secret, "Key": key, "KeyEnv": keyEnv,
	}
	out := map[string]any{}
	for name, text := range map[string]string{"full": baseFull, "local": baseLocal, "minimal": baseMinimal} {
		var b strings.Builder
		require.NoError(t, template.Must(template.New(name).Parse(text)).Execute(&b, vars))
		var doc any
		require.NoError(t, yaml.Unmarshal([]byte(b.String()), &doc), name)
		out[name] = doc
	}
	return out
}

// serve runs serve's start-up on data, written to file, and closes what
// it built.
func (e *startupEnv) serve(ctx context.Context, file string, data []byte) error {
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	s, err := start(ctx, file, io.Discard)
	if err != nil {
		return err
	}
	s.close(ctx)
	return nil
}

// validate runs validate on data, written to file.
func (e *startupEnv) validate(ctx context.Context, file string, data []byte, resolve bool) ([]configs.Problem, error) {
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, err
	}
	return validateFile(ctx, file, resolve), nil
}

// check compares serve's verdict on one mutant with validate's; it
// returns the disagreement, or "".
func (e *startupEnv) check(ctx context.Context, file string, data []byte) (string, error) {
	// server.listen gets a port that was free a moment ago, wherever the
	// mutant spells it (another listener given its value keeps it). A
	// port taken meanwhile (by another process, or a connection's local
	// port) is tried again with another: a mutant whose listeners collide
	// fails every time.
	var serveErr error
	for range 3 {
		p, err := e.reservePort(ctx)
		if err != nil {
			return "", err
		}
		mutant := bytes.ReplaceAll(data, []byte(":"+strconv.Itoa(e.port)), []byte(":"+strconv.Itoa(p)))
		serveErr = e.serve(ctx, file, mutant)
		e.ports.Delete(p)
		if !errors.Is(serveErr, syscall.EADDRINUSE) {
			break
		}
	}
	offline, err := e.validate(ctx, file, data, false)
	if err != nil {
		return "", err
	}
	switch {
	case serveErr == nil && len(offline) > 0:
		return fmt.Sprintf("validate reports %v, but serve starts", offline), nil
	case serveErr != nil && len(offline) == 0:
		resolved, err := e.validate(ctx, file, data, true)
		if err != nil {
			return "", err
		}
		if len(resolved) == 0 {
			return fmt.Sprintf("serve refuses to start (%v), but validate and validate --resolve accept it", serveErr), nil
		}
	}
	return "", nil
}

// reservePort returns a port that was free a moment ago and that no
// other mutant of this test holds.
func (e *startupEnv) reservePort(ctx context.Context) (int, error) {
	for {
		p, err := freePort(ctx)
		if err != nil {
			return 0, err
		}
		if _, taken := e.ports.LoadOrStore(p, true); !taken {
			return p, nil
		}
	}
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil //nolint:forcetypeassert // a tcp listener's address.
}

func marshal(t *testing.T, doc any) []byte {
	t.Helper()
	b, err := yaml.Marshal(doc)
	require.NoError(t, err)
	return b
}

// configSchema is the JSON Schema mcpgw config schema prints.
func configSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := configs.JSONSchema()
	require.NoError(t, err)
	var s map[string]any
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}

// The shapes of schema nodes.
func props(s map[string]any) map[string]any {
	p, _ := s["properties"].(map[string]any)
	return p
}

func additional(s map[string]any) map[string]any {
	a, _ := s["additionalProperties"].(map[string]any)
	return a
}

func items(s map[string]any) map[string]any {
	i, _ := s["items"].(map[string]any)
	return i
}

// leafPaths lists the scalar keys of schema s, as "a.b[].c[k]".
func leafPaths(s map[string]any, path string) []string {
	switch {
	case props(s) != nil:
		var out []string
		for _, k := range slices.Sorted(maps.Keys(props(s))) {
			out = append(out, leafPaths(props(s)[k].(map[string]any), joinKey(path, k))...) //nolint:forcetypeassert // the schema's shape.
		}
		return out
	case additional(s) != nil:
		return leafPaths(additional(s), path+"[k]")
	case items(s) != nil:
		return leafPaths(items(s), path+"[]")
	default:
		return []string{path}
	}
}

// schemaPaths marks in covered the scalar keys of schema s that doc sets.
func schemaPaths(s map[string]any, doc any, path string, covered map[string]bool) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			switch {
			case props(s) != nil:
				if ps, ok := props(s)[k].(map[string]any); ok {
					schemaPaths(ps, v, joinKey(path, k), covered)
				}
			case additional(s) != nil:
				schemaPaths(additional(s), v, path+"[k]", covered)
			}
		}
	case []any:
		for _, v := range d {
			schemaPaths(items(s), v, path+"[]", covered)
		}
	default:
		covered[path] = true
	}
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// mutate calls emit with every mutant of doc, the node at path whose
// schema is s; rebuild returns the whole document with this node
// replaced. Nothing is modified in place: a mutant shares the parts of
// the document it does not change.
//
// shape names the object the node is in (its keys, and its type when it
// has one): the test mutates a key once per shape of its parent, not once
// per list entry of that shape.
func mutate(s map[string]any, doc any, path, shape string, rebuild func(any) any, emit func(path, shape, what string, mutant any)) {
	set := func(what string, v any) { emit(path, shape, what, rebuild(v)) }
	switch d := doc.(type) {
	case map[string]any:
		with := func(k string, v any) map[string]any {
			c := maps.Clone(d)
			c[k] = v
			return c
		}
		without := func(k string) map[string]any {
			c := maps.Clone(d)
			delete(c, k)
			return c
		}
		set("given an unknown key", with("zz_unknown", "x"))
		set("retyped as a list", []any{d})
		if ps := props(s); ps != nil {
			inner := shapeOf(d)
			for _, k := range slices.Sorted(maps.Keys(ps)) {
				ks := ps[k].(map[string]any) //nolint:forcetypeassert // the schema's shape.
				kp := joinKey(path, k)
				if v, ok := d[k]; ok {
					emit(kp, inner, "deleted", rebuild(without(k)))
					mutate(ks, v, kp, inner, func(nv any) any { return rebuild(with(k, nv)) }, emit)
					continue
				}
				for _, v := range absentValues(ks, kp) {
					emit(kp, inner, fmt.Sprintf("set to %s", show(v)), rebuild(with(k, v)))
				}
			}
			return
		}
		vs := additional(s)
		set("emptied", map[string]any{})
		keys := slices.Sorted(maps.Keys(d))
		for _, k := range keys {
			kp := path + "[" + k + "]"
			emit(kp, shape, "deleted", rebuild(without(k)))
			mutate(vs, d[k], kp, shape, func(nv any) any { return rebuild(with(k, nv)) }, emit)
		}
		if len(keys) > 0 {
			first := d[keys[0]]
			for _, k := range append(slices.Clone(mapKeys), strings.ToUpper(keys[0]), strings.ToLower(keys[0]), keys[0]+" ") {
				if _, ok := d[k]; !ok {
					emit(path+"["+k+"]", shape, "added", rebuild(with(k, first)))
				}
			}
		}
	case []any:
		set("emptied", []any{})
		set("retyped as a mapping", map[string]any{"a": "b"})
		is := items(s)
		for i, v := range d {
			ip := path + "[" + strconv.Itoa(i) + "]"
			emit(ip, shape, "dropped", rebuild(slices.Delete(slices.Clone(d), i, i+1)))
			emit(ip, shape, "duplicated", rebuild(append(slices.Clone(d), v)))
			mutate(is, v, ip, shape, func(nv any) any {
				c := slices.Clone(d)
				c[i] = nv
				return rebuild(c)
			}, emit)
		}
		if props(is) == nil && additional(is) == nil {
			for _, v := range scalars(is, nil) {
				emit(path+"[]", shape, fmt.Sprintf("given %s", show(v)), rebuild(append(slices.Clone(d), v)))
			}
		}
	default:
		set("retyped as a list", []any{d})
		for _, v := range scalars(s, d) {
			set(fmt.Sprintf("= %s", show(v)), v)
		}
		for _, v := range namesakes[lastKey(path)] {
			if v != d {
				set(fmt.Sprintf("= %s (the value of another %s)", show(v), lastKey(path)), v)
			}
		}
	}
}

// shapeOf names an object by its keys and its type.
func shapeOf(d map[string]any) string {
	s := strings.Join(slices.Sorted(maps.Keys(d)), ",")
	if t, ok := d["type"].(string); ok {
		s += " type=" + t
	}
	return s
}

// indexes matches list indexes in a path.
var indexes = regexp.MustCompile(`\[[0-9]+\]`)

// namesakes are the values each key name has somewhere in the base
// configurations (collectNamesakes).
var namesakes = map[string][]any{}

// instances are the values each key has in the bases, by path with list
// indexes left out (collectNamesakes).
var instances = map[string][]any{}

// collectNamesakes adds the values of doc to namesakes and instances.
func collectNamesakes(doc any, path string) {
	np := indexes.ReplaceAllString(path, "[]")
	if !slices.ContainsFunc(instances[np], func(v any) bool { return reflect.DeepEqual(v, doc) }) {
		instances[np] = append(instances[np], doc)
	}
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			collectNamesakes(v, joinKey(path, k))
		}
	case []any:
		for i, v := range d {
			collectNamesakes(v, path+"["+strconv.Itoa(i)+"]")
		}
	default:
		k := lastKey(path)
		if !slices.Contains(namesakes[k], doc) {
			namesakes[k] = append(namesakes[k], doc)
		}
	}
}

func lastKey(path string) string {
	if i := strings.LastIndexAny(path, ".]"); i >= 0 && path[i] == '.' {
		return path[i+1:]
	}
	return path
}

// absentValues are what a key absent here is set to: what the same key
// is set to elsewhere in the bases (an upstream's auth block moved to a
// stdio upstream), else, for a key no base sets, its scalars, or each of
// its scalar keys alone when it is an object.
func absentValues(s map[string]any, path string) []any {
	if vs := instances[indexes.ReplaceAllString(path, "[]")]; len(vs) > 0 {
		return vs
	}
	if ps := props(s); ps != nil {
		var out []any
		for _, k := range slices.Sorted(maps.Keys(ps)) {
			ks := ps[k].(map[string]any) //nolint:forcetypeassert // the schema's shape.
			if props(ks) != nil || additional(ks) != nil || items(ks) != nil {
				continue
			}
			for _, v := range scalars(ks, nil) {
				out = append(out, map[string]any{k: v})
			}
		}
		return out
	}
	if props(s) == nil && additional(s) == nil && items(s) == nil {
		return scalars(s, nil)
	}
	return nil
}

// mapKeys are the keys added to maps.
var mapKeys = []string{"", "x", "X-Mcpgw-Test", "Host", "Content-Type", "a b", "a=b", "orders", "nope"}

// The values scalars of each kind are set to.
var (
	strs = []string{
		"", " ", "x", "X", "x y", "*", "[", "-", "/", strings.Repeat("a", 61), strings.Repeat("a", 300), "é", "a\nb", "\x01",
		"http://127.0.0.1:1", "https://h.example/p", "http://u:p@127.0.0.1:1/", "ftp://x", "http://", "redis://127.0.0.1:1/0",
		"127.0.0.1:0", "x.invalid:0", "0.0.0.0:0", "127.0.0.1:99999", "10.0.0.0/8",
		"${MCPGW_STARTUP_TEST_UNSET}", "HS256", "offline_access", "tool.name == 1",
	}
	durations = []string{"0", "-1s", "1ns", "1ms", "1s", "90s", "1h", "8760h", "2562047h", "x"}
	ints      = []int64{0, -1, 1, 2, 15, 16, 1023, 1024, 1 << 20, 1<<20 + 1, 10000, 10001, 65536, math.MaxInt32, math.MaxInt32 + 1, math.MaxInt64}
	floats    = []float64{0, -1, 0.001, 0.5, 1, 1.5, 1e9, math.Inf(1), math.NaN()}
)

// scalars returns the values of a scalar of schema s whose current value
// is cur (nil when absent).
func scalars(s map[string]any, cur any) []any {
	var out []any
	add := func(v any) {
		if v != cur {
			out = append(out, v)
		}
	}
	switch s["type"] {
	case "string":
		if e, ok := s["enum"].([]any); ok {
			for _, v := range e {
				add(v)
			}
			add("")
			add("nonsense")
			return out
		}
		if _, ok := s["pattern"]; ok {
			for _, v := range durations {
				add(v)
			}
			return out
		}
		for _, v := range strs {
			add(v)
		}
		if c, ok := cur.(string); ok && c != "" {
			for _, v := range []string{c + "x", strings.ToUpper(c), " " + c, c + " ", c + "/", c[:len(c)/2]} {
				add(v)
			}
		}
	case "integer":
		for _, v := range ints {
			add(int(v))
		}
		if c, ok := cur.(int); ok {
			add(c - 1)
			add(c + 1)
		}
	case "number":
		for _, v := range floats {
			add(v)
		}
	case "boolean":
		add(true)
		add(false)
	}
	return out
}

// show spells a value in a failure message.
func show(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
