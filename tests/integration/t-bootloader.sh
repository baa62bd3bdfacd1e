#!/bin/bash
# The bootloader step (provisioner/lib/install/bootloader.c) on this host, driven by
# build/tests/harness/bootloader-step: a sparse disk image on a loop device
# with our GPT (BIOS boot, ESP, root), the Debian 13 rootfs as image/rootfs.sh
# builds it (with the generic initramfs, GRUB's files and the BIOS core image
# of image/rootfs-boot.sh) extracted onto an ext4 root, then check/apply/check
# as the step engine runs them.
#
# This host's kernel has no vfat: the ESP is a tmpfs mounted at boot/efi (the
# step wants a mount point there, and FAT has nothing the files rely on).
# Checked: the whole step succeeds for both firmwares without rebuilding the
# initramfs; GRUB's boot code in sector 0 and the prepared core.img in the
# BIOS boot partition; grub.cfg (syntax by grub-script-check, the root UUID,
# the consoles); the ESP files byte for byte against the rootfs's signed
# shim and GRUB, and the stubs; a re-run finds it done; a leftover bind of
# a killed run, a failing tool and a missing initramfs (update-initramfs
# makes it, with lvm); an ESP not mounted is refused, BIOS alone still
# works; no mount left behind, ever. Booting both ways is the QEMU e2e
# test's (tests/integration/t-e2e-install.sh).
# needs: rootfs
# timeout: 400
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
UUID=2f1c9a4e-5b7d-4e3a-9c61-0d8e7f6a5b4c

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
# Mounts below the target other than the ESP: the step's binds.
binds_left() { findmnt -rn -o TARGET | grep -F "$MNT/" | grep -vx "$MNT/boot/efi" || true; }

img=$TESTTMP/disk.img
truncate -s 3G "$img"
sfdisk -q "$img" <<'EOF'
label: gpt
first-lba: 34
start=34, size=2014, type=21686148-6449-6E6F-744E-656564454649, name=bios
start=2048, size=128MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
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
mkfs.ext4 -q -F -U "$UUID" "$RLOOP"
mount "$RLOOP" "$MNT"
start=$(date +%s)
tar --zstd -xf "$ROOTFS" --numeric-owner --xattrs --xattrs-include='*' -C "$MNT"
mkdir -p "$MNT/boot/efi"
mount -t tmpfs -o size=64m tmpfs "$MNT/boot/efi"
echo "extract: $(($(date +%s) - start))s"
kver=$(cd "$MNT/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | head -1)
[ -n "$kver" ] || fail "no kernel in the rootfs"
# what image/rootfs-boot.sh prepared
for f in "boot/initrd.img-$kver" boot/grub/i386-pc/core.img boot/grub/i386-pc/boot.img boot/grub/i386-pc/normal.mod \
	boot/grub/x86_64-efi/normal.mod boot/grub/fonts/unicode.pf2 boot/grub/grubenv; do
	[ -s "$MNT/$f" ] || fail "the rootfs has no /$f (image/rootfs-boot.sh)"
done
cp "$MNT/boot/initrd.img-$kver" initrd.orig
core_sum=$(sha256sum <"$MNT/boot/grub/i386-pc/core.img")
dd if=/dev/zero of="$LOOP" bs=440 count=1 conv=notrunc 2>/dev/null

# The installer kernel's command line: a VGA and a serial console, and a
# console= value that must not reach the config files; what follows "---"
# is the installed system's too.
mkdir -p proc
printf 'BOOT_IMAGE=/vmlinuz quiet console=tty0 console=ttyS0,115200n8 console=ttyS0";reboot devopslab.url=x --- no_timer_check\n' \
	>proc/cmdline

# config-network's .link (the NIC named by its MAC): it goes into the
# initramfs, in front of the rootfs's one
mkdir -p "$MNT/etc/systemd/network"
printf '[Match]\nMACAddress=52:54:00:0a:00:01\nType=ether\n\n[Link]\nName=nic0\n' \
	>"$MNT/etc/systemd/network/10-devopslab-nic0.link"

# --- refused: no root UUID, no disk ------------------------------------------------
expect_exit 1 "$HARNESS" "$MNT" "$LOOP" "$TESTTMP/proc"
assert_contains "$OUT" "no root file system UUID (root_uuid)"
expect_exit 1 "$HARNESS" --root-uuid "$UUID" "$MNT" "" "$TESTTMP/proc"
assert_contains "$OUT" "no target disk"
assert_eq "" "$(binds_left)" "mounts left below the target"

# --- apply, both firmwares ------------------------------------------------------------
start=$(date +%s)
expect_exit 0 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc"
echo "apply: $(($(date +%s) - start))s"
assert_eq "check: not done
apply: ok
check: done" "$OUT" "harness output"
assert_eq "" "$(binds_left)" "mounts left below the target"
findmnt -rn "$MNT" >/dev/null || fail "the target root itself was unmounted"

# the config file for update-grub on the node
cat >want.cfg <<'EOF'
# Written by devopslab (docs/install.md, "Boot loader").
GRUB_DISTRIBUTOR="Proxmox VE"
# The installer's consoles and what followed its "---", as debian-installer
# carries them over.
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 no_timer_check"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF
cmp want.cfg "$MNT/etc/default/grub.d/devopslab.cfg" || { diff want.cfg "$MNT/etc/default/grub.d/devopslab.cfg"; fail "devopslab.cfg"; }

# the rootfs's initramfs is the one booted, not rebuilt: the node's .link
# file in an archive in front of it, the rest byte for byte
initrd=$MNT/boot/initrd.img-$kver
extra=$(($(stat -c %s "$initrd") - $(stat -c %s initrd.orig)))
[ "$extra" -gt 0 ] && [ $((extra % 512)) = 0 ] || fail "no overlay archive in front of the initramfs ($extra bytes)"
cmp -i "$extra:0" "$initrd" initrd.orig || fail "the initramfs behind the overlay is not the rootfs's"
chroot "$MNT" /usr/bin/lsinitramfs "/boot/initrd.img-$kver" >initrd.list
for f in usr/sbin/lvm usr/lib/udev/rules.d/69-lvm.rules usr/sbin/fsck.ext4 \
	usr/lib/systemd/network/10-devopslab-nic0.link devopslab-node-files; do
	grep -qx "$f" initrd.list || fail "the initramfs has no $f (lsinitramfs)"
done
rm -rf unpacked
chroot "$MNT" /usr/bin/unmkinitramfs "/boot/initrd.img-$kver" /tmp/unpacked
mv "$MNT/tmp/unpacked" unpacked
# (Debian 13's unmkinitramfs unpacks every archive into the one directory)
cmp "$MNT/etc/systemd/network/10-devopslab-nic0.link" unpacked/usr/lib/systemd/network/10-devopslab-nic0.link ||
	fail "the .link file in the initramfs differs"
[ -x unpacked/init ] && [ -x unpacked/usr/sbin/lvm ] || fail "unmkinitramfs found no initramfs behind the overlay"

# GRUB for BIOS: boot.img in sector 0 (its "GRUB " message), the partition
# table kept, the prepared core.img (unchanged) in the BIOS boot partition
# (diskboot.img, whose block list grub-bios-setup patches, then the rest
# byte for byte).
dd if="$LOOP" bs=440 count=1 2>/dev/null | grep -qa 'GRUB ' || fail "sector 0 has no GRUB boot code"
sfdisk -d "$LOOP" | grep -q 'name="root"' || fail "the GPT was damaged"
core=$MNT/boot/grub/i386-pc/core.img
assert_eq "$core_sum" "$(sha256sum <"$core")" "core.img was changed"
dd if="$LOOP" bs=512 skip="$P1" count=1 2>/dev/null | grep -qa loading || fail "no diskboot.img at the BIOS boot partition"
# (lzma_decompress.img's header, the next 64 bytes, gets the Reed-Solomon
# lengths; the data after it is unchanged, parity is appended)
n=$(stat -c %s "$core")
cmp -i 576:576 -n $((n - 576)) "$core" <(dd if="$LOOP" bs=512 skip="$P1" count=$((n / 512 + 1)) 2>/dev/null) ||
	fail "the BIOS boot partition does not hold core.img"

# grub.cfg: GRUB's own syntax check, the root by its UUID, the kernel with
# its initramfs and the consoles, the serial terminal; 0600 as update-grub
cfg=$MNT/boot/grub/grub.cfg
chroot "$MNT" /usr/bin/grub-script-check /boot/grub/grub.cfg || fail "grub-script-check refuses grub.cfg"
assert_eq 600 "$(stat -c %a "$cfg")" "grub.cfg mode"
assert_contains "$cfg" "search --no-floppy --fs-uuid --set=root $UUID"
assert_contains "$cfg" "	linux	/boot/vmlinuz-$kver root=/dev/mapper/pve-root ro console=tty0 console=ttyS0,115200n8 no_timer_check quiet"
assert_contains "$cfg" "	initrd	/boot/initrd.img-$kver"
assert_contains "$cfg" "serial --unit=0 --speed=115200"
assert_contains "$cfg" "terminal_output console serial"
grep -q 'reboot' "$MNT/etc/default/grub.d/devopslab.cfg" "$cfg" && fail "a hostile console= value was carried over"

# the ESP: the rootfs's signed shim and GRUB, MokManager, fallback, CSV
esp=$MNT/boot/efi/EFI
while read -r src dst; do
	cmp "$MNT/usr/lib/$src" "$esp/$dst" || fail "ESP $dst is not /usr/lib/$src"
done <<'EOF'
shim/shimx64.efi.signed proxmox/shimx64.efi
grub/x86_64-efi-signed/grubx64.efi.signed proxmox/grubx64.efi
shim/mmx64.efi.signed proxmox/mmx64.efi
shim/fbx64.efi.signed proxmox/fbx64.efi
shim/BOOTX64.CSV proxmox/BOOTX64.CSV
shim/shimx64.efi.signed BOOT/BOOTX64.EFI
grub/x86_64-efi-signed/grubx64.efi.signed BOOT/grubx64.efi
shim/mmx64.efi.signed BOOT/mmx64.efi
shim/BOOTX64.CSV BOOT/BOOTX64.CSV
EOF
printf "search.fs_uuid %s root\nset prefix=(\$root)'/boot/grub'\nconfigfile \$prefix/grub.cfg\n" "$UUID" >want.stub
cmp want.stub "$esp/proxmox/grub.cfg" || fail "ESP proxmox/grub.cfg"
cmp want.stub "$esp/BOOT/grub.cfg" || fail "ESP BOOT/grub.cfg"
assert_eq "BOOT proxmox" "$(ls "$esp" | tr '\n' ' ' | sed 's/ $//')" "ESP/EFI"
assert_eq "BOOTX64.CSV BOOTX64.EFI grub.cfg grubx64.efi mmx64.efi" "$(ls "$esp/BOOT" | tr '\n' ' ' | sed 's/ $//')" "ESP/EFI/BOOT"

# the fallback path stays renewed on grub-efi-amd64 upgrades (debconf, set
# when the rootfs was built)
grep -A3 '^Name: grub2/force_efi_extra_removable$' "$MNT/var/cache/debconf/config.dat" >debconf.txt ||
	fail "grub2/force_efi_extra_removable not in debconf"
assert_contains debconf.txt "Value: true"

printf 'loader grub\ntargets x86_64-efi i386-pc\ndisk %s\nkernel %s\n' "$LOOP" "$kver" >want.marker
cmp want.marker "$MNT/var/lib/devopslab/bootloader.done" || fail "marker content"

# --- a second run: found done, nothing written ------------------------------------
before=$(stat -c %Y.%i "$cfg" "$esp/BOOT/BOOTX64.EFI")
expect_exit 0 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc"
assert_eq "check: done" "$OUT" "second run"
assert_eq "$before" "$(stat -c %Y.%i "$cfg" "$esp/BOOT/BOOTX64.EFI")" "files rewritten by a run found done"

# --- a killed run's leftover bind mount, then a failing tool ---------------------------
rm "$MNT/var/lib/devopslab/bootloader.done"
mount --bind /dev "$MNT/dev"
mount --make-rslave "$MNT/dev"
setup=$MNT/usr/lib/grub/i386-pc/grub-bios-setup
mv "$setup" "$setup.off"
printf '#!/bin/sh\necho "grub-bios-setup: refusing for the test" >&2\nexit 3\n' >"$setup"
chmod 755 "$setup"
expect_exit 1 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc"
assert_contains "$OUT" "apply: failed: '/usr/lib/grub/i386-pc/grub-bios-setup --directory=/boot/grub/i386-pc $LOOP' failed (exit 3): grub-bios-setup: refusing for the test"
assert_eq "" "$(binds_left)" "mounts left below the target after a failed command"
[ ! -e "$MNT/var/lib/devopslab/bootloader.done" ] || fail "marker written after a failure"
mv "$setup.off" "$setup"

# --- a kernel without initramfs: update-initramfs makes it (the fallback) -------------
rm "$MNT/boot/initrd.img-$kver"
start=$(date +%s)
expect_exit 0 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc"
echo "apply with update-initramfs: $(($(date +%s) - start))s"
assert_eq "check: not done
apply: ok
check: done" "$OUT" "harness output (initramfs made)"
chroot "$MNT" /usr/bin/lsinitramfs "/boot/initrd.img-$kver" >initrd.list
grep -qx usr/sbin/lvm initrd.list || fail "the initramfs made at install has no lvm"
grep -qx usr/lib/systemd/network/10-devopslab-nic0.link initrd.list || fail "the initramfs made at install has no .link"
assert_eq "" "$(binds_left)" "mounts left below the target"

# --- the ESP not mounted: refused; BIOS alone still works ----------------------------
umount "$MNT/boot/efi"
expect_exit 1 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc"
assert_contains "$OUT" "apply: failed: '$MNT/boot/efi' is not a mount point: the ESP is not mounted"
[ -z "$(ls -A "$MNT/boot/efi")" ] || fail "files written into the root's /boot/efi"
[ ! -e "$MNT/var/lib/devopslab/bootloader.done" ] || fail "marker kept after a refused run"
expect_exit 0 "$HARNESS" --root-uuid "$UUID" "$MNT" "$LOOP" "$TESTTMP/proc" i386-pc
assert_eq "check: not done
apply: ok
check: done" "$OUT" "BIOS-only run"
printf 'loader grub\ntargets i386-pc\ndisk %s\nkernel %s\n' "$LOOP" "$kver" >want.marker
cmp want.marker "$MNT/var/lib/devopslab/bootloader.done" || fail "BIOS-only marker content"
assert_eq "" "$(binds_left)" "mounts left below the target"

# --- unmount and detach: nothing of ours left ---------------------------------
umount "$MNT"
losetup -d "$RLOOP" "$LOOP"
LOOP= RLOOP=
sleep 0.2
if losetup -l -n -O NAME,BACK-FILE | grep -F "$img"; then fail "a loop device still holds the image"; fi
echo "ok"
