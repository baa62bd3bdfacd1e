#!/bin/bash
# scripts/demo.sh — what `make demo` runs: validate the example manifest,
# show its plan, sign it into a bundle with a demo key, build the boot image
# around it and boot it in QEMU (UEFI, Secure Boot on, a blank NVMe, the NIC
# of devops-node-01), showing the console.
#   On a terminal: the console is interactive (Ctrl-A X quits QEMU).
#   Otherwise: the console is printed until the rescue shell, then QEMU stops.
# DEMO_MODE=bios-cd|uefi-cd|uefi-sb-cd|bios-usb|pxe-bios picks another boot.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/provisioner/devopslab
demo=$top/out/demo
manifest=$top/examples/homelab.yaml
mode=${DEMO_MODE:-uefi-sb-cd}
mkdir -p "$demo/assets"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "devopslab validate $manifest"
"$bin" validate "$manifest"
step "devopslab plan --manifest $manifest --node devops-node-01"
"$bin" plan --manifest "$manifest" --node devops-node-01 | sed -n "1,40p"

step "signing the bundle (demo key in $demo; small dummy assets)"
[ -f "$demo/key.pem" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$demo/key.pem" 2>/dev/null
openssl pkey -in "$demo/key.pem" -pubout -out "$demo/pub.pem"
for f in debian-13-rootfs.tar.zst jammy-server-cloudimg-amd64.img k3s k3s-airgap-images-amd64.tar.zst install.sh; do
	printf 'demo placeholder %s\n' "$f" >"$demo/assets/$f"
done
"$bin" bundle create --manifest "$manifest" --assets "$demo/assets" --key "$demo/key.pem" -o "$demo/bundle.tar.zst"

step "building the boot image (kernel from Debian, initramfs, ISO, netboot)"
image/build.sh --pubkey "$demo/pub.pem" --bundle "$demo/bundle.tar.zst" --timeout 2
cat out/image-info.txt

step "booting out/devopslab.iso in QEMU ($mode): NVMe serial DEMO-NVME-0001, MAC 52:54:00:0a:00:01"
args=(--mode "$mode" --mac 52:54:00:0a:00:01 --nvme-serial DEMO-NVME-0001 --workdir "$demo/vm")
if [ -t 0 ] && [ -t 1 ]; then
	echo "(Ctrl-A X quits QEMU)"
	exec scripts/qemu-boot.sh "${args[@]}" --interactive
fi
log=$demo/console.log
: >"$log"
pid=$(scripts/qemu-boot.sh "${args[@]}" --log "$log" --background)
trap 'kill $pid 2>/dev/null || true' EXIT
tail -n +1 -f "$log" --pid "$pid" | LC_ALL=C sed -u 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/[^[:print:]\t]//g' &
tailpid=$!
for _ in $(seq 300); do
	grep -aq '(devopslab rescue)' "$log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
sleep 1
kill "$tailpid" 2>/dev/null || true
echo
echo "demo: the node stopped in its rescue shell as designed (console log: $log)"
