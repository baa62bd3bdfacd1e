# tests/lib.sh — sourced by tests/integration/t-*.sh.
# Provides: DEVOPSLAB (binary), TOP (repo), TESTTMP (scratch dir, removed
# after the test), SHARED (../shared), PY (Debian's python3, which has
# python3-yaml and python3-jsonschema), TEST_NAME (tests/run.sh sets it; the
# script's name when run directly: simulators file their records under it,
# tests/README.md), and small assertion helpers that print both values when
# they fail.
set -euo pipefail
: "${TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${DEVOPSLAB:=$TOP/provisioner/devopslab}"
: "${TESTTMP:=$(mktemp -d)}"
: "${TEST_NAME:=$(basename "$0" .sh)}"
SHARED=${SHARED:-$TOP/../shared}
PY=/usr/bin/python3
export DEVOPSLAB TOP TESTTMP TEST_NAME SHARED PY

# PIDs started with bg_start are killed when the test exits, pass or fail.
_test_pids=()
_test_cleanups=()
_test_exit() {
	local rc=$?
	for ((i = ${#_test_cleanups[@]} - 1; i >= 0; i--)); do eval "${_test_cleanups[i]}" || true; done
	for p in "${_test_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${_test_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	exit $rc
}
trap _test_exit EXIT
# A command that stops the test through set -e says which one it was (a
# test that died of SIGPIPE once left an empty log); under set +e, where a
# test looks at the exit status itself, the trap stays silent.
trap '_test_rc=$?; [[ $- != *e* ]] || echo "FAIL: line $LINENO: exit $_test_rc: $BASH_COMMAND" >&2' ERR
bg_start() { "$@" & _test_pids+=($!); }
on_exit() { _test_cleanups+=("$*"); }

fail() { echo "FAIL: $*" >&2; exit 1; }
# poll_json URL FILE EXPR [SECONDS]: GET URL into FILE every 0.1 s until the
# Python expression EXPR over d (the JSON document) is true; 1 when it never
# is within SECONDS (default 60).
poll_json() {
	local i
	for ((i = 0; i < ${4:-60} * 10; i++)); do
		curl -sf "$1" -o "$2" && "$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
skip() { echo "skip: $*"; exit 77; }

assert_eq() { # expected actual [what]
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}
assert_contains() { # file-or-string needle
	if [ -f "$1" ]; then grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$1' lacks '$2'"; }
	else case "$1" in *"$2"*) ;; *) fail "output lacks '$2': $1" ;; esac; fi
}
# expect_exit CODE CMD... — run CMD, capture stdout+stderr in $OUT, check the exit code.
expect_exit() {
	local want=$1; shift
	set +e; OUT=$("$@" 2>&1); local got=$?; set -e
	[ "$got" = "$want" ] || { echo "$OUT" >&2; fail "'$*' exited $got, expected $want"; }
}
