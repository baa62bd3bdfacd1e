#!/bin/bash
# image/pxe.sh — out/pxe/: everything to netboot a node on an existing LAN:
#   vmlinuz, initrd.img          Debian's signed kernel, our initramfs
#   boot.ipxe                    iPXE script (BIOS: iPXE ROM or undionly.kpxe)
#   undionly.kpxe                iPXE for legacy PXE ROMs (package ipxe)
#   bootx64.efi, grubx64.efi     shim + Debian's signed network GRUB (UEFI PXE
#   grub/grub.cfg                and UEFI HTTP boot, Secure Boot on)
#   dnsmasq.conf.example         proxy-DHCP + TFTP for a LAN with a router
# The bundle is not here: the provisioner fetches it from the URL given as
# devopslab.bundle= (--bundle-url), resumably, and verifies it before use.
#
#   image/pxe.sh [--bundle-url URL] [--timeout S] [--cmdline EXTRA] [-o DIR]
. "$(dirname "$0")/lib.sh"

url='http://${next-server}/devopslab/bundle.tar.zst' timeout=3 extra= dir=$OUT/pxe
while [ $# -gt 0 ]; do
	case $1 in
	--bundle-url) url=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--cmdline) extra=$2; shift 2 ;;
	-o) dir=$2; shift 2 ;;
	*) die "pxe.sh: unknown option '$1'" ;;
	esac
done
[ -f "$OUT/initrd.img" ] || die "no $OUT/initrd.img (run image/initramfs.sh)"
kernel_version >/dev/null
grub_url=$url
case $url in *'${'*) grub_url=$(echo "$url" | sed 's/\${next-server}/$net_default_server/g') ;; esac

rm -rf "$dir"
mkdir -p "$dir/grub"
cp "$CACHE/kernel/vmlinuz" "$dir/vmlinuz"
cp "$OUT/initrd.img" "$dir/initrd.img"
cmdline="console=tty0 console=ttyS0,115200 quiet${extra:+ $extra}"
# sed replacement strings: escape & and |.
esc() { printf '%s' "$1" | sed 's/[&|\\]/\\&/g'; }
sed -e "s|@CMDLINE@|$(esc "$cmdline")|" -e "s|@BUNDLE_URL@|$(esc "$url")|" \
	"$TOP/image/pxe/boot.ipxe" >"$dir/boot.ipxe"
sed -e "s|@TIMEOUT@|$timeout|" -e "s|@CMDLINE@|$(esc "$cmdline")|" -e "s|@BUNDLE_URL@|$(esc "$grub_url")|" \
	"$TOP/image/pxe/grub.cfg" >"$dir/grub/grub.cfg"
cp /usr/lib/shim/shimx64.efi.signed "$dir/bootx64.efi"
cp /usr/lib/shim/mmx64.efi.signed "$dir/mmx64.efi"
cp /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed "$dir/grubx64.efi"
if [ -f /usr/lib/ipxe/undionly.kpxe ]; then
	cp /usr/lib/ipxe/undionly.kpxe "$dir/undionly.kpxe"
else
	msg "warning: /usr/lib/ipxe/undionly.kpxe missing (package ipxe): legacy PXE ROMs need it"
fi
cp "$TOP/image/pxe/dnsmasq.conf.example" "$dir/dnsmasq.conf.example"
fix_mtimes "$dir"
msg "pxe: $dir"
