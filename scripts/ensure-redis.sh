#!/usr/bin/env bash
# ensure-redis.sh makes sure redis-server is on PATH, for the tests that run
# a real Redis (internal/redistest). It is idempotent: when redis-server is
# already there it only says so. Otherwise it installs the Debian package
# redis-server with apt-get (through sudo when not root), running
# apt-get update first when the package is not known yet. It prints what it
# did.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	echo "ensure-redis: redis-server already installed: $(command -v redis-server) ($(redis-server --version | head -n1))"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-redis: redis-server is missing and apt-get is not available; install Redis 6.2 or later by hand" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-redis: redis-server is missing, not root and no sudo; install redis-server by hand" >&2
		exit 1
	fi
	sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
# apt-cache policy prints "Candidate: (none)" for a package the lists do not
# know, and nothing useful before the first apt-get update.
if ! apt-cache policy redis-server 2>/dev/null | grep -q 'Candidate: [^(]'; then
	echo "ensure-redis: running apt-get update"
	"${sudo[@]}" apt-get update -qq
fi
echo "ensure-redis: installing redis-server with apt-get"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null

# The package starts a system service on some machines; the tests start
# their own servers on free ports and do not need it.
if ! command -v redis-server >/dev/null 2>&1; then
	echo "ensure-redis: apt-get installed redis-server but it is not on PATH" >&2
	exit 1
fi
echo "ensure-redis: installed $(command -v redis-server) ($(redis-server --version | head -n1))"
