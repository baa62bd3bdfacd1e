#!/bin/bash
# kill -9 during disk apply, at several points, then apply again: the disk
# must end up exactly as an uninterrupted apply makes it (same GPT, same
# LVM layout, clean filesystems), and no loop device may be left behind.
# timeout: 300
# lane: disk
. "$TOP/tests/lib.sh"
. "$TOP/tests/integration/disk-lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for loop devices"
cd "$TESTTMP"
mk_manifest m.yaml never 'transport: nvme'

# the reference: one uninterrupted apply
truncate -s 32G ref.img
expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device ref.img --memory 8G --yes
sfdisk --json ref.img | sed 's/ref.img/d.img/' >ref.json

for delay in 0.05 0.3 0.7 1.0 1.4; do
	rm -f d.img
	truncate -s 32G d.img
	"$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d.img --memory 8G --yes >apply.log 2>&1 &
	pid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "killed after ${delay}s: $(tr '\n' ' ' <apply.log | tail -c 300)"
	# autoclear: the kernel detached our loop devices when we died
	for _ in 1 2 3 4 5 6 7 8 9 10; do losetup -j "$TESTTMP/d.img" | grep -q . || break; sleep 0.2; done
	losetup -j "$TESTTMP/d.img" | grep -q . && fail "a loop device survived the kill"
	expect_exit 0 "$DEVOPSLAB" disk apply --manifest m.yaml --node n1 --device d.img --memory 8G --yes
	sfdisk --json d.img >d.json
	cmp ref.json d.json || fail "after kill at ${delay}s: GPT differs from the reference"
	verify_disk d.img 512 1 8G m.yaml
done
echo "t-disk-kill: ok"
