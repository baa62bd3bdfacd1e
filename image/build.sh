#!/bin/bash
# image/build.sh — what `make image` runs: the kernel (apt-get download),
# the initramfs, the hybrid ISO and the netboot tree, all into out/.
#
#   image/build.sh --pubkey PUB.pem [--bundle BUNDLE] [--bundle-url URL]
#                  [--embed-bundle] [--binary DEVOPSLAB] [--timeout S] [--cmdline EXTRA]
#
#   --pubkey       the public key bundles must be signed with (required)
#   --bundle       put this bundle on the ISO (/devopslab/bundle.tar.zst)
#   --embed-bundle also put it into the initramfs (netboot without a URL)
#   --bundle-url   the URL netbooted nodes fetch the bundle from
#   --timeout      GRUB menu timeout in seconds [3]
#   --cmdline      extra kernel command line options (docs/boot.md)
# Environment: OUT (out/), CACHE (out/cache/), SOURCE_DATE_EPOCH, ZSTD_LEVEL
# (initramfs compression, 19; tests use 9: 20x faster, 15% larger).
. "$(dirname "$0")/lib.sh"

pubkey= bundle= url= embed=0 binary=$TOP/provisioner/devopslab timeout=3 extra=
while [ $# -gt 0 ]; do
	case $1 in
	--pubkey) pubkey=$2; shift 2 ;;
	--bundle) bundle=$2; shift 2 ;;
	--bundle-url) url=$2; shift 2 ;;
	--embed-bundle) embed=1; shift ;;
	--binary) binary=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--cmdline) extra=$2; shift 2 ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) die "build.sh: unknown option '$1'" ;;
	esac
done
[ -n "$pubkey" ] || die "--pubkey PUB.pem is required (make image PUBKEY=...)"
[ "$embed" = 0 ] || [ -n "$bundle" ] || die "--embed-bundle needs --bundle"

"$TOP/image/kernel.sh"
iargs=(--pubkey "$pubkey" --binary "$binary")
[ "$embed" = 1 ] && iargs+=(--bundle "$bundle")
"$TOP/image/initramfs.sh" "${iargs[@]}"
xargs_=(--timeout "$timeout")
[ -n "$extra" ] && xargs_+=(--cmdline "$extra")
"$TOP/image/iso.sh" "${xargs_[@]}" ${bundle:+--bundle "$bundle"}
"$TOP/image/pxe.sh" "${xargs_[@]}" ${url:+--bundle-url "$url"}
{
	echo "kernel     $(stat -c %s "$CACHE/kernel/vmlinuz") $(kernel_version)"
	echo "initramfs  $(stat -c %s "$OUT/initrd.img")"
	echo "iso        $(stat -c %s "$OUT/devopslab.iso")"
	(cd "$OUT" && sha256sum devopslab.iso initrd.img)
} >"$OUT/image-info.txt"
msg "done: $OUT/devopslab.iso, $OUT/pxe/ (sizes in $OUT/image-info.txt)"
