#!/usr/bin/env bash
# phase.sh runs one phase of `make test` between a header and a footer
# that gives its wall time, so a slow run shows where the time went:
#
#   scripts/phase.sh [--soft] NAME -- COMMAND [ARG...]
#   scripts/phase.sh --summary
#
# With --soft a failing command is reported and the phase still passes
# (lint, until the tree is clean). When PHASE_LOG names a file, each phase
# appends "NAME<TAB>WALL<TAB>CPU<TAB>RESULT" to it, and --summary prints
# those lines as a table with the load average. The CPU seconds (user +
# system of everything the phase ran) are what to compare across runs on a
# shared machine, where the wall time depends on the neighbours.
set -uo pipefail

now() { date +%s.%N; }
# cpu sets cpusecs to the user+system seconds of this shell's finished
# children (and theirs: go build's compilers count), from the builtin
# times, which must run in this shell: call it directly, not in $(...).
cpu() {
	local f t
	f=$(mktemp)
	times >"$f"
	t=$(tail -n 1 "$f")
	rm -f "$f"
	cpusecs=$(awk -v t="$t" 'BEGIN {
		n = split(t, f, /[ \t]+/); s = 0
		for (i = 1; i <= n; i++) { split(f[i], ms, /m/); sub(/s$/, "", ms[2]); s += ms[1] * 60 + ms[2] }
		printf "%.1f", s
	}')
}
load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

if [[ ${1-} == --summary ]]; then
	[[ -n ${PHASE_LOG-} && -s ${PHASE_LOG} ]] || exit 0
	echo
	echo "==> phases (load average now: $(load))"
	printf '    %-24s %9s %9s  %s\n' phase wall CPU result
	awk -F'\t' '{ printf "    %-24s %8.1fs %8.1fs  %s\n", $1, $2, $3, $4; w += $2; c += $3 }
		END { printf "    %-24s %8.1fs %8.1fs\n", "total", w, c }' "$PHASE_LOG"
	exit 0
fi

soft=false
if [[ ${1-} == --soft ]]; then
	soft=true
	shift
fi
if [[ $# -lt 3 || $2 != -- ]]; then
	echo "usage: $0 [--soft] NAME -- COMMAND [ARG...] | $0 --summary" >&2
	exit 2
fi
name=$1
shift 2

echo
echo "==> ${name}: $* (load average $(load))"
start=$(now)
"$@"
rc=$?
secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
cpu

result=ok
if [[ $rc -ne 0 ]]; then
	result="failed (exit $rc)"
	if $soft; then
		result="failed (exit $rc), not fatal"
	fi
fi
echo "<== ${name}: ${secs}s (CPU ${cpusecs}s), ${result}"
if [[ -n ${PHASE_LOG-} ]]; then
	printf '%s\t%s\t%s\t%s\n' "$name" "$secs" "$cpusecs" "$result" >>"$PHASE_LOG"
fi
if [[ $rc -ne 0 ]] && ! $soft; then
	exit "$rc"
fi
exit 0
