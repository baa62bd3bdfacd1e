#!/bin/bash
# image/iso.sh — out/devopslab.iso: a hybrid ISO that boots on legacy BIOS
# (GRUB i386-pc, El Torito + an MBR for USB sticks) and on UEFI through
# Debian's signed chain (shim-signed → grub-efi-amd64-signed → the signed
# Debian kernel), so Secure Boot may stay on. Written to a USB stick with dd
# it boots the same way. The bundle sits at /devopslab/bundle.tar.zst on
# the volume labelled DEVOPSLAB. Built without loop devices or mounts:
# mkfs.vfat -C + mtools for the EFI system partition, xorriso for the ISO.
#
#   image/iso.sh [--bundle BUNDLE] [--timeout SECONDS] [--cmdline "EXTRA"] [-o OUT]
. "$(dirname "$0")/lib.sh"

bundle= timeout=3 extra= output=$OUT/devopslab.iso label=DEVOPSLAB
while [ $# -gt 0 ]; do
	case $1 in
	--bundle) bundle=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--cmdline) extra=$2; shift 2 ;;
	--label) label=$2; shift 2 ;;
	-o) output=$2; shift 2 ;;
	*) die "iso.sh: unknown option '$1'" ;;
	esac
done
initrd=$OUT/initrd.img
[ -f "$initrd" ] || die "no $initrd (run image/initramfs.sh)"
kernel_version >/dev/null

signed=/usr/lib/grub/x86_64-efi-signed
shim=/usr/lib/shim
for f in $shim/shimx64.efi.signed $shim/mmx64.efi.signed $signed/gcdx64.efi.signed \
	/usr/lib/grub/i386-pc/boot_hybrid.img; do
	[ -f "$f" ] || die "'$f' missing (shim-signed, grub-efi-amd64-signed, grub-pc-bin)"
done

stage=$(mktemp -d /tmp/devopslab-iso.XXXXXX)
trap 'rm -rf "$stage"' EXIT
iso=$stage/iso
mkdir -p "$iso/boot/grub" "$iso/.disk" "$iso/devopslab"

# --- the ISO tree ----------------------------------------------------------------
cp "$CACHE/kernel/vmlinuz" "$iso/boot/vmlinuz"
cp "$initrd" "$iso/boot/initrd.img"
# gcdx64.efi looks for /.disk/info to find its root.
echo "DevOpsLab $(kernel_version)" >"$iso/.disk/info"
cmdline="console=tty0 console=ttyS0,115200 quiet devopslab.label=$label${extra:+ $extra}"
sed -e "s|@TIMEOUT@|$timeout|" -e "s|@CMDLINE@|$cmdline|" "$TOP/image/grub/grub.cfg" >"$iso/boot/grub/grub.cfg"
[ -n "$bundle" ] && cp "$bundle" "$iso/devopslab/bundle.tar.zst"

# --- BIOS: GRUB's El Torito core with everything it needs built in --------------
# The same core boots from CD (El Torito) and from a USB stick (boot_hybrid.img
# in the MBR loads it; xorriso's --grub2-boot-info patches its address in).
mkdir -p "$iso/boot/grub/i386-pc"
grub-mkimage -O i386-pc-eltorito -p /boot/grub -o "$iso/boot/grub/i386-pc/eltorito.img" \
	biosdisk iso9660 part_msdos part_gpt fat normal configfile linux search search_label \
	search_fs_file serial terminal echo test all_video gzio
# --- UEFI: an ESP image with shim, signed GRUB and MokManager --------------------
esp=$stage/efi.img
mkfs.vfat -C --invariant -i 0xD0E5DEF0 -n ESP  "$esp" 6144 >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/boot
mcopy -i "$esp" -m $shim/shimx64.efi.signed ::/EFI/boot/bootx64.efi
mcopy -i "$esp" -m $signed/gcdx64.efi.signed ::/EFI/boot/grubx64.efi
mcopy -i "$esp" -m $shim/mmx64.efi.signed ::/EFI/boot/mmx64.efi

fix_mtimes "$iso"
mkdir -p "$(dirname "$output")"
# -partition_offset 16: the ISO is also mountable from partition 1 of the stick.
# Dates: every file and volume date is SOURCE_DATE_EPOCH.
date_str=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)
xorriso -report_about WARNING -as mkisofs \
	-iso-level 3 -full-iso9660-filenames -joliet -rational-rock \
	-volid "$label" -appid "DevOpsLab" -publisher "DevOpsLab" \
	--modification-date="$date_str" \
	--grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img \
	-partition_offset 16 --mbr-force-bootable \
	-append_partition 2 0xef "$esp" -appended_part_as_gpt \
	-c boot/boot.cat \
	-b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
	-eltorito-alt-boot -e '--interval:appended_partition_2:all::' -no-emul-boot \
	-o "$output.tmp" "$iso" 2>&1 | grep -v '^xorriso : NOTE' >&2 || true
[ -s "$output.tmp" ] || die "xorriso failed"
mv "$output.tmp" "$output"
msg "iso: $(du -h "$output" | cut -f1) ($output)"
