#!/bin/bash
# guests: the example's templates (one per node) and its 7 VMs brought up by
# `devopslab firstboot` against three simulated Proxmox VE nodes answering
# every request after 50 ms, with Proxmox-like task durations (1 s) and
# guests whose agent answers 5 s after their start. The same run twice on a
# fresh cluster: the steps one after another (--jobs 1), then side by side
# (the default, --jobs 8); then a converged re-run. Reports wall times, the
# ratio (target >= 3), requests, and the re-run's time (target < 2 s) and
# mutating calls (target 0). Simulators listen on 127.0.0.1 and are stopped
# by PID at the end.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
export TESTTMP=$BENCHTMP SHARED=${SHARED:-$TOP/../shared}
. "$TOP/tests/lib.sh"
SIM_TASK_MS=1000
. "$TOP/tests/sim/cluster-lib.sh"

# The example's templates and VMs on the simulated nodes pve1..3 (its
# subnet 10.0.10.0/24 becomes the simulators' 10.0.0.0/24).
sim_init 3
A=$TESTTMP/assets
mkdir -p "$A"
qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
"$PY" - "$TOP/examples/homelab.yaml" "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys, yaml
ex = yaml.safe_load(open(sys.argv[1]))
def node(n): return "pve" + n[-1] if n.startswith("devops-node-") else n
tpls = []
for t in ex["templates"]:
    t = dict(t, image="cloud", target_node=[node(n) for n in t["target_node"]])
    tpls.append(t)
vms = []
for v in ex["vms"]:
    v = dict(v)
    tn = v["target_node"]
    v["target_node"] = [node(n) for n in tn] if isinstance(tn, list) else node(tn)
    v["ipconfig0"] = v["ipconfig0"].replace("10.0.10.", "10.0.0.")
    vms.append(v)
s = open(sys.argv[2]).read().replace("assets: [{name: rootfs, file: rootfs.tar.zst}]",
    "assets:\n  - {name: rootfs, file: rootfs.tar.zst}\n  - {name: cloud, file: cloud.qcow2}")
open(sys.argv[2], "w").write(s + yaml.safe_dump({"templates": tpls, "vms": vms}, sort_keys=False))
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >/dev/null 2>&1
n_vms=$("$DEVOPSLAB" plan --manifest "$TESTTMP/cluster.yaml" --node pve1 --json |
	"$PY" -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin)["steps"] if s["kind"] == "vm"))')
full=$TESTTMP/cluster.yaml
cp "$full" "$TESTTMP/full.yaml"
# The cluster alone first (the same in both runs, not measured).
"$PY" -c 'import sys,yaml; m=yaml.safe_load(open(sys.argv[1])); m.pop("templates"); m.pop("vms"); yaml.safe_dump(m, open(sys.argv[2],"w"), sort_keys=False)' \
	"$TESTTMP/full.yaml" "$TESTTMP/cluster-only.yaml"

bring_up() { # JOBS -> prints ms
	local jobs=$1 t0 t1
	sim_fresh "j$jobs" >/dev/null
	sim_start_all --latency-ms 50 --guest-boot-ms 5000 >/dev/null
	cp "$TESTTMP/cluster-only.yaml" "$TESTTMP/cluster.yaml"
	form_all >/dev/null
	cp "$TESTTMP/full.yaml" "$TESTTMP/cluster.yaml"
	before=$(requests)
	t0=$(date +%s%N)
	fb pve1 --assets "$A" --boot-timeout 120 --jobs "$jobs"
	t1=$(date +%s%N)
	[ "$RC" = 0 ] || [ "$RC" = 5 ] || { echo "$OUT" >&2; echo "guests: firstboot --jobs $jobs exited $RC" >&2; exit 1; }
	grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; exit 1; }
	LAST_MS=$(((t1 - t0) / 1000000)) LAST_REQ=$(($(requests) - before))
}
bring_up 1
seq_ms=$LAST_MS seq_req=$LAST_REQ
bring_up 8
par_ms=$LAST_MS par_req=$LAST_REQ
echo "guests: 3 templates + $n_vms VMs at 50 ms latency, 1 s tasks, 5 s guest boot:" \
	"one at a time (--jobs 1) = $seq_ms ms, side by side (--jobs 8) = $par_ms ms"
"$PY" -c 'import sys; print("guests: speed-up = %.1fx (target >= 3)" % (int(sys.argv[1]) / max(1, int(sys.argv[2]))))' "$seq_ms" "$par_ms"
echo "guests: requests = $seq_req one at a time, $par_req side by side"
m0=$(mutations) r0=$(requests)
t0=$(date +%s%N)
fb pve1 --assets "$A" --boot-timeout 120
t1=$(date +%s%N)
echo "guests: converged re-run = $(((t1 - t0) / 1000000)) ms wall (target < 2000)," \
	"$(($(requests) - r0)) requests, $(($(mutations) - m0)) mutating (target 0)"
