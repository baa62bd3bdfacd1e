#!/bin/bash
# disk apply on sparse images of 32 GiB, 256 GiB and 2 TiB and on a 4Kn loop
# device: the result checked with sfdisk, blkid, lvs/pvs and fsck; a second
# apply changes nothing; re-runs give identical identifiers; a bystander
# image and loop device stay byte for byte the same.
# timeout: 600
# lane: disk
. "$TOP/tests/lib.sh"
. "$TOP/tests/integration/disk-lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"
cd "$TESTTMP"

# Bystanders: random data, one attached as a loop device.
head -c $((8 << 20)) /dev/urandom >other.img
head -c $((8 << 20)) /dev/urandom >other-loop.img
bystander=$(attach other-loop.img)
before=$(sha256sum other.img other-loop.img "$bystander" | awk '{print $1}')

mk_manifest m.yaml never 'transport: nvme'

# --- 32 GiB, 512-byte sectors, 8 GiB RAM
truncate -s 32G d32.img
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d32.img --memory 8G --yes
assert_contains "$OUT" "wrote the GPT"
verify_disk d32.img 512 1 8G m.yaml
sfdisk --json d32.img >first.json
# idempotent: nothing to do, nothing written
# (hashing 32 GiB of sparse zeros takes a minute: the metadata regions and
# the modification time tell the same story)
regions() { { head -c $((8 << 20)) "$1"; tail -c $((4 << 20)) "$1"; } | sha256sum | cut -d' ' -f1; }
sum1="$(regions d32.img) $(stat -c %Y.%y d32.img)"
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d32.img --memory 8G --yes
assert_contains "$OUT" "already matches the layout, nothing to do"
assert_eq "$sum1" "$(regions d32.img) $(stat -c %Y.%y d32.img)" "image after a no-op apply"
# reproducible identifiers: a fresh image with the same seed and node
truncate -s 32G d32b.img
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d32b.img --memory 8G --yes
sfdisk --json d32b.img | sed 's/d32b.img/d32.img/' >second.json
cmp first.json second.json || fail "same seed, different GPT"
u1=$(blkid -p -O 1048576 -o value -s UUID d32.img); u2=$(blkid -p -O 1048576 -o value -s UUID d32b.img)
assert_eq "$u1" "$u2" "ESP volume id"
# the planned /etc/fstab names the ESP by the volume id apply gave it
planned=$("$DEVOPSLAB" plan --manifest m.yaml --node n1 --json 2>/dev/null | $PY -c '
import json, sys
print(next(s["params"]["esp_uuid"] for s in json.load(sys.stdin)["steps"] if s["kind"] == "config-fstab"))')
assert_eq "$u1" "$planned" "ESP UUID in the planned /etc/fstab"
rm -f d32b.img

# --- 256 GiB with storage overrides, 16 GiB RAM
mk_manifest m256.yaml never 'transport: nvme' 'maxroot: 40G, swapsize: 2G, minfree: 10G, maxvz: 100G'
truncate -s 256G d256.img
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m256.yaml --node n1 --device d256.img --memory 16G --yes
verify_disk d256.img 512 1 16G m256.yaml
expect_exit 0 "$DEVOPSLAB" disk plan --manifest m256.yaml --node n1 --device d256.img --memory 16G
assert_contains "$OUT" "swap      2097152 KiB"
assert_contains "$OUT" "root     41943040 KiB"
assert_contains "$OUT" "3       2099200" # ESP 1024 MiB on a disk > 100 GiB: p3 starts at 1025 MiB
rm -f d256.img

# --- 2 TiB, defaults: root capped at 96 GiB, 16 GiB metadata
truncate -s 2T d2t.img
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d2t.img --memory 64G --yes
verify_disk d2t.img 512 1 64G m.yaml
expect_exit 0 "$DEVOPSLAB" disk plan --manifest m.yaml --node n1 --device d2t.img --memory 64G
assert_contains "$OUT" "root    100663296 KiB"
assert_contains "$OUT" "metadata 16777216 KiB"
rm -f d2t.img

# --- 4Kn: a loop device with 4096-byte sectors; no BIOS boot partition
truncate -s 40G d4k.img
l4k=$(attach -b 4096 d4k.img)
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device "$l4k" --memory 4G --yes
losetup -d "$l4k"
l4k=$(attach -b 4096 d4k.img)
verify_disk "$l4k" 4096 0 4G m.yaml
losetup -d "$l4k"

# nothing else was touched, and no loop device of ours is left behind
after=$(sha256sum other.img other-loop.img "$bystander" | awk '{print $1}')
assert_eq "$before" "$after" "bystander checksums"
for f in d32.img d4k.img; do
	if losetup -j "$TESTTMP/$f" | grep -q .; then fail "a loop device still holds $f"; fi
done
echo "t-disk-apply: ok"
