#!/bin/bash
# The bootloader step (provisioner/lib/install/bootloader.c) on this host, driven by
# build/tests/harness/bootloader-step: a sparse disk image on a loop device
# with our GPT (1 MiB BIOS boot, ESP, root), the Debian 13 rootfs extracted
# onto an ext4 root, then check/apply/check as the step engine runs them.
#
# This host's kernel has no vfat, so the ESP is a plain directory and
# grub-install --target=x86_64-efi refuses it: the step must fail there,
# say so with grub-install's message, and still have done everything
# before it (initramfs with lvm, GRUB for BIOS in sector 0 and the BIOS
# boot partition, grub.cfg with our console settings), write no marker,
# and leave no mount behind. The UEFI half (shim, fallback path, Secure
# Boot) and booting both ways are the QEMU e2e test's.
# timeout: 300
. "$TOP/tests/lib.sh"
cd "$TESTTMP"

[ "$(id -u)" = 0 ] || skip "needs root (loop devices, mounts, chroot)"
case $DEVOPSLAB in
"$TOP"/provisioner/*) build=$TOP/build ;;
*) build=$(dirname "$DEVOPSLAB") ;;
esac
HARNESS=$build/tests/harness/bootloader-step
[ -x "$HARNESS" ] || fail "no $HARNESS (make tests)"
ROOTFS=$TOP/out/rootfs/debian-13-rootfs.tar.zst
if [ ! -f "$ROOTFS" ]; then
	make -C "$TOP" rootfs >"$TESTTMP/rootfs.log" 2>&1 || { tail -20 "$TESTTMP/rootfs.log"; fail "make rootfs"; }
fi

# Cleanup, pass or fail, last registered first: unmount the target (and
# anything a broken step left below it), then detach the loop device.
MNT=$TESTTMP/target
mkdir -p "$MNT"
LOOP= RLOOP=
detach() {
	[ -n "$RLOOP" ] && losetup -d "$RLOOP" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	true
}
unmount_all() {
	findmnt -rn -o TARGET | grep -F "$MNT" | sort -r | while read -r m; do umount -l "$m"; done
	true
}
on_exit detach
on_exit unmount_all

img=$TESTTMP/disk.img
truncate -s 3G "$img"
sfdisk -q "$img" <<'EOF'
label: gpt
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios
size=128MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name=root
EOF
# This kernel makes no partition devices for loop devices: the root file
# system gets a loop device of its own, at partition 3's offset (grub-probe
# then sees it as a disk of its own; GRUB still embeds into LOOP's GPT).
part() { # N FIELD
	sfdisk --json "$img" | $PY -c '
import json, sys
p = json.load(sys.stdin)["partitiontable"]["partitions"][int(sys.argv[1]) - 1]
print(p[sys.argv[2]])' "$1" "$2"
}
LOOP=$(losetup --show -f "$img")
RLOOP=$(losetup --show -f -o $(($(part 3 start) * 512)) --sizelimit $(($(part 3 size) * 512)) "$img")
P1=$(part 1 start)
mkfs.ext4 -q -F "$RLOOP"
mount "$RLOOP" "$MNT"
start=$(date +%s)
zstd -dc "$ROOTFS" | tar -x --numeric-owner --xattrs --xattrs-include='*' -C "$MNT"
mkdir -p "$MNT/boot/efi"
echo "extract: $(($(date +%s) - start))s"
kver=$(cd "$MNT/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | head -1)
[ -n "$kver" ] || fail "no kernel in the rootfs"
rm -f "$MNT"/boot/initrd.img-* # the step must create it
dd if=/dev/zero of="$LOOP" bs=440 count=1 conv=notrunc 2>/dev/null

# The installer kernel's command line: a VGA and a serial console, and a
# console= value that must not reach the config file.
mkdir -p proc
printf 'BOOT_IMAGE=/vmlinuz quiet console=tty0 console=ttyS0,115200n8 console=ttyS0";reboot devopslab.url=x\n' \
	>proc/cmdline

# --- no disk path: a clear error, nothing mounted ----------------------------
expect_exit 1 "$HARNESS" "$MNT" "" "$TESTTMP/proc"
assert_contains "$OUT" "no target disk"

# --- apply: BIOS done, EFI refused on this host's non-FAT ESP -----------------
start=$(date +%s)
expect_exit 1 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc"
echo "$OUT"
echo "apply: $(($(date +%s) - start))s"
assert_contains "$OUT" "check: not done"
assert_contains "$OUT" "apply: failed: '/usr/sbin/grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=proxmox --no-nvram' failed (exit 1): /usr/sbin/grub-install: error: /boot/efi doesn't look like an EFI partition."

# no mount left below the target, and the target itself still mounted
left=$(findmnt -rn -o TARGET | grep -F "$MNT/" || true)
assert_eq "" "$left" "mounts left below the target"
findmnt -rn "$MNT" >/dev/null || fail "the target root itself was unmounted"

# the config file
cat >want.cfg <<'EOF'
# Written by devopslab (docs/install.md, "Boot loader").
GRUB_DISTRIBUTOR="Proxmox VE"
# The installer's consoles, as debian-installer carries them over.
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF
cmp want.cfg "$MNT/etc/default/grub.d/devopslab.cfg" || { diff want.cfg "$MNT/etc/default/grub.d/devopslab.cfg"; fail "devopslab.cfg"; }

# the initramfs, made for the kernel, with lvm (the root is on LVM)
[ -s "$MNT/boot/initrd.img-$kver" ] || fail "no initrd.img-$kver"
chroot "$MNT" /usr/bin/lsinitramfs "/boot/initrd.img-$kver" >initrd.list
grep -qE '^usr/sbin/lvm$|^sbin/lvm$' initrd.list || fail "the initramfs has no lvm"
# Debian 13's lvm2 activates volumes from its udev rule in the initramfs
grep -q 'usr/lib/udev/rules.d/69-lvm.rules' initrd.list || fail "the initramfs has no lvm activation rule"

# GRUB for BIOS: boot.img in sector 0 (its "GRUB " message), the partition
# table kept, core.img embedded in the BIOS boot partition (diskboot.img,
# whose block list grub-install patches, then the rest byte for byte).
dd if="$LOOP" bs=440 count=1 2>/dev/null | grep -qa 'GRUB ' || fail "sector 0 has no GRUB boot code"
sfdisk -d "$LOOP" | grep -q 'name="root"' || fail "the GPT was damaged"
core=$MNT/boot/grub/i386-pc/core.img
[ -s "$core" ] || fail "no /boot/grub/i386-pc/core.img"
dd if="$LOOP" bs=512 skip="$P1" count=1 2>/dev/null | grep -qa loading || fail "no diskboot.img at the BIOS boot partition"
# (lzma_decompress.img's header, the next 64 bytes, gets the Reed-Solomon
# lengths; the data after it is unchanged, parity is appended)
n=$(stat -c %s "$core")
cmp -i 576:576 -n $((n - 576)) "$core" <(dd if="$LOOP" bs=512 skip="$P1" count=$((n / 512 + 1)) 2>/dev/null) ||
	fail "the BIOS boot partition does not hold core.img"

# grub.cfg, from update-grub with our settings: the serial terminal. (No
# kernel entries here: 10_linux skips a root on a loop device backed by a
# file, and this kernel has no device-mapper to put one in between; the
# QEMU e2e test boots the entries.)
cfg=$MNT/boot/grub/grub.cfg
assert_contains "$cfg" "### BEGIN /etc/grub.d/00_header ###"
assert_contains "$cfg" "serial --unit=0 --speed=115200"
assert_contains "$cfg" "terminal_input console serial"
assert_contains "$cfg" "terminal_output console serial"
grep -q 'reboot' "$MNT/etc/default/grub.d/devopslab.cfg" && fail "a hostile console= value was carried over"

# the fallback path stays renewed on grub-efi-amd64 upgrades (debconf)
grep -A3 '^Name: grub2/force_efi_extra_removable$' "$MNT/var/cache/debconf/config.dat" >debconf.txt ||
	fail "grub2/force_efi_extra_removable not in debconf"
assert_contains debconf.txt "Value: true"

# failed: no marker, check not done
[ ! -e "$MNT/var/lib/devopslab/bootloader.done" ] || fail "marker written after a failure"

# --- a killed run's leftover bind mount, then a failing update-initramfs -------
mount --bind /dev "$MNT/dev"
mount --make-rslave "$MNT/dev"
mv "$MNT/usr/sbin/update-initramfs" "$MNT/usr/sbin/update-initramfs.off"
printf '#!/bin/sh\necho "update-initramfs: refusing for the test" >&2\nexit 3\n' >"$MNT/usr/sbin/update-initramfs"
chmod 755 "$MNT/usr/sbin/update-initramfs"
expect_exit 1 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc"
assert_contains "$OUT" "apply: failed: '/usr/sbin/update-initramfs -u -k $kver' failed (exit 3): update-initramfs: refusing for the test"
left=$(findmnt -rn -o TARGET | grep -F "$MNT/" || true)
assert_eq "" "$left" "mounts left below the target after a failed command"
mv "$MNT/usr/sbin/update-initramfs.off" "$MNT/usr/sbin/update-initramfs"

# --- BIOS only: the whole step succeeds, converges, and is found done ----------
expect_exit 0 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc" i386-pc
assert_contains "$OUT" "apply: ok"
assert_eq "check: not done
apply: ok
check: done" "$OUT" "harness output"
printf 'loader grub\ntargets i386-pc\ndisk %s\nkernel %s\n' "$LOOP" "$kver" >want.marker
cmp want.marker "$MNT/var/lib/devopslab/bootloader.done" || fail "marker content"
left=$(findmnt -rn -o TARGET | grep -F "$MNT/" || true)
assert_eq "" "$left" "mounts left below the target after success"
expect_exit 0 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc" i386-pc
assert_eq "check: done" "$OUT" "second run"
# the plan's targets (with EFI) are not done by a BIOS-only install
expect_exit 1 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc" x86_64-efi
assert_contains "$OUT" "check: not done"
assert_contains "$OUT" "doesn't look like an EFI partition"
[ ! -e "$MNT/var/lib/devopslab/bootloader.done" ] || fail "marker kept after a failed re-run"

# --- unmount and detach: nothing of ours left ---------------------------------
umount "$MNT"
losetup -d "$RLOOP" "$LOOP"
LOOP= RLOOP=
sleep 0.2
if losetup -l -n -O NAME,BACK-FILE | grep -F "$img"; then fail "a loop device still holds the image"; fi
echo "ok"
