#!/bin/bash
# Every refusal of the disk safety policy, each with exit status 3 and a
# message naming what was found: an ext4 file system, a foreign GPT, an MBR,
# LVM from another system, the boot medium, a mounted disk, a disk too
# small, two matching disks, no matching disk, no --yes. Every refused image
# is byte for byte what it was before.
. "$TOP/tests/lib.sh"
. "$TOP/tests/integration/disk-lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"
cd "$TESTTMP"

sum() { sha256sum "$1" | cut -d' ' -f1; }
# refused MANIFEST IMAGE NEEDLE — apply refuses with exit 3, says NEEDLE, writes nothing
refused() {
	local before
	before=$(sum "$2")
	expect_exit 3 "$DEVOPSLAB" disk apply --manifest "$1" --node n1 --device "$2" --memory 4G --yes
	assert_contains "$OUT" "$3"
	assert_eq "$before" "$(sum "$2")" "$2 after a refused apply"
	expect_exit 3 "$DEVOPSLAB" disk plan --manifest "$1" --node n1 --device "$2" --memory 4G
	assert_eq "$before" "$(sum "$2")" "$2 after plan"
}

mk_manifest never.yaml never 'transport: nvme'
mk_manifest ours.yaml devopslab 'transport: nvme'

# ext4 on the whole disk
truncate -s 2G ext4.img
mkfs.ext4 -q -F -L userdata ext4.img
refused never.yaml ext4.img "ext4"
refused ours.yaml ext4.img "ext4"

# a foreign GPT (made by sfdisk, without our marker)
truncate -s 2G gpt.img
printf 'label: gpt\n,512M,U\n,,L\n' | sfdisk -q gpt.img >/dev/null
refused never.yaml gpt.img "gpt"
refused ours.yaml gpt.img "gpt"

# an MBR
truncate -s 2G mbr.img
printf 'label: dos\n,,83\n' | sfdisk -q mbr.img >/dev/null
refused never.yaml mbr.img "dos"

# LVM from another system: a PV and VG "othervg" on the whole disk
truncate -s 2G lvm.img
l=$(attach lvm.img)
pvcreate -q --config "$(lvm_cfg "$l")" "$l" >/dev/null 2>&1
vgcreate -q --config "$(lvm_cfg "$l")" othervg "$l" >/dev/null 2>&1
losetup -d "$l"
blkid -p -o value -s TYPE lvm.img | grep -qx LVM2_member || fail "setup: no PV on lvm.img"
refused never.yaml lvm.img "LVM2_member"
refused ours.yaml lvm.img "LVM2_member"

# too small for the layout (even with wipe: always)
mk_manifest always.yaml always 'transport: nvme'
truncate -s 1G small.img
expect_exit 3 "$DEVOPSLAB" disk apply --manifest always.yaml --node n1 --device small.img --memory 4G --yes
assert_contains "$OUT" "small"
assert_eq "0" "$(du -k small.img | cut -f1)" "small.img written"

# a mounted disk (ext4, mounted here): refused even with wipe: always
truncate -s 64M mnt.img
mkfs.ext4 -q -F mnt.img
lm=$(attach mnt.img)
mkdir mnt
mount -o ro "$lm" mnt
on_exit "umount $TESTTMP/mnt 2>/dev/null"
expect_exit 3 "$DEVOPSLAB" disk apply --manifest always.yaml --node n1 --device "$lm" --memory 4G --yes
assert_contains "$OUT" "mounted"
umount mnt

# the boot medium: the disk holding / (plan only: it never opens the disk)
root=$(findmnt -no SOURCE / || true)
if [ -b "$root" ]; then
	pk=$(lsblk -no PKNAME "$root" | head -1)
	bootdisk=/dev/${pk:-$(basename "$root")}
	expect_exit 3 "$DEVOPSLAB" disk plan --manifest always.yaml --node n1 --device "$bootdisk" --memory 4G
	assert_contains "$OUT" "boot medium"
	expect_exit 3 "$DEVOPSLAB" disk apply --manifest always.yaml --node n1 --device "$bootdisk" --memory 4G --yes
	assert_contains "$OUT" "boot medium"
	# and "disk list" says so too
	"$DEVOPSLAB" disk list --json >list.json
	$PY - list.json "$bootdisk" <<'PYEOF'
import json, sys
disks = json.load(open(sys.argv[1]))
disks = disks["disks"] if isinstance(disks, dict) else disks
d = [d for d in disks if d["path"] == sys.argv[2]]
assert d, sys.argv[2]
print(d[0])
PYEOF
else
	echo "note: / is not on a block device here; boot-medium case not run"
fi

# no --yes, not on a terminal: shows the plan, then refuses, writes nothing
truncate -s 32G empty.img
expect_exit 3 "$DEVOPSLAB" disk apply --manifest never.yaml --node n1 --device empty.img --memory 4G </dev/null
assert_contains "$OUT" "without --yes"
assert_contains "$OUT" "pve"
assert_eq "0" "$(du -k empty.img | cut -f1)" "empty.img written without --yes"

# selection: two matches, no match (loop devices of an unusual size)
truncate -s 3001M s1.img s2.img
a1=$(attach s1.img); a2=$(attach s2.img)
mk_manifest sel.yaml always 'transport: loop, min_size: 3000M, max_size: 3002M'
expect_exit 3 "$DEVOPSLAB" disk apply --manifest sel.yaml --node n1 --memory 4G --yes
assert_contains "$OUT" "more than one"
assert_contains "$OUT" "+ $a1"
assert_contains "$OUT" "+ $a2"
losetup -d "$a1"; losetup -d "$a2"
expect_exit 3 "$DEVOPSLAB" disk apply --manifest sel.yaml --node n1 --memory 4G --yes
assert_contains "$OUT" "no disk matches"
assert_eq "0 0" "$(du -k s1.img | cut -f1) $(du -k s2.img | cut -f1)" "selection images written"
echo "t-disk-refuse: ok"
