#!/usr/bin/env bash
# make demo: three demo upstreams (customers and orders over Streamable HTTP,
# payments over stdio) behind mcpgw on 127.0.0.1. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
RUN=$(mktemp -d "${TMPDIR:-/tmp}/mcpgw-demo.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

# start_upstream NAME: starts a demo upstream on a free loopback port and
# prints its MCP URL.
start_upstream() {
  local name=$1 out="$RUN/$1.out"
  "$BIN/demo-upstream" -server "$name" -listen 127.0.0.1:0 >"$out" 2>"$RUN/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q '^MCP_URL=' "$out" 2>/dev/null; then
      sed -n 's/^MCP_URL=//p' "$out"
      return
    fi
    sleep 0.1
  done
  echo "demo: upstream $name did not start; see $RUN/$name.log" >&2
  exit 1
}

export CUSTOMERS_URL ORDERS_URL DEMO_UPSTREAM_BIN
CUSTOMERS_URL=$(start_upstream customers)
ORDERS_URL=$(start_upstream orders)
DEMO_UPSTREAM_BIN=$(cd "$BIN" && pwd)/demo-upstream

# Prefer the documented port; fall back to any free one.
listen=${MCPGW_SERVER_LISTEN:-127.0.0.1:9190}
if (exec 3<>"/dev/tcp/${listen%:*}/${listen##*:}") 2>/dev/null; then
  echo "demo: ${listen} is taken; using a free port" >&2
  listen=127.0.0.1:0
fi
export MCPGW_SERVER_LISTEN=$listen MCPGW_LOG_FORMAT=${MCPGW_LOG_FORMAT:-text}

"$BIN/mcpgw" serve -config configs/demo.yaml 2>"$RUN/mcpgw.log" &
pids+=($!)
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's/.*msg="mcpgw listening" addr=\([^ ]*\).*/\1/p' "$RUN/mcpgw.log" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
if [ -z "$addr" ]; then
  echo "demo: mcpgw did not start:" >&2; cat "$RUN/mcpgw.log" >&2; exit 1
fi
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
for _ in $(seq 100); do
  ready 2>/dev/null && break
  sleep 0.1
done
url="$base/mcp"

cat <<MSG

  mcpgw demo is running.

  MCP URL:    $url
  Readiness:  $base/readyz
  Upstreams:  customers ($CUSTOMERS_URL, go-sdk)
              orders    ($ORDERS_URL, mcp-go)
              payments  (stdio, mcp-go)
  Auth:       none (demo without OAuth binds loopback only)

  Claude Desktop (claude_desktop_config.json, via the mcp-remote bridge):
    { "mcpServers": { "mcpgw": { "command": "npx", "args": ["-y", "mcp-remote", "$url"] } } }

  Claude Code:
    claude mcp add --transport http mcpgw $url

  VS Code (.vscode/mcp.json):
    { "servers": { "mcpgw": { "type": "http", "url": "$url" } } }

  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "mcpgw": { "url": "$url" } } }

  Try it:
    curl -s -D - -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
      -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' $url

  Logs: $RUN/*.log    Stop: Ctrl-C
MSG
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping" >&2
