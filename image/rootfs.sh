#!/bin/sh
# image/rootfs.sh — build the root file system archive the bundle carries
# as its `rootfs` asset (docs/install.md, "The rootfs recipes").
#
# Usage: image/rootfs.sh [--variant debian|pve] [--out DIR] [--mirror URL]
#   --variant debian  Debian 13 (trixie) only: what tests and the demo use,
#                     because the Proxmox repository is not reachable here.
#   --variant pve     Proxmox VE 9 on Debian 13 with the no-subscription
#                     repository and its keyring, enterprise repo disabled.
# Output: DIR/<name>.tar.zst and DIR/<name>.packages (dpkg-query list:
# the pinned versions, recorded next to the archive and put in the bundle).
# Needs root (mmdebstrap --mode=root keeps owners, devices, capabilities).
set -eu

variant=debian
out=out/rootfs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
pve_repo=http://download.proxmox.com/debian/pve
pve_key_url=https://enterprise.proxmox.com/debian/proxmox-archive-keyring-trixie.gpg
suite=trixie

while [ $# -gt 0 ]; do
	case "$1" in
	--variant) variant=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--mirror) mirror=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "rootfs.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

# What every node needs to boot (UEFI and BIOS), come up on the network the
# way Proxmox configures it (ifupdown2, vmbr0) and run the first-boot phase.
base_pkgs="systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools
grub-efi-amd64 grub-pc-bin grub-efi-amd64-bin grub-efi-amd64-signed shim-signed efibootmgr
ifupdown2 bridge-utils iproute2 openssh-server chrony ca-certificates
lvm2 thin-provisioning-tools e2fsprogs dosfstools locales tzdata
console-setup keyboard-configuration libyaml-0-2 libjson-c5 libarchive13
libcurl4 libblkid1 libfdisk1 zstd less"

case "$variant" in
debian)
	name=debian-13-rootfs
	pkgs=$base_pkgs
	;;
pve)
	name=pve-9-rootfs
	# proxmox-ve pulls the Proxmox kernel (proxmox-default-kernel) and
	# proxmox-boot-tool; postfix and open-iscsi are what the Proxmox
	# installer adds, chrony is its time daemon.
	pkgs="$base_pkgs proxmox-ve postfix open-iscsi"
	keyring=$(mktemp --suffix=.gpg)
	trap 'rm -f "$keyring"' EXIT
	curl -fsSL -o "$keyring" "$pve_key_url"
	;;
*) echo "rootfs.sh: --variant is debian or pve" >&2; exit 2 ;;
esac

mkdir -p "$out"
out=$(cd "$out" && pwd) # the hooks run elsewhere
boot_hook=$(cd "$(dirname "$0")" && pwd)/rootfs-boot.sh
tmp="$out/$name.partial.tar.zst" # the suffix tells mmdebstrap to compress
start=$(date +%s)

# Hooks are shell commands with the chroot in $1. (mmdebstrap's special
# hooks, copy-out/sync-out/upload/download, are not run by a shell: a "$1"
# there stays literal and makes a directory named '$1' in the current
# one, which is how a stray '$1/.packages/.packages' once got committed.)
# No comment lines inside the continued command below: one would end it.
set -- --mode=root --variant=minbase --format=tar \
	--include="$(echo $pkgs | tr ' ' ',')" \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--customize-hook='chroot "$1" dpkg-query -W -f="\${Package}\t\${Version}\t\${Architecture}\n" > "'"$out/$name.packages.tmp"'"' \
	--customize-hook='"'"$boot_hook"'" "$1"' \
	--customize-hook='rm -f "$1/etc/ssh/ssh_host_"* "$1/var/lib/dbus/machine-id" && : > "$1/etc/machine-id"' \
	--customize-hook='rm -rf "$1/var/cache/apt/"*.bin "$1/var/lib/apt/lists/"*_Packages'
if [ "$variant" = pve ]; then
	# The enterprise repository needs a subscription: disabled (it is
	# also what the Proxmox installer's "no-subscription" setup does).
	set -- "$@" \
		--setup-hook='mkdir -p "$1/etc/apt/keyrings"' \
		--setup-hook="upload $keyring /etc/apt/keyrings/proxmox-archive-keyring.gpg" \
		--customize-hook="sed -i 's#signed-by=$keyring#signed-by=/etc/apt/keyrings/proxmox-archive-keyring.gpg#' \"\$1/etc/apt/sources.list\"" \
		--customize-hook='rm -f "$1/etc/apt/sources.list.d/pve-enterprise.sources" "$1/etc/apt/sources.list.d/pve-enterprise.list" "$1/etc/apt/sources.list.d/ceph.sources"'
	mmdebstrap "$@" "$suite" "$tmp" \
		"deb $mirror $suite main contrib" \
		"deb $mirror $suite-updates main contrib" \
		"deb http://security.debian.org/debian-security $suite-security main contrib" \
		"deb [signed-by=$keyring] $pve_repo $suite pve-no-subscription" # host path while building, the target's after
else
	mmdebstrap "$@" "$suite" "$tmp" \
		"deb $mirror $suite main" \
		"deb $mirror $suite-updates main" \
		"deb http://security.debian.org/debian-security $suite-security main"
fi
mv "$out/$name.packages.tmp" "$out/$name.packages"
mv "$tmp" "$out/$name.tar.zst"
end=$(date +%s)
echo "rootfs.sh: $out/$name.tar.zst: $(du -h "$out/$name.tar.zst" | cut -f1)," \
	"$(wc -l < "$out/$name.packages") packages, $((end - start)) s"
