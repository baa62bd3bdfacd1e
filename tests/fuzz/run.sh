#!/bin/bash
# tests/fuzz/run.sh — replay each libFuzzer target's seed corpus, then fuzz it
# for a while (new inputs go to a scratch copy, never into the repository).
#   tests/fuzz/run.sh --seconds N build-fuzz/fuzz-NAME...   fuzz N seconds each
#   tests/fuzz/run.sh --runs N build-fuzz/fuzz-NAME...      N inputs each from
#       seed 1: the same inputs every time (what `make check` runs)
# Corpus: tests/fuzz/corpus/NAME/. A crash is written to build-fuzz/crashes/
# and must become a regression input in the corpus (and a test).
set -u
limit=(-max_total_time=20) what="in 20s"
case ${1:-} in
--seconds) limit=(-max_total_time="$2") what="in $2s"; shift 2 ;;
--runs) limit=(-runs="$2" -seed=1) what="from seed 1"; shift 2 ;;
esac
top=$(cd "$(dirname "$0")/../.." && pwd)
label=${LABEL:-fuzz}
tally=${TALLY:-}
crashes=$top/build-fuzz/crashes
mkdir -p "$crashes"
fail=0 pass=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
for bin in "$@"; do
	name=$(basename "$bin"); name=${name#fuzz-}
	corpus=$top/tests/fuzz/corpus/$name
	scratch=$(mktemp -d "/tmp/devopslab-fuzz.$name.XXXXXX")
	[ -d "$corpus" ] && cp -r "$corpus/." "$scratch/"
	log=$top/build-fuzz/$name.log
	if "$bin" "${limit[@]}" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$crashes/$name-" "$scratch" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		printf 'PASS  %-6s %-40s %s runs %s\n' "$label" "fuzz-$name" "${runs:-?}" "$what"
		[ -n "$tally" ] && echo "pass $label:fuzz-$name" >>"$tally"
		pass=$((pass + 1))
	else
		printf 'FAIL  %-6s %-40s (log %s)\n' "$label" "fuzz-$name" "$log"
		tail -n 30 "$log" | sed 's/^/    | /'
		[ -n "$tally" ] && echo "fail $label:fuzz-$name" >>"$tally"
		fail=$((fail + 1))
	fi
	rm -rf "$scratch"
done
[ -z "$tally" ] && echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
