#!/usr/bin/env bash
# make demo: three demo upstreams (customers and orders over Streamable HTTP,
# payments over stdio) behind mcpgw on 127.0.0.1 with OAuth on, and a
# DEVELOPMENT-ONLY OpenID issuer (test/devissuer) that signs the tokens.
# DEMO_AUTH=0 (make demo-noauth) runs configs/demo.yaml instead: no auth,
# no issuer, no token.
#
# It prints the MCP URL, the token, the console URL and host configs, then
# a line saying how to watch the audit. Logs and the audit stream stay in
# the folder it names (DEMO_DIR, default a fresh /tmp/mcpgw-demo.XXXXXX).
# Ctrl-C or SIGTERM stops every process it started, and waits for them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
AUTH=${DEMO_AUTH:-1}
RUN=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-demo.XXXXXX")}
mkdir -p "$RUN"
RUN=$(cd "$RUN" && pwd)

# Every process started is recorded here, in this shell (never in a
# command substitution's subshell, where it would be lost).
pids=()
stopping=0
cleanup() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # mcpgw drains and stops its stdio upstream; give everyone a bounded
  # time, then kill what is left.
  for _ in $(seq 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

fail() {
  echo "demo: $1; logs in $RUN" >&2
  [ -n "${2:-}" ] && [ -f "$2" ] && cat "$2" >&2
  exit 1
}

# await FILE PATTERN: waits until FILE has a line matching PATTERN. The
# file exists from the start (the caller creates it before starting the
# process), so a process that has not written yet is no error.
await() {
  for _ in $(seq 150); do
    grep -q "$2" "$1" && return 0
    sleep 0.1
  done
  return 1
}

# start OUT LOG CMD...: runs CMD in the background with stdout to OUT and
# stderr to LOG, both created first, and records its PID.
start() {
  local out=$1 log=$2
  shift 2
  : >"$out"
  : >"$log"
  "$@" >>"$out" 2>>"$log" &
  pids+=($!)
}

# start_upstream NAME VAR: starts a demo upstream on a free loopback port
# and sets VAR to its MCP URL.
start_upstream() {
  local name=$1 out="$RUN/$1.out"
  start "$out" "$RUN/$name.log" "$BIN/demo-upstream" -server "$name" -listen 127.0.0.1:0
  await "$out" '^MCP_URL=' || fail "upstream $name did not start" "$RUN/$name.log"
  printf -v "$2" '%s' "$(sed -n 's/^MCP_URL=//p' "$out")"
}

export CUSTOMERS_URL ORDERS_URL DEMO_UPSTREAM_BIN
start_upstream customers CUSTOMERS_URL
start_upstream orders ORDERS_URL
DEMO_UPSTREAM_BIN=$(cd "$BIN" && pwd)/demo-upstream

# Prefer the documented port; fall back to the next free ones. The port
# must be known before the gateway starts: it is part of the resource URI
# that tokens name as their audience.
taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
listen=${MCPGW_SERVER_LISTEN:-127.0.0.1:9190}
port=${listen##*:}
while taken "127.0.0.1:$port"; do
  port=$((port + 1))
  [ "$port" -gt $((${listen##*:} + 50)) ] && fail "no free port near ${listen}"
done
[ "$port" != "${listen##*:}" ] && echo "demo: ${listen} is taken; using 127.0.0.1:$port" >&2
listen=127.0.0.1:$port
export MCPGW_SERVER_LISTEN=$listen MCPGW_LOG_FORMAT=${MCPGW_LOG_FORMAT:-text}
export MCPGW_RESOURCE="http://$listen/mcp"

config=configs/demo.yaml
TOKEN=""
if [ "$AUTH" != 0 ]; then
  config=configs/demo-auth.yaml
  # The development issuer: DEV ONLY, it signs a token for anyone who
  # asks. The demo's token may also use the console (mcpgw:admin).
  keyfile="$RUN/devissuer.json"
  scope="mcp:tools orders:write mcpgw:admin"
  start "$RUN/devissuer.out" "$RUN/devissuer.log" "$BIN/mcpgw-devissuer" -listen 127.0.0.1:0 \
    -audience "$MCPGW_RESOURCE" -keyfile "$keyfile" -sub demo-user -scope "$scope"
  await "$RUN/devissuer.out" '^TOKEN=' || fail "the development issuer did not start" "$RUN/devissuer.log"
  ISSUER_URL=$(sed -n 's/^ISSUER_URL=//p' "$RUN/devissuer.out")
  TOKEN=$(sed -n 's/^TOKEN=//p' "$RUN/devissuer.out")
  [ -n "$ISSUER_URL" ] && [ -n "$TOKEN" ] || fail "the development issuer printed no token" "$RUN/devissuer.log"
  export ISSUER_URL
fi

# The audit stream (stdout) goes to a file of its own, not the terminal.
start "$RUN/audit.jsonl" "$RUN/mcpgw.log" "$BIN/mcpgw" serve -config "$config"
await "$RUN/mcpgw.log" 'msg="mcpgw listening"' || fail "mcpgw did not start" "$RUN/mcpgw.log"
addr=$(sed -n 's/.*msg="mcpgw listening" addr=\([^ ]*\).*/\1/p' "$RUN/mcpgw.log" | head -1)
base="http://$addr"
# Wait for /readyz (plain bash, so the demo needs no curl).
ready() {
  exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}" || return 1
  printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
  local status
  read -r _ status _ <&3
  exec 3>&-
  [ "$status" = 200 ]
}
for _ in $(seq 150); do
  ready 2>/dev/null && break
  sleep 0.1
done
url="$base/mcp"

if [ -n "$TOKEN" ]; then
  header=' --header "Authorization: Bearer $TOKEN"'
  json_header=', "headers": { "Authorization": "Bearer <token>" }'
  cat <<MSG

  MCP URL:  $url
  Token:    export TOKEN=$TOKEN
  Console:  $base/admin/ui/   (sign in with the token)
MSG
else
  header=""
  json_header=""
  cat <<MSG

  MCP URL:  $url
  Console:  $base/admin/ui/
MSG
fi
cat <<MSG

  Claude Code:
    claude mcp add --transport http mcpgw $url$header
  VS Code (.vscode/mcp.json):
    { "servers": { "mcpgw": { "type": "http", "url": "$url"$json_header } } }
  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "mcpgw": { "url": "$url"$json_header } } }

  Logs in $RUN; Ctrl-C stops everything.
  Watch the audit: tail -f $RUN/audit.jsonl   (or the console's live tail)
MSG
# Returns when a process exits on its own, or a signal arrives.
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping (logs in $RUN)" >&2
