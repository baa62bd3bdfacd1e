#!/bin/sh
# image/rootfs-boot.sh — the half of the boot loader that does not depend on
# the node, done once when the root file system is built instead of on every
# install in the installer (docs/install.md, "Boot loader"). image/rootfs.sh
# runs it as an mmdebstrap customize hook, for both variants:
#
#   image/rootfs-boot.sh CHROOT
#
# 1. A generic initramfs for every kernel in /boot: initramfs-tools'
#    MODULES=most (Debian's default) puts in every storage and file system
#    driver, not the build host's, and the root device comes from the
#    kernel command line (root=/dev/mapper/pve-root). What would otherwise
#    come from the node or the build host is fixed here:
#      - FSTYPE=ext4: the fsck hook takes the root's type from /etc/fstab,
#        which the install writes later (the root is always ext4 on
#        pve/root); without it there would be no fsck.ext4 in the initramfs;
#      - resume: the resume hook only looks at swap outside a chroot, so
#        nothing of the build host's swap gets in (checked below);
#      - lvm2's hook copies /etc/lvm, which is the package's own here and
#        in the installed system (the install writes nothing there).
#    The node's /etc/systemd/network/*.link (config-network) is not in it:
#    udev names the NIC by its usual policy in the initramfs, and the
#    installed system's udev renames it to nic0 (systemd's naming scheme
#    allows renaming an already-renamed interface since v240).
# 2. debconf: grub2/force_efi_extra_removable, so every later
#    grub-efi-amd64 upgrade renews the fallback path EFI/BOOT too.
# 3. GRUB's files in /boot/grub as grub-install lays them out, and the
#    BIOS core image: i386-pc and x86_64-efi modules and lists, fonts,
#    grubenv, boot.img, and core.img made with grub-mkimage for our layout
#    (GPT, LVM, ext4) with the prefix (lvm/pve-root)/boot/grub: the volume
#    group and logical volume names are the same on every node, so one
#    core image serves them all (grub-install would name them by their
#    random LVM UUIDs, lvmid/VG/LV). The install only writes it to the
#    disk with grub-bios-setup.
# Output: nothing but errors; exit 1 when a check fails.
set -eu

root=${1:?usage: rootfs-boot.sh CHROOT}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C HOME=/root \
	DEBIAN_FRONTEND=noninteractive "$@"; }
die() { echo "rootfs-boot.sh: $*" >&2; exit 1; }

# --- 1. initramfs ---------------------------------------------------------------
mkdir -p "$root/etc/initramfs-tools/conf.d"
cat >"$root/etc/initramfs-tools/conf.d/devopslab" <<'EOF'
# Written by image/rootfs-boot.sh (docs/install.md, "Boot loader"): the
# initramfs is built with the root file system, before /etc/fstab names the
# root's type; the installer's layout always makes it ext4 (pve/root).
FSTYPE=ext4
EOF
kernels=$(cd "$root/boot" && ls vmlinuz-* 2>/dev/null | sed 's/^vmlinuz-//') || true
[ -n "$kernels" ] || die "no kernel in $root/boot"
for k in $kernels; do
	if [ -e "$root/boot/initrd.img-$k" ]; then
		in_root update-initramfs -u -k "$k" >/dev/null
	else
		in_root update-initramfs -c -k "$k" >/dev/null
	fi
	list=$(in_root lsinitramfs "/boot/initrd.img-$k")
	for want in usr/sbin/lvm usr/lib/udev/rules.d/69-lvm.rules usr/sbin/fsck.ext4 \
		conf/conf.d/devopslab; do
		echo "$list" | grep -qx "$want" || die "initrd.img-$k lacks $want"
	done
	if echo "$list" | grep -qx 'conf/conf.d/zz-resume-auto'; then
		die "initrd.img-$k names a resume device (the build host's swap?)"
	fi
done

# --- 2. debconf -----------------------------------------------------------------
echo 'grub-efi-amd64 grub2/force_efi_extra_removable boolean true' | in_root debconf-set-selections

# --- 3. GRUB's files --------------------------------------------------------------
# What grub-install copies into /boot/grub/PLATFORM: modules, its lists,
# efiemu and modinfo.sh (not the images grub-mkimage assembles from).
for p in i386-pc x86_64-efi; do
	src=$root/usr/lib/grub/$p
	dst=$root/boot/grub/$p
	[ -d "$src" ] || die "no $src (grub-pc-bin, grub-efi-amd64-bin)"
	rm -rf "$dst"
	mkdir -p "$dst"
	find "$src" -maxdepth 1 -type f \( -name '*.mod' -o -name 'efiemu*.o' -o -name modinfo.sh \) \
		-exec cp -p {} "$dst/" \;
	for l in moddep command fs partmap parttool video crypto terminal; do
		cp -p "$src/$l.lst" "$dst/"
	done
done
cp -p "$root/usr/lib/grub/i386-pc/boot.img" "$root/boot/grub/i386-pc/boot.img"
mkdir -p "$root/boot/grub/fonts" "$root/boot/grub/locale"
cp -p "$root/usr/share/grub/unicode.pf2" "$root/boot/grub/fonts/unicode.pf2"
rm -f "$root/boot/grub/grubenv"
in_root grub-editenv /boot/grub/grubenv create
# The modules grub-install puts in for a BIOS disk with GPT, LVM and ext4
# (their dependencies, diskfilter and fshelp, follow from moddep.lst).
in_root grub-mkimage --format=i386-pc --directory=/usr/lib/grub/i386-pc \
	--prefix='(lvm/pve-root)/boot/grub' --output=/boot/grub/i386-pc/core.img \
	biosdisk part_gpt lvm ext2
[ -s "$root/boot/grub/i386-pc/core.img" ] || die "grub-mkimage made no core.img"
# It goes into the BIOS boot partition, sectors 34-2047 (docs/disk.md).
[ "$(stat -c %s "$root/boot/grub/i386-pc/core.img")" -le $((2014 * 512)) ] ||
	die "core.img does not fit the BIOS boot partition"
