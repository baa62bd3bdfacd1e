#!/bin/bash
# tests/check.sh — what `make check` runs: build, unit and integration tests,
# then the same under ASan+UBSan, then a short replay of every fuzz target,
# ending on one "N passed, N failed" line.
set -u
shopt -s nullglob
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=$(nproc)
tally=$(mktemp /tmp/devopslab-tally.XXXXXX)
export TALLY=$tally TEST_LOGDIR=$top/build/test-logs
status=0

step() { echo; echo "== $*"; }

step "build"
make -s -j"$jobs" all tests || exit 1

step "unit tests"
LABEL=plain tests/run.sh --unit build/tests/test-* || status=1

step "integration tests"
LABEL=plain DEVOPSLAB=$top/provisioner/devopslab tests/run.sh --integration tests/integration/t-*.sh || status=1

step "build with ASan+UBSan"
make -s -j"$jobs" BUILD=build-asan SAN=1 build-asan/devopslab tests || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "unit tests under ASan+UBSan"
LABEL=asan tests/run.sh --unit build-asan/tests/test-* || status=1

step "integration tests under ASan+UBSan"
# Tests that boot QEMU or take minutes mark themselves "# sanitizer: skip";
# their C paths are covered by the unit and integration tests above.
san_tests=()
for t in tests/integration/t-*.sh; do
	grep -q '^# sanitizer: skip$' "$t" || san_tests+=("$t")
done
LABEL=asan DEVOPSLAB=$top/build-asan/devopslab tests/run.sh --integration "${san_tests[@]}" || status=1

step "fuzz targets (corpus replay + short run)"
if make -s -j"$jobs" fuzz-build; then
	LABEL=fuzz tests/fuzz/run.sh --seconds "${FUZZ_CHECK_SECONDS:-20}" build-fuzz/fuzz-* || status=1
else
	echo "fail fuzz:build" >>"$tally"; status=1
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
