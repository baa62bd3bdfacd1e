#!/bin/bash
# tests/run.sh — run unit test binaries or integration scripts, one line each,
# and tally them.
#
#   tests/run.sh --unit BIN...           cmocka binaries
#   tests/run.sh --integration SCRIPT... t-*.sh scripts (exit 0 pass, 77 skip)
#
# A failed integration test's text files (consoles, inspections, records)
# are kept in $TEST_LOGDIR/<label>-<name>.files/.
#
# Environment: DEVOPSLAB (binary under test), TALLY (file to append
# "pass|fail|skip NAME" lines to; the caller prints the total), LABEL
# (prefix for the report lines, e.g. "asan"), TEST_TIMEOUT (seconds, 900),
# SIM_RECORD_DIR (every simulator appends each request it receives to
# SIM_RECORD_DIR/TESTDIR/SIMULATOR-NODE.jsonl; TESTDIR is the test's name,
# "LABEL-name" for a LABEL other than plain; tests/README.md).
# Each test gets TEST_NAME (its name) and LABEL in its environment.
set -u
mode=$1; shift
top=$(cd "$(dirname "$0")/.." && pwd)
label=${LABEL:-plain}
case $label in *[!A-Za-z0-9._-]* | .*) echo "run.sh: LABEL '$label' is not a plain name" >&2; exit 2 ;; esac
export LABEL=$label
if [ -n "${SIM_RECORD_DIR:-}" ]; then
	# Absolute: tests and simulators change directory.
	mkdir -p "$SIM_RECORD_DIR" && SIM_RECORD_DIR=$(cd "$SIM_RECORD_DIR" && pwd) || exit 1
	export SIM_RECORD_DIR
fi
tally=${TALLY:-}
logdir=${TEST_LOGDIR:-$top/build/test-logs}
mkdir -p "$logdir"
pass=0 fail=0 skip=0

record() { # result name
	[ -n "$tally" ] && echo "$1 $label:$2" >>"$tally"
	case $1 in pass) pass=$((pass + 1)) ;; fail) fail=$((fail + 1)) ;; skip) skip=$((skip + 1)) ;; esac
}

for t in "$@"; do
	name=$(basename "$t" .sh)
	export TEST_NAME=$name
	log="$logdir/$label-$name.log"
	if [ -n "${SIM_RECORD_DIR:-}" ]; then
		# The test's records are this run's only (tests/sim/sim_record.py
		# names the directory the same way).
		recdir=$SIM_RECORD_DIR/$name
		[ "$label" = plain ] || recdir=$SIM_RECORD_DIR/$label-$name
		rm -rf "$recdir"
	fi
	start=$(date +%s)
	tmo=${TEST_TIMEOUT:-900}
	if [ "$mode" = --integration ]; then
		# A script may ask for a longer limit with a "# timeout: N" line.
		t_tmo=$(sed -n 's/^# timeout: \([0-9]*\)$/\1/p' "$t" | head -1)
		[ -n "$t_tmo" ] && tmo=$t_tmo
		tmp=$(mktemp -d "/tmp/devopslab-test.$name.XXXXXX")
		TOP=$top TESTTMP=$tmp timeout --kill-after=10 "$tmo" bash "$t" >"$log" 2>&1
		rc=$?
		# A failed test leaves its small text files (consoles, inspections,
		# simulator records) next to its log: what CI shows is enough to tell
		# why. Disk images and ISOs are not kept.
		if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
			keep="$logdir/$label-$name.files"
			rm -rf "$keep"
			(cd "$tmp" && find . -type f -size -8M \( -name '*.log' -o -name '*.out' -o -name '*.err' \
				-o -name '*.inspect' -o -name '*.jsonl' -o -name '*.txt' -o -name '*.yaml' \) -print0 |
				xargs -0r cp --parents -t "$(mkdir -p "$keep" && echo "$keep")") 2>/dev/null || true
		fi
		rm -rf "$tmp"
	else
		timeout --kill-after=10 "$tmo" "$t" >"$log" 2>&1
		rc=$?
	fi
	secs=$(($(date +%s) - start))
	case $rc in
	0) record pass "$name"; printf 'PASS  %-6s %-40s %4ss\n' "$label" "$name" "$secs"
	   # A test that passed only through a fallback says so on a NOTE: line.
	   grep -a '^NOTE: ' "$log" | sed 's/^/    | /' || true ;;
	77) record skip "$name"; printf 'SKIP  %-6s %-40s %s\n' "$label" "$name" "$(tail -n1 "$log")" ;;
	*) record fail "$name"
	   printf 'FAIL  %-6s %-40s %4ss (exit %s; log %s)\n' "$label" "$name" "$secs" "$rc" "$log"
	   tail -n 40 "$log" | sed 's/^/    | /' ;;
	esac
done
[ -z "$tally" ] && echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
