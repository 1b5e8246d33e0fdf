#!/usr/bin/env bash
# ensure-chromium.sh makes sure Debian's chromium is installed, for the
# console's browser test (gateway/console, driven by chromedp). It is
# idempotent: when chromium is already there it only says so. Otherwise it
# installs the Debian package chromium with apt-get (through sudo when not
# root), running apt-get update first when the package is not known yet.
# It prints what it did.
#
# The test looks for the browser at $MCPGW_CHROMIUM, then /usr/bin/chromium.
set -euo pipefail

bin=${MCPGW_CHROMIUM:-/usr/bin/chromium}
if [[ -x $bin ]]; then
	echo "ensure-chromium: chromium already installed: $bin ($("$bin" --version 2>/dev/null | head -n1))"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: chromium is missing and apt-get is not available; install Chromium by hand and set MCPGW_CHROMIUM to its path" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "ensure-chromium: chromium is missing, not root and no sudo; install chromium by hand" >&2
		exit 1
	fi
	sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
# apt-cache policy prints "Candidate: (none)" for a package the lists do not
# know, and nothing useful before the first apt-get update.
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [^(]'; then
	echo "ensure-chromium: running apt-get update"
	"${sudo[@]}" apt-get update -qq
fi
echo "ensure-chromium: installing chromium with apt-get"
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null

if [[ ! -x /usr/bin/chromium ]]; then
	echo "ensure-chromium: apt-get installed chromium but /usr/bin/chromium is missing" >&2
	exit 1
fi
echo "ensure-chromium: installed /usr/bin/chromium ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
