#!/usr/bin/env bash
# mod-download.sh fills the module cache for go.mod and each module file
# given (tools/go.mod, tools/chart/go.mod), all at once since the time is
# the network's, and prints every module it downloads, so that make test
# says what it installs and its later phases do not pay for downloads.
# Modules already in the cache cost nothing.
#
#   scripts/mod-download.sh [MODFILE...]
set -euo pipefail

GO=${GO:-go}
modfiles=(go.mod "$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pids=()
for i in "${!modfiles[@]}"; do
	flags=()
	if [[ ${modfiles[$i]} != go.mod ]]; then
		flags=(-modfile="${modfiles[$i]}")
	fi
	# -x logs each request: a .zip fetched from a proxy is a module
	# downloaded (a direct VCS fetch logs otherwise and is not listed).
	"$GO" mod download -x "${flags[@]}" >"$tmp/$i" 2>&1 &
	pids+=($!)
done

rc=0
for i in "${!modfiles[@]}"; do
	if ! wait "${pids[$i]}"; then
		echo "mod-download: ${modfiles[$i]}: go mod download failed:" >&2
		grep -v '^# get ' "$tmp/$i" >&2 || true
		rc=1
		continue
	fi
	got=$(sed -n 's|^# get https\{0,1\}://[^/]*/\(.*\)/@v/\(.*\)\.zip: \(.*\)$|  downloaded \1@\2: \3|p' "$tmp/$i")
	if [[ -z $got ]]; then
		echo "mod-download: ${modfiles[$i]}: every module already in the module cache"
	else
		echo "mod-download: ${modfiles[$i]}: $(wc -l <<<"$got") modules downloaded into $("$GO" env GOMODCACHE)"
		echo "$got"
	fi
done
exit $rc
