#!/bin/sh
# image/guest.sh — build a Debian 13 cloud guest: what tests boot under QEMU
# to see what our seeds do inside a real cloud-init guest (docs/guests.md,
# "A real guest"). It stands in for Debian's own cloud image
# (debian-13-genericcloud-amd64.qcow2), which the build machines cannot
# download: Debian's cloud kernel, cloud-init with its stock configuration
# (every data source; ds-identify finds the NoCloud seed by its label),
# netplan (as Debian 13's cloud images render the network), the QEMU guest
# agent, OpenSSH and sudo. Nothing of ours is in it.
#
# Usage: image/guest.sh [--out DIR] [--mirror URL]
# Output: DIR/debian-13-guest.ext4 (the root file system, label
# "guest-root"; booted as a raw virtio disk), DIR/debian-13-guest.vmlinuz and
# DIR/debian-13-guest.initrd (booted directly: no boot loader, which is the
# cloud image's business and not ours) and DIR/debian-13-guest.packages.
# Needs root (mmdebstrap --mode=root).
set -eu

out=out/guest
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=trixie
name=debian-13-guest

while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--mirror) mirror=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) echo "guest.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

pkgs="systemd systemd-sysv udev dbus linux-image-cloud-amd64 initramfs-tools
cloud-init netplan.io qemu-guest-agent openssh-server sudo iproute2
e2fsprogs ca-certificates"

mkdir -p "$out"
out=$(cd "$out" && pwd)
tree=$(mktemp -d "$out/.$name.XXXXXX")
trap 'rm -rf "$tree" "$out/$name.ext4.partial"' EXIT
start=$(date +%s)

# The CD-ROM drives (ide2: the seed, ide3: the payload) and ISO 9660 in the
# initramfs, so the drives are there when ds-identify looks for the seed's
# label early in boot. The root is the whole virtio disk, by its label.
# No comment lines inside the continued command below: one would end it.
mmdebstrap --mode=root --variant=minbase --format=directory \
	--include="$(echo $pkgs | tr ' ' ',')" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--essential-hook='mkdir -p "$1/etc/initramfs-tools" && printf "ata_piix\nahci\nsr_mod\nisofs\nvirtio_blk\nvirtio_net\nvirtio_console\n" >> "$1/etc/initramfs-tools/modules"' \
	--customize-hook='echo "LABEL=guest-root / ext4 defaults 0 1" > "$1/etc/fstab"' \
	--customize-hook='chroot "$1" dpkg-query -W -f="\${Package}\t\${Version}\t\${Architecture}\n" > "'"$out/$name.packages.tmp"'"' \
	--customize-hook='rm -f "$1/etc/ssh/ssh_host_"* "$1/var/lib/dbus/machine-id" "$1/etc/hostname" && : > "$1/etc/machine-id"' \
	--customize-hook='rm -rf "$1/var/cache/apt/"*.bin "$1/var/lib/apt/lists/"*_Packages' \
	"$suite" "$tree" \
	"deb $mirror $suite main" \
	"deb $mirror $suite-updates main" \
	"deb http://security.debian.org/debian-security $suite-security main"

kernel=$(ls "$tree"/boot/vmlinuz-* | head -n 1)
initrd=$tree/boot/initrd.img-${kernel##*/vmlinuz-}
[ -s "$kernel" ] && [ -s "$initrd" ] || { echo "guest.sh: no kernel or initramfs in /boot" >&2; exit 1; }
cp "$kernel" "$out/$name.vmlinuz.tmp"
cp "$initrd" "$out/$name.initrd.tmp"
# 3 GiB, sparse: room for what cloud-init and the payload write.
rm -f "$out/$name.ext4.partial"
mkfs.ext4 -q -L guest-root -d "$tree" "$out/$name.ext4.partial" 3G
mv "$out/$name.packages.tmp" "$out/$name.packages"
mv "$out/$name.vmlinuz.tmp" "$out/$name.vmlinuz"
mv "$out/$name.initrd.tmp" "$out/$name.initrd"
mv "$out/$name.ext4.partial" "$out/$name.ext4"
echo "guest.sh: $out/$name.ext4: $(du -h "$out/$name.ext4" | cut -f1) used," \
	"$(wc -l < "$out/$name.packages") packages, $(($(date +%s) - start)) s"
