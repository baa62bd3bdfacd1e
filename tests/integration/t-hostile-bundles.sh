#!/bin/bash
# Hostile bundles that carry a VALID signature (a compromised or buggy
# builder): the signature is not the only defence. Each bundle lists its
# hostile member in a signed SHA256SUMS; `bundle extract` must refuse it
# (exit 4), leave no output or staging directory, and write nothing outside
# the target: a canary tree and a listing of the whole scratch area are
# compared before and after. The extraction module's own hostile-archive
# tests (links, devices, planted symlinks, bombs, with the rootfs policy)
# are tests/unit/test-extract.c.
. "$TOP/tests/lib.sh"

BT="$PY $TOP/tests/integration/bundletool.py"
cd "$TESTTMP"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
mkdir -p canary work
echo canary >canary/file
cp "$TOP/tests/data/bundle/manifest.yaml" work/manifest.yaml
echo hi >work/hello

snapshot() { (cd "$TESTTMP" && find . -path ./work -prune -o -printf '%p %y %s %m\n' | LC_ALL=C sort | sha256sum); }

# signed NAME SUMS-LINES... -- SPEC...: write SHA256SUMS from the lines, sign
# it with openssl, pack SHA256SUMS, the signature, manifest.yaml and SPECs.
signed() {
	local out=$1; shift
	local sums=()
	while [ "$1" != -- ]; do sums+=("$1"); shift; done
	shift
	{ echo "$(sha256sum <work/manifest.yaml | cut -d' ' -f1)  manifest.yaml"
	  for l in "${sums[@]}"; do echo "$l"; done; } | LC_ALL=C sort -k2 >work/SHA256SUMS
	openssl dgst -sha256 -sign key.pem -out work/SHA256SUMS.sig work/SHA256SUMS
	$BT pack "$out" file:SHA256SUMS=work/SHA256SUMS file:SHA256SUMS.sig=work/SHA256SUMS.sig \
		file:manifest.yaml=work/manifest.yaml "$@"
}
hash_hi=$(sha256sum <work/hello | cut -d' ' -f1)
zero=0000000000000000000000000000000000000000000000000000000000000000

refused() { # what bundle needle
	local before
	before=$(snapshot)
	cd work && expect_exit 4 "$DEVOPSLAB" bundle extract --pubkey ../pub.pem "../$2" out
	 assert_contains "$OUT" "$3"
	 [ ! -e out ] || fail "$1: a refused extract left 'out' behind"
	 [ -z "$(ls -A | grep -v -E '^(manifest.yaml|hello|SHA256SUMS|SHA256SUMS.sig)$' || true)" ] ||
		fail "$1: a refused extract left $(ls -A) behind"
	cd ..
	assert_eq "$before" "$(snapshot)" "$1: files outside the target"
	assert_eq "canary" "$(cat canary/file)" "$1: canary"
	echo "ok: $1 refused: $(tail -n1 <<<"$OUT")"
}

signed dotdot.bundle "$hash_hi  assets/../../canary/file" -- "file:assets/../../canary/file=work/hello"
refused "'..' path" dotdot.bundle "'assets/../../canary/file' is not a valid member path"
# the same, as an archive member that SHA256SUMS does not list
signed dotdot2.bundle "$hash_hi  assets/hello" -- file:assets/hello=work/hello "file:../canary/file=work/hello"
refused "unlisted '..' member" dotdot2.bundle "../canary/file"
signed abs.bundle "$hash_hi  $TESTTMP/canary/file" -- "file:$TESTTMP/canary/file=work/hello"
refused "absolute path" abs.bundle "$TESTTMP/canary/file"
signed sym.bundle "$zero  assets/s" -- "symlink:assets/s=$TESTTMP/canary/file"
refused "symlink leading out" sym.bundle "assets/s"
signed link.bundle "$hash_hi  assets/x" -- "symlink:assets/x=../../canary/file" "file:assets/x=work/hello"
refused "symlink, then a write through it" link.bundle "assets/x"
signed hard.bundle "$hash_hi  assets/h" -- "hardlink:assets/h=../canary/file"
refused "hardlink out" hard.bundle "assets/h"
signed dev.bundle "$zero  assets/null" -- "chr:assets/null"
refused "device node" dev.bundle "assets/null"
signed blk.bundle "$zero  assets/sda" -- "blk:assets/sda"
refused "block device node" blk.bundle "assets/sda"
signed fifo.bundle "$zero  assets/p" -- "fifo:assets/p"
refused "FIFO" fifo.bundle "assets/p"
signed dup.bundle "$hash_hi  assets/hello" -- file:assets/hello=work/hello file:assets/hello=work/hello
refused "duplicate entry" dup.bundle "appears twice"
# 512 MiB of zeros is ~16 KiB of zstd: stopped by the expansion limit
# (1000:1, checked once 64 MiB are out) long before its (bogus) digest
# could be compared. A bigger bomb only costs the test more time to build.
signed bomb.bundle "$zero  assets/bomb" -- "zeros:assets/bomb=$((512 << 20))"
refused "compression bomb" bomb.bundle "assets/bomb"
empty=$(sha256sum </dev/null | cut -d' ' -f1)
lines=()
for i in $(seq 0 11999); do lines+=("$empty  assets/f$i"); done
signed many.bundle "${lines[@]}" -- "many:assets/f=12000"
refused "entry count" many.bundle "members"
echo "t-hostile-bundles: all checks passed"
