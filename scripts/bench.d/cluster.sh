#!/bin/bash
# cluster: form a three-node cluster with `devopslab firstboot` against three
# simulated Proxmox nodes (tests/sim/pve_sim.py) answering every request after
# 50 ms, with Proxmox-like task durations (1 s), and report the wall time and
# the requests sent (all, and mutating ones). The simulators listen on
# 127.0.0.1 and are stopped by PID at the end.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
export TESTTMP=$BENCHTMP SHARED=${SHARED:-$TOP/../shared}
. "$TOP/tests/lib.sh"
SIM_TASK_MS=1000
. "$TOP/tests/sim/cluster-lib.sh"
sim_init 3
sim_start_all --latency-ms 50
t0=$(date +%s%N)
form_all
t1=$(date +%s%N)
assert_one_cluster 3
echo "cluster: 3-node formation at 50 ms latency, 1 s tasks = $(((t1 - t0) / 1000000)) ms wall"
echo "cluster: requests = $(requests) ($(mutations) mutating, logins excluded)"
t0=$(date +%s%N)
form_all
t1=$(date +%s%N)
echo "cluster: converged re-run = $(((t1 - t0) / 1000000)) ms wall, requests now $(requests) ($(mutations) mutating)"
