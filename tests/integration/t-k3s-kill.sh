#!/bin/bash
# kill -9 of the first node's firstboot at every K3s step — at each step's
# start and while K3s's install runs in each guest (the simulated install
# takes 1.5 s, an etcd learner 1 s to be promoted) — each run resuming the
# last, then a run to the end: one cluster, three voting etcd members, five
# Ready nodes, K3s installed once in each guest (a guest whose K3s already
# runs is waited for, never installed again), no failed start, and a
# further run changes nothing on either API.
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

k3s_init
FB_PIN=local
sim_start_all --guest-boot-ms 200 --exec-ms 1500
k8s_start --promote-ms 1000 --ready-ms 500
k3s_args
K3S+=(--k3s-timeout 60)

# Kill pve1 once its output shows PATTERN; or, for "VM: installing K3s",
# once the simulated guest has received the install (K3s starting there).
kill_at() { # PATTERN
	local f=$TESTTMP/fb-pve1.out i vm=
	case $1 in *": installing K3s"*) vm=${1%%:*} ;; esac
	for i in $(seq 1200); do
		if [ -n "$vm" ]; then
			[ "$(sim_query "any(v.get('k3s') for d in s['guest']['vms'].values() for v in d.values() if v['conf'].get('name') == '$vm')")" = True ] && break
		else
			grep -q -- "$1" "$f" 2>/dev/null && break
		fi
		kill -0 "${FB_PID[pve1]}" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "${FB_PID[pve1]}" 2>/dev/null || true
	wait "${FB_PID[pve1]}" 2>/dev/null || true
	echo "killed at: $(grep -c . "$f") lines, last: $(tail -1 "$f")"
	cat "$f" >>"$TESTTMP/fb-pve1-killed.log"
}

# The cluster and the guests first; pve1 is killed as its K3s steps begin.
fb_bg pve2 "${K3S[@]}"; fb_bg pve3 "${K3S[@]}"
fb_bg pve1 "${K3S[@]}"
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
kill_at "Initialising K3s server k3s-server-01"
points=("k3s-server-01: installing K3s" "Joining K3s server k3s-server-02" "k3s-server-02: installing K3s"
	"Joining K3s server k3s-server-03" "k3s-server-03: installing K3s" "Joining K3s agent k3s-worker-01"
	"k3s-worker-01: installing K3s" "Joining K3s agent k3s-worker-02" "k3s-worker-02: installing K3s")
# A guest killed while its K3s starts is held not Ready (in the simulator)
# until the next run has said it waits for it: that run must find K3s
# running there and wait, never install it again, however slow the machine.
held=
start_run() { # start pve1; release the held guest once the run waits for it
	local i line
	fb_bg pve1 "${K3S[@]}"
	[ -n "$held" ] || return 0
	line="$held: K3s already runs (an earlier run started it); waiting for it"
	for i in $(seq 1200); do
		grep -q "$line" "$TESTTMP/fb-pve1.out" && break
		kill -0 "${FB_PID[pve1]}" 2>/dev/null || break
		sleep 0.05
	done
	grep -q "$line" "$TESTTMP/fb-pve1.out" ||
		{ cat "$TESTTMP/fb-pve1.out" >&2; fail "the run after the kill did not wait for the K3s started in $held"; }
	k8s_release "$held"
	held=
}
for p in "${points[@]}"; do
	vm=
	case $p in *": installing K3s"*) vm=${p%%:*} ;; esac
	[ -z "$vm" ] || k8s_hold "$vm" # before the run can get there
	start_run
	kill_at "$p"
	[ -z "$vm" ] || held=$vm
done

# To the end.
start_run
fb_wait pve1
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run after the kills reported an error"; }
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03', 'k3s-worker-01', 'k3s-worker-02']" \
	"$(k8s_ready_nodes)" "Ready nodes after the kills"
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03']" "$(k8s_voting)" "voting etcd members"
assert_eq "{}" "$(k8s_join_errors)" "failed K3s starts"
# one K3s start per guest: none was installed twice
assert_eq "{'k3s-server-01': 1, 'k3s-server-02': 1, 'k3s-server-03': 1, 'k3s-worker-01': 1, 'k3s-worker-02': 1}" \
	"$(k8s_query '{v: sum(o["vm"] == v for o in st["starts"].values()) for v in sorted({o["vm"] for o in st["starts"].values()})}')" \
	"K3s starts per guest"
assert_eq 5 "$(k8s_query 'len(st["nodes"])')" "nodes (no duplicate)"

# Converged.
before=$(mutations) kbefore=$(k8s_mutations)
fb pve1 "${K3S[@]}"
fb_formed pve1
assert_eq "$before" "$(mutations)" "mutating Proxmox requests of the run after"
assert_eq "$kbefore" "$(k8s_mutations)" "mutating Kubernetes requests of the run after"

sim_schema_check || fail "schema check"
