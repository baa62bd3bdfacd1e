#!/bin/bash
# K3s under faults, against the simulators:
#   - the API answers 503 for a while after every etcd promotion (a leader
#     election): the steps wait through it and the cluster forms;
#   - a node that never becomes Ready: its step fails after --k3s-timeout,
#     naming the node and what the API says; once it can, a re-run
#     converges;
#   - a re-created agent given another token secret: K3s refuses its join
#     ("failed to validate token"), the step fails and says the node is not
#     registered; with the right token a re-run converges.
# timeout: 300
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

k3s_init
FB_PIN=local
sim_start_all --guest-boot-ms 200
k8s_start --promote-ms 400 --ready-ms 300 --elect-503-ms 700 --never-ready k3s-worker-02
k3s_args

# 503 while etcd elects; a worker that never gets Ready.
fb_bg pve2 "${K3S[@]}"; fb_bg pve3 "${K3S[@]}"
fb pve1 "${K3S[@]}" --k3s-timeout 15
rc1=$RC out1=$OUT
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
RC=$rc1 OUT=$out1
[ "$RC" = 1 ] || { echo "$OUT" >&2; fail "firstboot exited $RC, not 1, with a node that never gets Ready"; }
assert_contains "$OUT" "error: cluster/k3s/agent/k3s-worker-02: k3s-worker-02: not ready after 15 s: node k3s-worker-02 is not Ready"
[ "$(k8s_requests 'r["status"] == 503')" -gt 0 ] || fail "the simulator never answered 503 (no election seen)"
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03']" "$(k8s_voting)" "voting etcd members through the elections"
kill "$K8S_PID"; wait "$K8S_PID" 2>/dev/null || true
k8s_start --promote-ms 400 --ready-ms 300
k3s_args
fb pve1 "${K3S[@]}" --k3s-timeout 30
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run after the node could get Ready reported an error"; }
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k8s_ready_nodes)" "Ready nodes"

# A wrong token secret for a re-created agent: K3s refuses it.
k3s_recreate_vm k3s-worker-01
printf 'not-the-cluster-token\n' >"$TESTTMP/wrong.token"
fb pve1 "${K3S[@]}" --k3s-timeout 5 --k3s-token-file "$TESTTMP/wrong.token"
[ "$RC" = 1 ] || { echo "$OUT" >&2; fail "firstboot exited $RC with a wrong token"; }
assert_contains "$OUT" "error: cluster/k3s/agent/k3s-worker-01: k3s-worker-01: not ready after 5 s: node k3s-worker-01 is not registered"
assert_contains "$(k8s_join_errors)" "'k3s-worker-01': 'failed to validate connection to cluster: 401 Unauthorized'"
fb pve1 "${K3S[@]}" --k3s-timeout 30
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run with the right token reported an error"; }
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k8s_ready_nodes)" "Ready nodes after the right token"

sim_schema_check || fail "schema check"
