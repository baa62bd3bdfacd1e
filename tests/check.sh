#!/bin/bash
# tests/check.sh — what `make check` runs, ending on one "N passed, N failed"
# line:
#   1. build;
#   2. side by side (tests/README.md):
#        plain  unit and integration tests, then every fuzz target's corpus
#               and a short fuzz run with a fixed seed;
#        asan   the same tests built with ASan+UBSan (scripts marked
#               "# sanitizer: skip" left out);
#        rootfs the Debian-only root file system (`make rootfs`), if absent;
#   3. the scripts marked "# alone: REASON" — QEMU guests (a TCG guest is one
#      busy host thread, and a starved guest looks hung) and the tests of
#      the root file system — one at a time with nothing of ours beside them.
set -u
shopt -s nullglob
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=$(nproc)
tally=$(mktemp /tmp/devopslab-tally.XXXXXX)
export TALLY=$tally TEST_LOGDIR=$top/build/test-logs
mkdir -p "$TEST_LOGDIR"
status=0

step() { echo; echo "== $*"; }

step "build"
make -s -j"$jobs" all tests || exit 1

rootfs=out/rootfs/debian-13-rootfs.tar.zst
alone=() lane=() san=()
for t in tests/integration/t-*.sh; do
	if grep -q '^# alone: ' "$t"; then alone+=("$t"); else lane+=("$t"); fi
	grep -q '^# sanitizer: skip$' "$t" || san+=("$t")
done
is_alone() { grep -q '^# alone: ' "$1"; }

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

lane_plain() {
	local rc=0
	step "unit tests"
	LABEL=plain tests/run.sh --unit build/tests/test-* || rc=1
	step "integration tests"
	LABEL=plain DEVOPSLAB=$top/provisioner/devopslab tests/run.sh --integration "${lane[@]}" || rc=1
	step "fuzz targets (corpus replay + ${FUZZ_CHECK_RUNS:=30000} runs from seed 1)"
	if make -s -j"$jobs" fuzz-build; then
		LABEL=fuzz tests/fuzz/run.sh --runs "$FUZZ_CHECK_RUNS" build-fuzz/fuzz-* || rc=1
	else
		echo "fail fuzz:build" >>"$tally"; rc=1
	fi
	return $rc
}

lane_asan() {
	local t list=() rc=0
	step "build with ASan+UBSan"
	if ! make -s -j"$jobs" BUILD=build-asan SAN=1 build-asan/devopslab tests; then
		echo "fail asan:build" >>"$tally"; return 1
	fi
	step "unit tests under ASan+UBSan"
	LABEL=asan tests/run.sh --unit build-asan/tests/test-* || rc=1
	step "integration tests under ASan+UBSan"
	for t in "${san[@]}"; do is_alone "$t" || list+=("$t"); done
	LABEL=asan DEVOPSLAB=$top/build-asan/devopslab tests/run.sh --integration "${list[@]}" || rc=1
	return $rc
}

lane_rootfs() {
	[ -s "$rootfs" ] && { echo "$rootfs is there"; return 0; }
	echo "building $rootfs (make rootfs)"
	make -s rootfs || { echo "fail rootfs:make-rootfs" >>"$tally"; return 1; }
}

step "plain, asan and rootfs side by side (logs: build/test-logs/lane-*.log)"
lane_plain >"$TEST_LOGDIR/lane-plain.log" 2>&1 & p_plain=$!
lane_asan >"$TEST_LOGDIR/lane-asan.log" 2>&1 & p_asan=$!
lane_rootfs >"$TEST_LOGDIR/lane-rootfs.log" 2>&1 & p_rootfs=$!
for l in plain asan rootfs; do
	pid=p_$l
	wait "${!pid}" || { status=1; echo "lane $l failed"; }
	cat "$TEST_LOGDIR/lane-$l.log"
done

step "alone: QEMU guests and the root file system, one at a time"
LABEL=plain DEVOPSLAB=$top/provisioner/devopslab tests/run.sh --integration "${alone[@]}" || status=1
list=()
for t in "${alone[@]}"; do
	grep -q '^# sanitizer: skip$' "$t" || list+=("$t")
done
if [ ${#list[@]} -gt 0 ]; then
	LABEL=asan DEVOPSLAB=$top/build-asan/devopslab tests/run.sh --integration "${list[@]}" || status=1
fi

passed=$(grep -c '^pass ' "$tally")
failed=$(grep -c '^fail ' "$tally")
skipped=$(grep -c '^skip ' "$tally")
if [ "$failed" -gt 0 ]; then
	echo; echo "Failed:"; sed -n 's/^fail /  /p' "$tally"
fi
rm -f "$tally"
echo
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
