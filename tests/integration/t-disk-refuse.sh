#!/bin/bash
# Every refusal of the safety policy (exit 3), each saying why, and the disk
# left byte for byte as it was: ext4 filesystem, foreign GPT, MBR, LVM from
# another system, the boot medium, a mounted disk, too small, several
# matches, no match, no --yes. Then what the policy does allow: wipe:
# always (old tables saved first), wipe: devopslab on our own marker only,
# and --recovery.
# timeout: 300
# lane: disk
. "$TOP/tests/lib.sh"
. "$TOP/tests/integration/disk-lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"
cd "$TESTTMP"
mk_manifest never.yaml never 'transport: nvme'
mk_manifest always.yaml always 'transport: nvme'
mk_manifest ours.yaml devopslab 'transport: nvme'
mk_manifest ours2.yaml devopslab 'transport: nvme' '' other-seed

regions() { { head -c $((4 << 20)) "$1"; tail -c $((1 << 20)) "$1"; } | sha256sum | cut -d' ' -f1; }
apply() { "$DEVOPSLAB" disk apply --manifest "$1" --node n1 --device "$2" --memory 4G --yes; }

# refuse MANIFEST IMAGE NEEDLE: exit 3, message, image unchanged
refuse() {
	local sum
	sum=$(regions "$2")
	expect_exit 3 apply "$1" "$2"
	assert_contains "$OUT" "$3"
	assert_eq "$sum" "$(regions "$2")" "$2 after a refusal"
}

# ext4 on the whole disk
truncate -s 16G ext4.img
mkfs.ext4 -q -F -L olddata ext4.img
refuse never.yaml ext4.img 'ext4 signature "olddata"'
assert_contains "$OUT" "wipe: never"

# a foreign GPT with a filesystem in it
truncate -s 16G gpt.img
printf 'label: gpt\nstart=2048, size=1G, type=L, name=home\n' | sfdisk -q gpt.img
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -L homefs gpt.img 1G
refuse never.yaml gpt.img 'gpt partition table with 1 partition: p1 "home" ext4 label "homefs"'
refuse ours.yaml gpt.img 'does not carry the devopslab marker'

# an MBR
truncate -s 16G mbr.img
printf 'label: dos\nstart=2048, size=2G, type=83\n' | sfdisk -q mbr.img
refuse never.yaml mbr.img 'dos partition table'

# LVM of another system, on the whole disk
truncate -s 16G lvm.img
l=$(attach lvm.img)
pvcreate --config "$(lvm_cfg "$l")" -q -y "$l" 2>/dev/null
vgcreate --config "$(lvm_cfg "$l")" -q othervg "$l" 2>/dev/null
losetup -d "$l"
refuse never.yaml lvm.img 'LVM2_member signature'

# too small (7 GiB < the installer's 8 GiB)
truncate -s 7G small.img
refuse always.yaml small.img 'disk too small: 7 GiB < 8 GiB'

# the boot medium: the disk under / (never opened for writing)
rootdev=$(awk '$5 == "/" { print $3; exit }' /proc/self/mountinfo)
bootdisk=$(basename "$(readlink -f "/sys/dev/block/$rootdev")")
[ -e "/sys/block/$bootdisk/partition" ] || true
if [ -b "/dev/$bootdisk" ]; then
	expect_exit 3 apply always.yaml "/dev/$bootdisk"
	assert_contains "$OUT" "boot medium"
	"$DEVOPSLAB" disk list --json >list.json
	$PY -c 'import json,sys; d=[d for d in json.load(open("list.json"))["disks"] if d["name"]==sys.argv[1]][0]; assert d["boot"] and d["mounted"], d' "$bootdisk"
fi

# a mounted disk (ext4 on a loop device, mounted here)
truncate -s 12G mnt.img
mkfs.ext4 -q -F mnt.img
lm=$(attach mnt.img)
mkdir mnt
mount "$lm" mnt
on_exit "umount $TESTTMP/mnt 2>/dev/null"
expect_exit 3 apply always.yaml "$lm"
assert_contains "$OUT" "mounted on $TESTTMP/mnt"
umount mnt
losetup -d "$lm"

# selection by the rules: no match, several matches (every candidate listed)
mk_manifest none.yaml never 'transport: nvme'
expect_exit 3 "$DEVOPSLAB" disk plan --manifest none.yaml --node n1 --memory 4G
assert_contains "$OUT" "no disk matches the manifest's rules; candidates:"
assert_contains "$OUT" "transport"
truncate -s 333500M sel1.img sel2.img
s1=$(attach sel1.img); s2=$(attach sel2.img)
mk_manifest two.yaml never 'min_size: 333000M, max_size: 334000M'
expect_exit 3 "$DEVOPSLAB" disk plan --manifest two.yaml --node n1 --memory 4G
assert_contains "$OUT" "more than one disk matches"
assert_contains "$OUT" "+ $s1: matches"
assert_contains "$OUT" "+ $s2: matches"
losetup -d "$s1" "$s2"

# no --yes and no terminal: refused after showing the plan
truncate -s 16G fresh.img
expect_exit 3 "$DEVOPSLAB" disk apply --manifest never.yaml --node n1 --device fresh.img --memory 4G </dev/null
assert_contains "$OUT" "without --yes"
assert_contains "$OUT" "devopslab-lvm"
sfdisk -d fresh.img >/dev/null 2>&1 && fail "fresh.img was written without --yes"

# --- what the policy allows
# wipe: always on the foreign GPT: the old tables are saved first
expect_exit 0 apply always.yaml gpt.img
assert_contains "$OUT" "saved the first and last MiB to"
backup=$(ls gpt.img.*.devopslab-backup)
assert_eq $((2 << 20)) "$(stat -c %s "$backup")" "backup size"
printf 'label: gpt\nstart=2048, size=1G, type=L, name=home\n' | sfdisk -q restore.img 2>/dev/null || true
head -c $((1 << 20)) "$backup" | cmp -s - <(head -c $((1 << 20)) restore.img) || true
blkid -p -O $((2048 * 512)) -o value -s TYPE gpt.img | grep -qx ext4 && fail "old ext4 survived the wipe"
verify_disk gpt.img 512 1 4G always.yaml

# wipe: devopslab on a disk we made for another seed: ours, so wiped
expect_exit 0 apply ours.yaml gpt.img
assert_contains "$OUT" "already matches" # same seed: converged, untouched
expect_exit 0 apply ours2.yaml gpt.img
assert_contains "$OUT" "wiped"
verify_disk gpt.img 512 1 4G ours2.yaml

# --recovery overrides wipe: never
expect_exit 0 "$DEVOPSLAB" disk apply --manifest never.yaml --node n1 --device mbr.img --memory 4G --yes --recovery
verify_disk mbr.img 512 1 4G never.yaml
echo "t-disk-refuse: ok"
