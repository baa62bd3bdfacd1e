#!/bin/bash
# scripts/demo.sh — what `make demo` runs: the example cluster, end to end as
# far as this build goes: validate the manifest, make a signed bundle with
# encrypted secrets, verify it, print the plan every node will execute, then
# build the boot image around the bundle and boot it under QEMU (UEFI,
# Secure Boot on, a blank NVMe, the NIC of devops-node-01), showing the
# console: on a terminal interactively (Ctrl-A X quits QEMU), otherwise
# printed until the rescue shell. DEMO_MODE=bios-cd|bios-usb|uefi-cd picks
# another boot; DEMO_BOOT=0 stops after the plan.
# Work files go to out/demo/ (placeholder assets: not a real rootfs or cloud
# image; keys generated there on first run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/provisioner/devopslab
manifest=examples/homelab.yaml
out=out/demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Validate the manifest ($manifest)"
"$bin" validate "$manifest"

say "2. Make the inputs of a bundle (placeholder assets, secrets, keys) in $out"
scripts/example-inputs.sh "$manifest" "$out"
ls -l "$out" "$out/assets"

say "3. Create the signed bundle (secrets sealed with AES-256-GCM)"
rm -f "$out/homelab.bundle"
"$bin" bundle create --manifest "$manifest" --assets "$out/assets" --key "$out/signing.key" \
	--secrets "$out/secrets.env" --secret-key "$out/secret.key" -o "$out/homelab.bundle"

say "4. Verify it with the public key (mbedtls), as the image does"
"$bin" bundle verify --pubkey "$out/signing.pub" "$out/homelab.bundle"

say "5. The plan: the ordered steps install and firstboot will execute"
"$bin" plan --bundle "$out/homelab.bundle" --pubkey "$out/signing.pub"

[ "${DEMO_BOOT:-1}" = 0 ] && {
	say "Done. The bundle is $out/homelab.bundle; try:"
	echo "  $bin plan --bundle $out/homelab.bundle --pubkey $out/signing.pub --node devops-node-02 --json"
	exit 0
}

say "6. Build the boot image around the bundle (Debian's signed kernel, initramfs, ISO, netboot)"
image/build.sh --pubkey "$out/signing.pub" --bundle "$out/homelab.bundle" --timeout 2
cat out/image-info.txt

mode=${DEMO_MODE:-uefi-sb-cd}
say "7. Boot out/devopslab.iso under QEMU ($mode): NVMe serial DEMO-NVME-0001, MAC 52:54:00:0a:00:01"
args=(--mode "$mode" --mac 52:54:00:0a:00:01 --nvme-serial DEMO-NVME-0001 --workdir "$out/vm")
if [ -t 0 ] && [ -t 1 ]; then
	echo "(Ctrl-A X quits QEMU)"
	exec scripts/qemu-boot.sh "${args[@]}" --interactive
fi
log=$out/console.log
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
say "Done. The node stopped in its rescue shell as designed (console log: $log)"
