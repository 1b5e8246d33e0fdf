#!/usr/bin/env bash
# mod-download.sh fills the module cache for go.mod and each module file
# given (tools/go.mod, tools/chart/go.mod), and prints every module it
# downloads, so that `make test` says what it installs and the test phase
# does not pay for downloads. Modules already in the cache cost nothing.
#
#   scripts/mod-download.sh [MODFILE...]
set -euo pipefail

GO=${GO:-go}
for modfile in go.mod "$@"; do
	flags=()
	if [[ $modfile != go.mod ]]; then
		flags=(-modfile="$modfile")
	fi
	# -x logs each request; a .zip fetched from a proxy is a module
	# downloaded (a direct VCS fetch logs otherwise and is not listed).
	out=$("$GO" mod download -x "${flags[@]}" 2>&1) || {
		echo "$out" >&2
		exit 1
	}
	got=$(sed -n 's|^# get https\{0,1\}://[^/]*/\(.*\)/@v/\(.*\)\.zip: \(.*\)$|  downloaded \1@\2: \3|p' <<<"$out")
	if [[ -z $got ]]; then
		echo "mod-download: $modfile: every module already in the module cache"
	else
		echo "mod-download: $modfile: $(wc -l <<<"$got") modules downloaded into $("$GO" env GOMODCACHE)"
		echo "$got"
	fi
done
