#!/bin/bash
# The command line: --help lists every verb of the table, unknown verbs and
# options are usage errors (exit 2), --version prints a version.
. "$TOP/tests/lib.sh"

expect_exit 0 "$DEVOPSLAB" --help
help=$OUT
for v in validate plan "bundle create" "bundle verify" install; do
	assert_contains "$help" "  $v "
done
expect_exit 2 "$DEVOPSLAB"
expect_exit 2 "$DEVOPSLAB" frobnicate
assert_contains "$OUT" "unknown verb 'frobnicate'"
expect_exit 2 "$DEVOPSLAB" --no-such-option
expect_exit 0 "$DEVOPSLAB" --version
assert_contains "$OUT" "devopslab "
