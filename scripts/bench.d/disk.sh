#!/bin/bash
# disk: discovery time with 16 attached disk images (`disk list --json`,
# median of 5), and `disk apply` time on a 256 GiB sparse image.
# Targets: discovery under 0.5 s; apply under 15 s. Needs root (loop devices).
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
[ "$(id -u)" = 0 ] || { echo "disk: skipped (needs root)"; exit 0; }
exec 9>/run/devopslab-test-lvm.lock
flock 9
cd "$BENCHTMP"
loops=()
cleanup() { for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 1 16); do
	truncate -s $((i * 8))G "img$i.img"
	printf 'label: gpt\nsize=1G, type=L, name=p%s\n' "$i" | sfdisk -q "img$i.img"
	loops+=("$(losetup -f --show "img$i.img")")
done
$PY - "$DEVOPSLAB" <<'PYEOF'
import json, subprocess, sys, time
times = []
for _ in range(5):
    t0 = time.monotonic()
    out = subprocess.run([sys.argv[1], "disk", "list", "--json"], stdout=subprocess.PIPE, check=True).stdout
    times.append(time.monotonic() - t0)
n = sum(1 for d in json.loads(out)["disks"] if d["transport"] == "loop")
t = sorted(times)[2]
print(f"disk: discovery of {n} loop disks = {t:.3f} s (target < 0.5 s) {'ok' if t < 0.5 else 'MISSED'}")
PYEOF
cleanup; loops=()
cat >m.yaml <<'EOM'
version: 1
cluster: {name: benchlab, domain: home.arpa, timezone: Europe/Berlin, keyboard: us}
network: {subnet: 10.0.10.0/24, gateway: 10.0.10.1, dns: [10.0.10.1], bridge: vmbr0}
nodes:
  - {name: n1, role: first, mac: "52:54:00:0a:00:01", ip: 10.0.10.11, nic: "52:54:00:0a:00:01", disk: {transport: nvme}}
assets: [{name: rootfs, file: rootfs.tar.zst}]
proxmox: {rootfs: rootfs, root_password: {secret: root_password}, ssh_keys: []}
secrets: {names: [root_password]}
EOM
truncate -s 256G d256.img
t0=$(date +%s.%N)
"$DEVOPSLAB" -q disk apply --manifest m.yaml --node n1 --device d256.img --memory 16G --yes >/dev/null
t1=$(date +%s.%N)
$PY -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'disk: apply on a 256 GiB sparse image = {t:.2f} s (target < 15 s) ' + ('ok' if t < 15 else 'MISSED'))" "$t0" "$t1"
