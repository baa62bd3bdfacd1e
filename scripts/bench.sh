#!/bin/bash
# scripts/bench.sh — what `make bench` runs. Each scripts/bench.d/NAME.sh
# measures one subsystem and prints "NAME: metric = value (target …)" lines.
# Benchmarks measure; they are never part of `make check`, and a missed
# target is reported, not failed.
#   scripts/bench.sh [NAME...]     run all, or the named ones
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
export TOP=$top DEVOPSLAB=${DEVOPSLAB:-$top/provisioner/devopslab} PY=/usr/bin/python3
if [ $# -eq 0 ]; then
	set -- $(cd "$top/scripts/bench.d" && ls ./*.sh 2>/dev/null | sed 's|^\./||; s|\.sh$||')
fi
rc=0
for name in "$@"; do
	echo "== bench: $name"
	tmp=$(mktemp -d "/tmp/devopslab-bench.$name.XXXXXX")
	BENCHTMP=$tmp bash "$top/scripts/bench.d/$name.sh" || { echo "bench $name: error (exit $?)"; rc=1; }
	rm -rf "$tmp"
done
exit $rc
