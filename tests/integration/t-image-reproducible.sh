#!/bin/bash
# Reproducible image: with SOURCE_DATE_EPOCH set, two builds of the
# initramfs, the ISO and the netboot tree from the same inputs give
# identical bytes (the kernel .deb is downloaded once and shared); a
# different epoch gives a different ISO, so the comparison can fail.
# sanitizer: skip
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/e2e/lib.sh"
command -v xorriso >/dev/null || skip "xorriso not installed"

e2e_setup
export SOURCE_DATE_EPOCH=1700000000
build() { # dir
	OUT=$E2E/$1 "$TOP/image/build.sh" --pubkey "$E2E/pub.pem" --binary "$DEVOPSLAB" \
		--bundle "$E2E/www/good.tar.zst" --bundle-url http://192.0.2.1/b.tar.zst >"$E2E/$1.log" 2>&1 ||
		{ tail -20 "$E2E/$1.log" >&2; fail "build $1 failed"; }
	(cd "$E2E/$1" && find . -type f ! -name '*.log' | sort | xargs sha256sum) >"$E2E/$1.sums"
}
build a
build b
diff -u "$E2E/a.sums" "$E2E/b.sums" >&2 || fail "two builds with the same SOURCE_DATE_EPOCH differ"
grep -q ' ./devopslab.iso$' "$E2E/a.sums" || fail "no ISO was compared"
grep -q ' ./pxe/initrd.img$' "$E2E/a.sums" || fail "no netboot initrd was compared"
# Every file in the ISO and the volume itself carry the epoch.
xorriso -indev "$E2E/a/devopslab.iso" -find /boot/vmlinuz -exec lsdl -- 2>/dev/null | grep -q 'Nov 14  2023' ||
	fail "ISO file dates are not SOURCE_DATE_EPOCH"

mkdir -p "$E2E/c"
cp "$E2E/a/initrd.img" "$E2E/c/"
SOURCE_DATE_EPOCH=1700000001 OUT=$E2E/c "$TOP/image/iso.sh" --bundle "$E2E/www/good.tar.zst" 2>/dev/null
cmp -s "$E2E/a/devopslab.iso" "$E2E/c/devopslab.iso" && fail "another SOURCE_DATE_EPOCH gave the same ISO"
echo "reproducible: $(cut -c1-16 <<<"$(grep ' ./devopslab.iso$' "$E2E/a.sums")")"
