#!/bin/bash
# image/initramfs.sh — build out/initrd.img (newc cpio, zstd) from Debian
# packages installed on the build host plus the kernel unpacked by
# image/kernel.sh:
#   busybox (busybox-static), the modules of image/modules.list with their
#   dependencies and modules.dep (depmod -b, kmod), the firmware they ask for
#   where the build host has it, lvm2/e2fsprogs/dosfstools/util-linux tools,
#   devopslab with the closure of its shared libraries (ldd, stripped), the
#   files of overlays/initramfs/, the bundle's public key and, optionally,
#   the bundle.
#
#   image/initramfs.sh --pubkey PUB.pem [--bundle BUNDLE] [--binary DEVOPSLAB] [-o OUT]
. "$(dirname "$0")/lib.sh"

pubkey= bundle= binary=$TOP/provisioner/devopslab output=$OUT/initrd.img
while [ $# -gt 0 ]; do
	case $1 in
	--pubkey) pubkey=$2; shift 2 ;;
	--bundle) bundle=$2; shift 2 ;;
	--binary) binary=$2; shift 2 ;;
	-o) output=$2; shift 2 ;;
	*) die "initramfs.sh: unknown option '$1'" ;;
	esac
done
[ -n "$pubkey" ] || die "initramfs.sh: --pubkey PUB.pem is required"
[ -f "$pubkey" ] || die "public key '$pubkey' not found"
[ -x "$binary" ] || die "provisioner binary '$binary' not found (run make)"
kver=$(kernel_version)
kroot=$CACHE/kernel/root

mkdir -p "$OUT"
stage=$(mktemp -d /tmp/devopslab-initramfs.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc,dev,proc,sys,run,tmp,root,mnt,var/log}
ln -s ../run "$stage/var/run"
chmod 1777 "$stage/tmp"

# --- shared libraries: copy each ldd dependency once, stripped ------------
libdir=$stage/lib/x86_64-linux-gnu
mkdir -p "$libdir"
add_libs() { # ELF...
	ldd "$@" 2>/dev/null | awk '/=> \// { print $1, $3 } /^\t\/lib64\// { print "ld", $1 }' |
		sort -u | while read -r soname path; do
		if [ "$soname" = ld ]; then
			[ -e "$stage$path" ] || { install -D -m 755 "$(readlink -f "$path")" "$stage$path"; }
			continue
		fi
		[ -e "$libdir/$soname" ] && continue
		install -m 644 "$(readlink -f "$path")" "$libdir/$soname"
		strip --strip-unneeded "$libdir/$soname"
	done
}
add_bin() { # SRC DEST-in-stage
	install -D -m 755 "$1" "$stage$2"
	strip --strip-unneeded "$stage$2"
	add_libs "$1"
}

# --- the provisioner and the tools the install phase runs ------------------
add_bin "$binary" /usr/bin/devopslab
for t in /usr/sbin/lvm /usr/sbin/mke2fs /usr/sbin/mkfs.vfat /usr/sbin/blkid \
	/usr/sbin/sfdisk /usr/sbin/wipefs /usr/sbin/blkdiscard /usr/sbin/dmsetup /usr/sbin/pdata_tools \
	/usr/sbin/mkswap /usr/sbin/e2fsck /usr/sbin/fsck.fat; do
	[ -x "$t" ] || die "'$t' missing (scripts/install-deps.sh installs it)"
	add_bin "$t" "$t"
done
ln -s mke2fs "$stage/usr/sbin/mkfs.ext4"
ln -s fsck.fat "$stage/usr/sbin/fsck.vfat"
# LVM checks a thin pool's metadata with thin_check when it activates one.
for l in thin_check thin_repair thin_dump thin_restore; do
	ln -s pdata_tools "$stage/usr/sbin/$l"
done
for l in pvcreate pvs vgcreate vgchange vgs lvcreate lvchange lvs lvremove vgremove pvremove; do
	ln -s lvm "$stage/usr/sbin/$l"
done

# --- busybox: every applet not already provided by a real tool -------------
bb=/bin/busybox
dpkg -L busybox-static 2>/dev/null | grep -qx /bin/busybox || die "busybox-static is not installed"
install -m 755 "$bb" "$stage/bin/busybox"
for a in $("$bb" --list-full); do
	name=${a##*/}
	[ -e "$stage/usr/sbin/$name" ] || [ -e "$stage/usr/bin/$name" ] && continue
	[ -e "$stage/$a" ] || [ -L "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
done

# --- kernel modules with their dependencies, and the firmware they need -----
mods=$(sed 's/#.*//' "$TOP/image/modules.list" | tr -s ' \n' '\n' | sed '/^$/d')
# modprobe --show-depends prints "insmod /path.ko" per module in load order
# and "builtin NAME" for built-in ones.
# shellcheck disable=SC2086
paths=$(for m in $mods; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null ||
		{ grep -qw "$m" <(tr - _ <"$kroot/lib/modules/$kver/modules.builtin") || echo "MISSING $m"; }
done | awk '$1 == "insmod" { print $2 } $1 == "MISSING" { print }' | sort -u)
if grep -q '^MISSING' <<<"$paths"; then
	die "modules not in kernel $kver: $(grep '^MISSING' <<<"$paths" | cut -d' ' -f2 | tr '\n' ' ')"
fi
mdir=lib/modules/$kver
mkdir -p "$stage/$mdir"
for f in modules.order modules.builtin modules.builtin.modinfo; do
	cp "$kroot/$mdir/$f" "$stage/$mdir/"
done
fwmissing=
for p in $paths; do
	rel=${p#"$kroot"/}
	install -D -m 644 "$p" "$stage/$rel" # signed: never stripped
	for fw in $(modinfo -F firmware "$p"); do
		if [ -f "/lib/firmware/$fw" ]; then
			install -D -m 644 "/lib/firmware/$fw" "$stage/lib/firmware/$fw"
		else
			fwmissing="$fwmissing $fw"
		fi
	done
done
depmod -b "$stage" "$kver"
# The firmware not found on the build host (non-free-firmware packages
# such as firmware-realtek are not in the apt sources) is listed, not fatal:
# the drivers load without it (r8169 only patches some PHYs).
echo "$fwmissing" | tr ' ' '\n' | sed '/^$/d' | sort -u >"$OUT/firmware-missing.txt"

# --- overlays, key, bundle ----------------------------------------------------
cp -a "$TOP/overlays/initramfs/." "$stage/"
install -D -m 644 "$pubkey" "$stage/etc/devopslab/bundle.pub"
# Only here: with cluster.unattended, the install writes without asking.
echo "DevOpsLab boot image" >"$stage/etc/devopslab/installer-image"
if [ -n "$bundle" ]; then
	install -D -m 644 "$bundle" "$stage/devopslab/bundle.tar.zst"
fi
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
	install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
printf 'root:x:0:\n' >"$stage/etc/group"
echo "$kver" >"$stage/etc/devopslab/kernel-version"

# --- pack: sorted, fixed mtimes and owners, renumbered inodes, zstd ----------
fix_mtimes "$stage"
mkdir -p "$(dirname "$output")"
(cd "$stage" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
	zstd -q "-${ZSTD_LEVEL:-19}" -T2 -c >"$output.tmp"
mv "$output.tmp" "$output"
msg "initramfs: $(du -h "$output" | cut -f1) ($output)"
