#!/bin/bash
# install-qemu: the whole install of the Debian-only rootfs (out/rootfs,
# `make rootfs`) in QEMU (TCG, one vCPU, 2 GiB), UEFI: the boot image from
# CD onto a blank 20 GiB NVMe, then the installed disk booted alone to its
# login prompt. Prints the wall-clock phases from the serial console and
# each install step's own time as the provisioner reports it. TCG emulates
# the CPU: on hardware (KVM, NVMe) every phase is several times shorter.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
rootfs=${ROOTFS:-$TOP/out/rootfs/debian-13-rootfs.tar.zst}
if [ ! -f "$rootfs" ]; then
	echo "install-qemu: skipped: no $rootfs (run make rootfs first)"
	exit 0
fi
command -v qemu-system-x86_64 >/dev/null || { echo "install-qemu: skipped: no QEMU"; exit 0; }
cd "$BENCHTMP"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

mkdir -p assets
$PY - "$TOP/examples/homelab.yaml" install.yaml <<'PY'
import sys, yaml
m = yaml.safe_load(open(sys.argv[1]))
m["cluster"]["unattended"] = True
yaml.safe_dump(m, open(sys.argv[2], "w"), sort_keys=False)
PY
cp "$rootfs" assets/debian-13-rootfs.tar.zst
"$TOP/scripts/example-inputs.sh" install.yaml . >/dev/null
"$DEVOPSLAB" bundle create --manifest install.yaml --assets assets --secrets secrets.env --secret-key secret.key \
	--key signing.key -o bundle.tar.zst >/dev/null 2>&1
OUT=$BENCHTMP/out CACHE=${CACHE:-$TOP/out/cache} ZSTD_LEVEL=9 "$TOP/image/build.sh" --pubkey signing.pub \
	--bundle bundle.tar.zst --timeout 1 --cmdline "devopslab.secret_key=$(cat secret.key) devopslab.reboot_delay=0" \
	>build.log 2>&1

clean() { sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$1" | tr -d '\r'; }
# Seconds from start until REGEX is on the console of LOG (QEMU pid PID).
wait_line() { # LOG PID REGEX TIMEOUT START
	while ! clean "$1" | grep -aqE -- "$3"; do
		kill -0 "$2" 2>/dev/null || { echo "install-qemu: QEMU exited before '$3'"; clean "$1" | tail -5; exit 1; }
		(($(date +%s) - $5 < $4)) || { echo "install-qemu: no '$3' within $4 s"; exit 1; }
		sleep 0.5
	done
	echo $(($(date +%s) - $5))
}

: >install.log
: >disk.log
start=$(date +%s)
pid=$("$TOP/scripts/qemu-boot.sh" --mode uefi-cd --iso out/devopslab.iso --log install.log --workdir vm \
	--mac 52:54:00:0a:00:01 --nvme-serial BENCH-0001 --memory 2048 --background)
pids+=("$pid")
t_prov=$(wait_line install.log "$pid" 'devopslab: provisioner started' 300 "$start")
t_mount=$(wait_line install.log "$pid" 'devopslab: new system mounted' 900 "$start")
t_done=$(wait_line install.log "$pid" 'devopslab: node .* is installed' 1800 "$start")
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
t_exit=$(($(date +%s) - start))
echo "install-qemu: image boot to provisioner start  ${t_prov} s"
echo "install-qemu: verify, pre-flight, disk steps     $((t_mount - t_prov)) s"
echo "install-qemu: rootfs, config, boot loader, first-boot service $((t_done - t_mount)) s"
echo "install-qemu: whole install (power on to reboot) ${t_exit} s"
clean install.log | sed -n 's/^devopslab: \[[0-9]*\/[0-9]*\] \(.*\): done (\(.*\))$/install-qemu:   step \2  \1/p'

start=$(date +%s)
pid=$("$TOP/scripts/qemu-boot.sh" --mode uefi-disk --nvme vm/nvme.img --log disk.log --workdir vm2 \
	--mac 52:54:00:0a:00:01 --nvme-serial BENCH-0001 --memory 2048 --background)
pids+=("$pid")
t_login=$(wait_line disk.log "$pid" 'login: ' 600 "$start")
echo "install-qemu: installed disk, power on to login: ${t_login} s"
