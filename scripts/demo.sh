#!/usr/bin/env bash
# make demo: three demo upstreams (customers and orders over Streamable HTTP,
# payments over stdio) behind mcpgw on 127.0.0.1 with OAuth on, and a
# DEVELOPMENT-ONLY OpenID issuer (test/devissuer) that signs the tokens.
# Ctrl-C stops everything.
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

# Prefer the documented port; fall back to the next free ones. The port
# must be known before the gateway starts: it is part of the resource URI
# that tokens name as their audience.
taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
listen=${MCPGW_SERVER_LISTEN:-127.0.0.1:9190}
port=${listen##*:}
while taken "127.0.0.1:$port"; do
  port=$((port + 1))
  [ "$port" -gt $((${listen##*:} + 50)) ] && { echo "demo: no free port near ${listen}" >&2; exit 1; }
done
[ "$port" != "${listen##*:}" ] && echo "demo: ${listen} is taken; using 127.0.0.1:$port" >&2
listen=127.0.0.1:$port
export MCPGW_SERVER_LISTEN=$listen MCPGW_LOG_FORMAT=${MCPGW_LOG_FORMAT:-text}
export MCPGW_RESOURCE="http://$listen/mcp"

# The development issuer: DEV ONLY, it signs a token for anyone who asks.
keyfile="$RUN/devissuer.json"
scope="mcp:tools orders:write"
"$BIN/mcpgw-devissuer" -listen 127.0.0.1:0 -audience "$MCPGW_RESOURCE" -keyfile "$keyfile" \
  -sub demo-user -scope "$scope" >"$RUN/devissuer.out" 2>"$RUN/devissuer.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q '^TOKEN=' "$RUN/devissuer.out" 2>/dev/null && break
  sleep 0.1
done
ISSUER_URL=$(sed -n 's/^ISSUER_URL=//p' "$RUN/devissuer.out")
TOKEN=$(sed -n 's/^TOKEN=//p' "$RUN/devissuer.out")
if [ -z "$ISSUER_URL" ] || [ -z "$TOKEN" ]; then
  echo "demo: the development issuer did not start:" >&2; cat "$RUN/devissuer.log" >&2; exit 1
fi
export ISSUER_URL

"$BIN/mcpgw" serve -config configs/demo-auth.yaml 2>"$RUN/mcpgw.log" &
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
  Auth:       OAuth 2.1 resource server; tokens from the development issuer
              $ISSUER_URL
              *** DEV ONLY: that issuer signs a token for anyone who asks. ***
  Metadata:   $base/.well-known/oauth-protected-resource/mcp

  A token (user demo-user, scopes "$scope", valid 1h):
    export TOKEN=$TOKEN

  Mint more (other users or scopes; add mcpgw:admin for the admin API):
    $BIN/mcpgw-devissuer mint -keyfile $keyfile -sub alice -scope "mcp:tools"
  or ask its token endpoint (client credentials):
    curl -s -u mcpgw-dev:dev-secret -d grant_type=client_credentials -d 'scope=mcp:tools' $ISSUER_URL/token

  The development issuer has no login page, so hosts cannot run the OAuth
  flow against it; give them the token as a header (see README.md,
  "Connecting through OAuth", for a real IdP):

  Claude Code:
    claude mcp add --transport http mcpgw $url --header "Authorization: Bearer \$TOKEN"

  VS Code (.vscode/mcp.json):
    { "servers": { "mcpgw": { "type": "http", "url": "$url", "headers": { "Authorization": "Bearer <token>" } } } }

  Cursor (~/.cursor/mcp.json):
    { "mcpServers": { "mcpgw": { "url": "$url", "headers": { "Authorization": "Bearer <token>" } } } }

  Try it (after the export above):
    curl -s -D - -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\
      -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}' $url
  Without the header the answer is 401 with a WWW-Authenticate challenge.

  Logs: $RUN/*.log    Stop: Ctrl-C
MSG
wait -n "${pids[@]}" || true
echo "demo: a process exited; stopping" >&2
