#!/bin/bash
# image: sizes of the boot image (kernel, initramfs at the release zstd
# level, ISO) against the target kernel + initramfs <= 40 MB without the
# bundle; boot time from QEMU start to the provisioner's first line, next to
# Debian's own netboot installer (debian-installer-12-netboot-amd64) booted
# the same way (QEMU TCG, BIOS, -kernel/-initrd, serial console, 1 GiB),
# as a ratio (target < 1). Median of BOOT_RUNS (3) boots each.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
: "${BOOT_RUNS:=3}"
export OUT=$BENCHTMP/out CACHE=$TOP/out/cache
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$BENCHTMP/key.pem" 2>/dev/null
openssl pkey -in "$BENCHTMP/key.pem" -pubout -out "$BENCHTMP/pub.pem"
"$TOP/image/build.sh" --pubkey "$BENCHTMP/pub.pem" --binary "$DEVOPSLAB" >"$BENCHTMP/build.log" 2>&1 ||
	{ tail "$BENCHTMP/build.log"; exit 1; }
k=$(stat -c %s "$CACHE/kernel/vmlinuz")
i=$(stat -c %s "$OUT/initrd.img")
iso=$(stat -c %s "$OUT/devopslab.iso")
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "image: kernel = $(mb "$k")"
echo "image: initramfs = $(mb "$i") (zstd -19)"
echo "image: iso = $(mb "$iso") (without a bundle)"
tot=$((k + i))
echo "image: kernel + initramfs = $(mb $tot) (target <= 40 MB: $([ $tot -le 40000000 ] && echo met || echo MISSED))"

# One boot: seconds from QEMU start to the first console line matching RE.
boot_time() { # kernel initrd append regex
	local log=$BENCHTMP/boot.log pid t0 t
	: >"$log"
	truncate -s 20G "$BENCHTMP/nvme.img"
	t0=$(date +%s.%N)
	qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 1024 -smp 1 -display none -nodefaults \
		-no-user-config -no-reboot -serial "file:$log" -kernel "$1" -initrd "$2" -append "$3" \
		-drive "if=none,id=n0,file=$BENCHTMP/nvme.img,format=raw" -device nvme,drive=n0,serial=BENCH \
		-netdev user,id=net0 -device virtio-net-pci,netdev=net0,mac=52:54:00:0a:00:01,romfile= \
		</dev/null >/dev/null 2>&1 &
	pid=$!
	t=
	for _ in $(seq 3000); do
		if grep -aqE "$4" "$log"; then t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'); break; fi
		kill -0 $pid 2>/dev/null || break
		sleep 0.1
	done
	kill $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	echo "${t:-nan}"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

ours=$(for _ in $(seq "$BOOT_RUNS"); do
	boot_time "$CACHE/kernel/vmlinuz" "$OUT/initrd.img" "console=ttyS0,115200 quiet devopslab.bundle=/nonexistent" \
		'devopslab: provisioner started'
done | median)
echo "image: boot to the provisioner's first line = $ours s (median of $BOOT_RUNS, TCG)"

di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
if [ ! -f "$di/linux" ] && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		debian-installer-12-netboot-amd64 >/dev/null 2>&1 || true
fi
if [ ! -f "$di/linux" ]; then
	echo "image: debian-installer comparison: skipped (debian-installer-12-netboot-amd64 not installable here)"
	exit 0
fi
# d-i's first screen on a serial console is the language question.
theirs=$(for _ in $(seq "$BOOT_RUNS"); do
	boot_time "$di/linux" "$di/initrd.gz" "console=ttyS0,115200 quiet" 'Select a language|Choose the language|Language'
done | median)
echo "image: Debian netboot installer to its first screen = $theirs s (median of $BOOT_RUNS, TCG)"
awk -v a="$ours" -v b="$theirs" 'BEGIN {
	if (a == "nan" || b == "nan" || b == 0) { print "image: boot time ratio = n/a"; exit }
	r = a / b; printf "image: boot time ratio ours/d-i = %.2f (target < 1: %s)\n", r, r < 1 ? "met" : "MISSED" }'
