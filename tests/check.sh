#!/bin/bash
# tests/check.sh — what `make check` runs, ending on one "N passed, N failed"
# line:
#   1. build;
#   2. lanes side by side (tests/README.md):
#        plain        unit tests, then integration tests from the shared
#                     queues; every fuzz target's corpus and a short fuzz
#                     run with a fixed seed; the scripts marked
#                     "# needs: rootfs" (once it is built);
#        asan         the ASan+UBSan build and its unit tests, then
#                     integration tests from the shared queues; the
#                     "# needs:" scripts under ASan;
#        disk         the scripts marked "# lane: disk", plain then ASan,
#                     then integration tests from the shared queues;
#        rootfs       the Debian-only root file system (`make rootfs`) and
#        guest-image  the cloud guest (`make guest-image`), if absent.
#      The shared queues hold the other integration scripts, once plain and
#      once under ASan (those not marked "# sanitizer: skip"): each test
#      lane takes the next script from them until both are empty, so no
#      lane idles while another has a long list left;
#   3. the scripts marked "# alone: REASON" — QEMU guests: a TCG guest is one
#      busy host thread, and a starved guest looks hung — after the lanes,
#      with nothing else of ours beside them, one script per core at a time
#      (each boots one guest at a time), the longest "# timeout:" first.
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

# "# alone: REASON" scripts run after the lanes; "# needs: rootfs" or
# "# needs: guest-image" ones wait in their lane for that lane to finish.
# "# lane: disk" ones (loop devices and LVM: one at a time on the machine,
# disk-lib.sh's lock) run in a lane of their own, plain then under ASan, so
# the other lanes never wait for that lock.
alone=() lane=() later=() disk=()
for t in tests/integration/t-*.sh; do
	if grep -q '^# alone: ' "$t"; then alone+=("$t")
	elif grep -q '^# lane: disk$' "$t"; then disk+=("$t")
	elif grep -q '^# needs: ' "$t"; then later+=("$t")
	else lane+=("$t"); fi
done
san_only() { # SCRIPT... -> those not marked "# sanitizer: skip"
	local t
	for t in "$@"; do grep -q '^# sanitizer: skip$' "$t" || echo "$t"; done
}
needs_done() { # SCRIPT...: wait for the lanes building what they need
	local t n
	for t in "$@"; do
		for n in $(sed -n 's/^# needs: //p' "$t"); do
			while [ ! -e "$TEST_LOGDIR/lane-$n.rc" ]; do sleep 2; done
		done
	done
}

# Queues of "LABEL SCRIPT" lines that lanes share: queue_next prints and
# drops the first line, under a lock.
qdir=$(mktemp -d /tmp/devopslab-queues.XXXXXX)
queue_next() { # QUEUE
	local fd line
	exec {fd}>>"$qdir/lock"
	flock "$fd"
	line=$(head -n1 "$qdir/$1")
	[ -z "$line" ] || sed -i 1d "$qdir/$1"
	exec {fd}>&-
	[ -n "$line" ] && echo "$line"
}
drain() { # QUEUE...: run the queues' scripts, one queue after the other
	local rc=0 q line bin
	for q in "$@"; do
		if [ "$q" = asan ]; then # its lane built the binary (or failed to)
			while [ ! -e "$TEST_LOGDIR/lane-asan-build.rc" ]; do sleep 2; done
			[ "$(cat "$TEST_LOGDIR/lane-asan-build.rc")" = 0 ] || continue
		fi
		while line=$(queue_next "$q"); do
			bin=$top/provisioner/devopslab
			[ "${line%% *}" = asan ] && bin=$top/build-asan/devopslab
			LABEL=${line%% *} DEVOPSLAB=$bin tests/run.sh --integration "${line#* }" || rc=1
		done
	done
	return $rc
}
printf 'plain %s\n' "${lane[@]}" >"$qdir/plain"
san_only "${lane[@]}" | sed 's/^/asan /' >"$qdir/asan"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

lane_plain() {
	local rc=0
	step "unit tests"
	LABEL=plain tests/run.sh --unit build/tests/test-* || rc=1
	step "integration tests (shared queues)"
	drain plain asan || rc=1
	step "fuzz targets (corpus replay + ${FUZZ_CHECK_RUNS:=10000} runs from seed 1)"
	if make -s -j"$jobs" fuzz-build; then
		LABEL=fuzz tests/fuzz/run.sh --runs "$FUZZ_CHECK_RUNS" build-fuzz/fuzz-* || rc=1
	else
		echo "fail fuzz:build" >>"$tally"; rc=1
	fi
	step "integration tests that need a built image"
	needs_done "${later[@]}"
	LABEL=plain DEVOPSLAB=$top/provisioner/devopslab tests/run.sh --integration "${later[@]}" || rc=1
	return $rc
}

lane_asan() {
	local rc=0 list
	step "build with ASan+UBSan"
	if ! make -s -j"$jobs" BUILD=build-asan SAN=1 build-asan/devopslab tests; then
		echo "fail asan:build" >>"$tally"; echo 1 >"$TEST_LOGDIR/lane-asan-build.rc"
		drain plain
		return 1
	fi
	echo 0 >"$TEST_LOGDIR/lane-asan-build.rc"
	step "unit tests under ASan+UBSan"
	LABEL=asan tests/run.sh --unit build-asan/tests/test-* || rc=1
	step "integration tests (shared queues)"
	drain asan plain || rc=1
	mapfile -t list < <(san_only "${later[@]}")
	if [ ${#list[@]} -gt 0 ]; then
		step "integration tests that need a built image, under ASan+UBSan"
		needs_done "${list[@]}"
		LABEL=asan DEVOPSLAB=$top/build-asan/devopslab tests/run.sh --integration "${list[@]}" || rc=1
	fi
	return $rc
}

lane_disk() {
	local rc=0 list
	step "disk tests"
	LABEL=plain DEVOPSLAB=$top/provisioner/devopslab tests/run.sh --integration "${disk[@]}" || rc=1
	mapfile -t list < <(san_only "${disk[@]}")
	step "disk tests under ASan+UBSan"
	while [ ! -e "$TEST_LOGDIR/lane-asan-build.rc" ]; do sleep 2; done
	LABEL=asan DEVOPSLAB=$top/build-asan/devopslab tests/run.sh --integration "${list[@]}" || rc=1
	step "integration tests (shared queues)"
	drain asan plain || rc=1
	return $rc
}

# What the tests boot or install, built from Debian packages if absent.
lane_build() { # NAME FILE MAKE-TARGET
	local rc=0
	if [ -s "$2" ]; then
		echo "$2 is there"
	else
		echo "building $2 (make $3)"
		make -s "$3" || { echo "fail $1:make-$3" >>"$tally"; rc=1; }
	fi
	echo $rc >"$TEST_LOGDIR/lane-$1.rc"
	return $rc
}

rm -f "$TEST_LOGDIR"/lane-*.rc
step "lanes side by side: plain, asan, disk, rootfs, guest-image (logs: build/test-logs/lane-*.log)"
lane_plain >"$TEST_LOGDIR/lane-plain.log" 2>&1 & p_plain=$!
lane_asan >"$TEST_LOGDIR/lane-asan.log" 2>&1 & p_asan=$!
lane_disk >"$TEST_LOGDIR/lane-disk.log" 2>&1 & p_disk=$!
lane_build rootfs out/rootfs/debian-13-rootfs.tar.zst rootfs >"$TEST_LOGDIR/lane-rootfs.log" 2>&1 & p_rootfs=$!
lane_build guest-image out/guest/debian-13-guest.ext4 guest-image >"$TEST_LOGDIR/lane-guest-image.log" 2>&1 & p_guest=$!
for l in plain:p_plain asan:p_asan disk:p_disk rootfs:p_rootfs guest-image:p_guest; do
	pid=${l#*:}
	wait "${!pid}" || { status=1; echo "lane ${l%%:*} failed"; }
	cat "$TEST_LOGDIR/lane-${l%%:*}.log"
done

# The alone scripts' queue, the longest "# timeout:" first; each of $jobs
# streams takes the next script until none is left.
by_timeout() { # SCRIPT... -> "TIMEOUT SCRIPT" lines
	local t
	for t in "$@"; do echo "$(sed -n 's/^# timeout: \([0-9]*\)$/\1/p' "$t" | head -1 | grep . || echo 900) $t"; done
}
{
	by_timeout "${alone[@]}" | sed 's/ / plain /'
	mapfile -t list < <(san_only "${alone[@]}")
	[ ${#list[@]} -eq 0 ] || by_timeout "${list[@]}" | sed 's/ / asan /'
} | sort -k1,1nr -s | cut -d' ' -f2- >"$qdir/alone"
step "alone: QEMU guests, $jobs scripts at a time (logs: build/test-logs/alone-*.log)"
pids=()
for i in $(seq "$jobs"); do
	drain alone >"$TEST_LOGDIR/alone-$i.log" 2>&1 & pids+=($!)
done
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || status=1
	cat "$TEST_LOGDIR/alone-$((i + 1)).log"
done
rm -rf "$qdir"

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
