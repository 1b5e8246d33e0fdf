#!/usr/bin/env bash
# ensure-npm.sh installs the pinned npm packages of each directory given
# (its package.json and package-lock.json) with npm ci, unless its
# node_modules is already up to date with its lock file, and prints what it
# did. make test runs it as a deps phase so that the tests that start a
# Node.js peer (authn/testdata/oidcprovider) do not install it themselves.
#
#   scripts/ensure-npm.sh DIR...
set -euo pipefail

for dir in "$@"; do
	lock=$dir/package-lock.json
	if [[ ! -f $lock ]]; then
		echo "ensure-npm: $dir has no package-lock.json" >&2
		exit 1
	fi
	# npm ci writes node_modules/.package-lock.json last: present and no
	# older than the lock file, the install is complete and current.
	if [[ -f $dir/node_modules/.package-lock.json && ! $lock -nt $dir/node_modules/.package-lock.json ]]; then
		echo "ensure-npm: $dir: already installed (node_modules matches package-lock.json)"
		continue
	fi
	if ! command -v npm >/dev/null 2>&1; then
		echo "ensure-npm: npm is needed to install the packages of $dir" >&2
		exit 1
	fi
	echo "ensure-npm: $dir: npm ci"
	(cd "$dir" && npm ci --no-audit --no-fund)
done
