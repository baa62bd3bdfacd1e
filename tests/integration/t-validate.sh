#!/bin/bash
# `devopslab validate`: golden diagnostics for every file in
# tests/manifest/invalid/ (exit 2, output compared byte for byte with
# NAME.expected), every file in tests/manifest/valid/ and examples/ (exit 0;
# compared with NAME.expected when there is one), plus usage and I/O errors.
# To refresh a golden after a deliberate change: run validate from the
# file's directory with 2>NAME.expected, and read the diff before committing.
. "$TOP/tests/lib.sh"

check_golden() { # dir name want_exit
	local dir=$1 name=$2 want=$3 got
	set +e
	(cd "$dir" && "$DEVOPSLAB" validate "$name.yaml") >"$TESTTMP/out" 2>"$TESTTMP/err"
	got=$?
	set -e
	[ "$got" = "$want" ] || { cat "$TESTTMP/err" >&2; fail "$dir/$name.yaml: exit $got, expected $want"; }
	[ -s "$TESTTMP/out" ] && fail "$dir/$name.yaml: unexpected stdout"
	if [ -f "$dir/$name.expected" ]; then
		diff -u "$dir/$name.expected" "$TESTTMP/err" >&2 || fail "$dir/$name.yaml: diagnostics differ"
	elif [ "$want" != 0 ]; then
		fail "$dir/$name.yaml has no $name.expected"
	fi
	n=$((n + 1))
}

n=0
for f in "$TOP"/tests/manifest/invalid/*.yaml; do
	check_golden "$TOP/tests/manifest/invalid" "$(basename "$f" .yaml)" 2
done
for f in "$TOP"/tests/manifest/valid/*.yaml "$TOP"/examples/*.yaml; do
	check_golden "$(dirname "$f")" "$(basename "$f" .yaml)" 0
done
[ "$n" -ge 40 ] || fail "only $n golden files checked"

# The example is valid, with exactly the .local warning (RFC 6762) and the
# one for backups on the nodes' own disks.
expect_exit 0 "$DEVOPSLAB" validate "$TOP/examples/homelab.yaml"
assert_contains "$OUT" "warning: cluster.domain: 'homelab.local' is under .local"
assert_contains "$OUT" "warning: backup: storage 'local' is each node's own disk"
assert_contains "$OUT" "valid, 2 warnings"

# --json: one object on stdout, the same diagnostics.
expect_exit 2 "$DEVOPSLAB" validate --json "$TOP/tests/manifest/invalid/multiple-errors.yaml"
echo "$OUT" | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["valid"] is False and d["errors"] == 9 and d["warnings"] == 1, d
assert [x["path"] for x in d["diagnostics"]][:2] == ["cluster.name", "cluster.timezone"], d
assert d["diagnostics"][0]["line"] == 4 and d["diagnostics"][0]["column"] == 9, d
'

# Usage and I/O errors: exit 2 with a message.
expect_exit 2 "$DEVOPSLAB" validate
expect_exit 2 "$DEVOPSLAB" validate a.yaml b.yaml
expect_exit 2 "$DEVOPSLAB" validate --frobnicate x.yaml
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP/missing.yaml"
assert_contains "$OUT" "cannot read manifest"
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP"
assert_contains "$OUT" "Is a directory"

# Over the size limit (4 MiB): refused without parsing.
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$TESTTMP/big.yaml"
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP/big.yaml"
assert_contains "$OUT" "larger than 4194304 bytes"

# One value over 64 KiB: refused, and not quoted back in full.
"$PY" -c "print('version: ' + 'x' * 70000)" >"$TESTTMP/long.yaml"
expect_exit 2 "$DEVOPSLAB" validate "$TESTTMP/long.yaml"
assert_contains "$OUT" "long.yaml:1:10: error: a value longer than 65536 bytes"
[ "${#OUT}" -lt 1000 ] || fail "the long value was echoed back (${#OUT} bytes)"

# An alias bomb ("billion laughs") is refused at the first alias, fast.
{
	echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
	prev=a
	for i in b c d e f g h i; do
		echo "$i: &$i [*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev,*$prev]"
		prev=$i
	done
} >"$TESTTMP/bomb.yaml"
expect_exit 2 timeout 5 "$DEVOPSLAB" validate "$TESTTMP/bomb.yaml"
assert_contains "$OUT" "aliases (*) are not allowed"
echo "ok: $n golden files"
