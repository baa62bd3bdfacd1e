#!/bin/bash
# k3s: the K3s steps of `devopslab firstboot` — three servers with embedded
# etcd, then two agents — against three simulated Proxmox VE nodes and the
# simulated Kubernetes API, every request answered after 50 ms, K3s's
# install taking 1 s in a guest, an etcd learner 1.5 s to be promoted and a
# node 1 s to be Ready after it registers. The guests are made first (not
# measured); then the run that brings K3s up, and a converged re-run.
# Reports the K3s steps' time (the sum of their durations as firstboot
# reports them) and that run's wall time, the requests to each API, and
# the re-run's wall time (target < 2 s) and mutating requests (target 0).
# Simulators listen on 127.0.0.1 and are stopped by PID at the end.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
export TESTTMP=$BENCHTMP SHARED=${SHARED:-$TOP/../shared}
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

k3s_init
FB_PIN=local
cp "$TESTTMP/cluster.yaml" "$TESTTMP/full.yaml"
# the same manifest without K3s: the guests alone, first
"$PY" -c 'import sys,yaml; m=yaml.safe_load(open(sys.argv[1])); m.pop("k3s"); yaml.safe_dump(m, open(sys.argv[2],"w"), sort_keys=False)' \
	"$TESTTMP/full.yaml" "$TESTTMP/guests-only.yaml"
cp "$TESTTMP/guests-only.yaml" "$TESTTMP/cluster.yaml"
sim_start_all --latency-ms 50 --guest-boot-ms 1000 --exec-ms 1000 >/dev/null
k8s_start --latency-ms 50 --promote-ms 1500 --ready-ms 1000
k3s_args
K3S+=(--boot-timeout 120 --k3s-timeout 120)
form_all "${K3S[@]}" >/dev/null
cp "$TESTTMP/full.yaml" "$TESTTMP/cluster.yaml"

p0=$(requests) k0=$(k8s_requests)
t0=$(date +%s%N)
fb pve1 "${K3S[@]}"
t1=$(date +%s%N)
[ "$RC" = 0 ] || [ "$RC" = 5 ] || { echo "$OUT" >&2; echo "k3s: firstboot exited $RC" >&2; exit 1; }
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; exit 1; }
steps_ms=$(sed -n 's/.*\] \(Initialising\|Joining\) K3s .*: done (\([0-9.]*\) s)$/\2/p' <<<"$OUT" |
	"$PY" -c 'import sys; print(int(sum(float(x) for x in sys.stdin) * 1000))')
echo "k3s: 3 servers + 2 agents at 50 ms per request, 1 s install, 1.5 s etcd promotion, 1 s to Ready:" \
	"K3s steps = $steps_ms ms (the run: $(((t1 - t0) / 1000000)) ms wall, the guests' checks included)"
echo "k3s: requests = $(($(requests) - p0)) to Proxmox (guest agent), $(($(k8s_requests) - k0)) to Kubernetes"
m0=$(mutations) r0=$(requests) km0=$(k8s_mutations) kr0=$(k8s_requests)
t0=$(date +%s%N)
fb pve1 "${K3S[@]}"
t1=$(date +%s%N)
echo "k3s: converged re-run = $(((t1 - t0) / 1000000)) ms wall (target < 2000)," \
	"$(($(requests) - r0)) + $(($(k8s_requests) - kr0)) requests," \
	"$(($(mutations) - m0)) + $(($(k8s_mutations) - km0)) mutating (target 0)"
