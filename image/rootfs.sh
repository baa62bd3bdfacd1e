#!/bin/sh
# image/rootfs.sh — build the root file system archive the bundle carries
# as its `rootfs` asset (docs/install.md, "The rootfs recipes").
#
# Usage: image/rootfs.sh [--variant debian|pve] [--out DIR] [--mirror URL]
#   --variant debian  Debian 13 (trixie) only: what tests and the demo use,
#                     because the Proxmox repository is not reachable here.
#   --variant pve     Proxmox VE 9 on Debian 13 as Proxmox documents it (its
#                     hooks: image/rootfs-pve.sh); needs Proxmox's repository.
# Output: DIR/<name>.tar.zst and DIR/<name>.packages (dpkg-query list:
# the pinned versions, recorded next to the archive and put in the bundle).
# Needs root (mmdebstrap --mode=root keeps owners, devices, capabilities).
set -eu

variant=debian
out=out/rootfs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
pve_repo=http://download.proxmox.com/debian/pve
pve_key_url=https://enterprise.proxmox.com/debian/proxmox-archive-keyring-trixie.gpg
# The keyring's SHA-256 as pve-docs gives it (pve-package-repos.adoc,
# "SecureApt", pve-docs 9.1.3): a changed file stops the build.
pve_key_sha256=136673be77aba35dcce385b28737689ad64fd785a797e57897589aed08db6e45
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
# way Proxmox configures it (ifupdown2, vmbr0) and run the first-boot phase;
# Debian's node exporter, which the lab's Prometheus scrapes on every host
# (:9100, docs/monitoring.md), and rsyslog, which sends the host's logs to
# the lab's log store (config-logs), each enabled by its package.
base_pkgs="systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools
grub-efi-amd64 grub-pc-bin grub-efi-amd64-bin grub-efi-amd64-signed shim-signed efibootmgr
ifupdown2 bridge-utils iproute2 openssh-server chrony ca-certificates
lvm2 thin-provisioning-tools e2fsprogs dosfstools locales tzdata
console-setup keyboard-configuration libyaml-0-2 libjson-c5 libarchive13
libcurl4 libblkid1 libfdisk1 libisofs6 libmicrohttpd12t64 zstd less
prometheus-node-exporter rsyslog"

case "$variant" in
debian)
	name=debian-13-rootfs
	pkgs=$base_pkgs
	;;
pve)
	name=pve-9-rootfs
	# The steps of "Install Proxmox VE on Debian 13 Trixie" (pve.proxmox.com
	# /wiki/Install_Proxmox_VE_on_Debian_13_Trixie: install the kernel,
	# the packages, remove Debian's kernel and os-prober; the page is not
	# readable from the build machines, docs/install.md says what rests on
	# it): Proxmox's kernel, proxmox-default-kernel, in place of Debian's
	# linux-image-amd64, which is never installed rather than removed
	# afterwards (image/rootfs-pve.sh checks that no linux-image-* and no
	# os-prober got in); proxmox-ve, postfix, open-iscsi (chrony: base list).
	# proxmox-secure-boot-support: the Secure Boot packages, signed by
	# Proxmox (pve-docs, system-booting.adoc, "Secure Boot").
	pkgs=
	for p in $base_pkgs; do
		[ "$p" = linux-image-amd64 ] || pkgs="$pkgs $p"
	done
	pkgs="$pkgs proxmox-default-kernel proxmox-ve postfix open-iscsi proxmox-secure-boot-support"
	keyring=$(mktemp --suffix=.gpg)
	trap 'rm -f "$keyring"' EXIT
	curl -fsSL -o "$keyring" "$pve_key_url"
	if ! echo "$pve_key_sha256  $keyring" | sha256sum -c --status -; then
		echo "rootfs.sh: '$pve_key_url' is not the keyring pve-docs gives" \
			"(SHA-256 $pve_key_sha256); check Proxmox's documentation" >&2
		exit 1
	fi
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
	--customize-hook='test -L "$1/etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service" || { echo "rootfs.sh: prometheus-node-exporter is not enabled" >&2; exit 1; }' \
	--customize-hook='test -L "$1/etc/systemd/system/multi-user.target.wants/rsyslog.service" || { echo "rootfs.sh: rsyslog is not enabled" >&2; exit 1; }' \
	--customize-hook='rm -f "$1/etc/ssh/ssh_host_"* "$1/var/lib/dbus/machine-id" && : > "$1/etc/machine-id"' \
	--customize-hook='rm -rf "$1/var/cache/apt/"*.bin "$1/var/lib/apt/lists/"*_Packages'
if [ "$variant" = pve ]; then
	# The pve-only hooks are image/rootfs-pve.sh's phases (docs/install.md,
	# "The Proxmox VE recipe"); mmdebstrap passes these variables on.
	ROOTFS_PVE_HOOKS=$(cd "$(dirname "$0")" && pwd)/rootfs-pve.sh
	ROOTFS_PVE_REPO=$pve_repo ROOTFS_MIRROR=$mirror ROOTFS_SUITE=$suite
	export ROOTFS_PVE_HOOKS ROOTFS_PVE_REPO ROOTFS_MIRROR ROOTFS_SUITE
	# "verify" reads apt's lists, so it goes before the hooks above (one
	# of them deletes the lists); the Proxmox keyring goes where
	# proxmox-archive-keyring keeps it up to date (pve-docs, "SecureApt").
	# shellcheck disable=SC2016 # the hooks' $1 is for mmdebstrap's sh
	set -- --customize-hook='"$ROOTFS_PVE_HOOKS" verify "$1"' "$@" \
		--setup-hook='mkdir -p "$1/usr/share/keyrings"' \
		--setup-hook="upload $keyring /usr/share/keyrings/proxmox-archive-keyring.gpg" \
		--setup-hook='"$ROOTFS_PVE_HOOKS" setup "$1"' \
		--essential-hook='"$ROOTFS_PVE_HOOKS" essential "$1"' \
		--customize-hook='"$ROOTFS_PVE_HOOKS" customize "$1"'
	# Debian's components as pve-docs lists them (pve-package-repos.adoc,
	# "Debian Base Repositories"); the keyring by its host path while
	# building: the hooks write the node's sources (deb822) at the end.
	mmdebstrap "$@" "$suite" "$tmp" \
		"deb $mirror $suite main non-free-firmware" \
		"deb $mirror $suite-updates main non-free-firmware" \
		"deb http://security.debian.org/debian-security $suite-security main non-free-firmware" \
		"deb [signed-by=$keyring] $pve_repo $suite pve-no-subscription"
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
