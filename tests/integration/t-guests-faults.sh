#!/bin/bash
# The guest steps under faults: answers 503, connections reset, slow tasks,
# a clone task and a template task that fail, a clone refused for a lock
# timeout. A run that meets a fault it cannot ride out stops with the
# failed task's log in its error (exit 1); re-runs converge to the same
# guests as an undisturbed run, each VM cloned successfully once, no
# orphaned disk, and the run after that changes nothing.
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

guests_init
sim_start_all --guest-boot-ms 200
GUESTS=(--assets "$A" --boot-timeout 60)
faults '[
 {"method": "GET", "path": "/cluster/resources$", "action": "error", "status": 503, "skip": 1, "times": 2},
 {"method": "POST", "path": "/qemu$", "action": "task-fail", "message": "import failed: simulated", "skip": 1, "times": 1},
 {"method": "POST", "path": "/qemu/9001/clone$", "action": "task-fail", "message": "clone failed: simulated", "times": 1},
 {"method": "POST", "path": "/qemu/9002/clone$", "action": "task-slow", "delay_ms": 1500, "times": 1},
 {"method": "GET", "path": "/qemu/[0-9]+/config$", "action": "reset", "skip": 3, "times": 2},
 {"method": "POST", "path": "/status/start$", "action": "error", "status": 500, "message": "simulated start refusal", "times": 1}
]'
# The members join while the first node's runs meet the faults.
fb_bg pve2; fb_bg pve3
runs=0 failed=0
while [ $runs -lt 8 ]; do
	runs=$((runs + 1))
	fb pve1 "${GUESTS[@]}"
	echo "run $runs: exit $RC: $(grep -E 'error:' <<<"$OUT" | head -1)"
	if [ "$RC" = 1 ]; then
		failed=$((failed + 1))
		grep -q "error: cluster/" <<<"$OUT" || { echo "$OUT" >&2; fail "a failed run does not name its step"; }
		continue
	fi
	fb_formed pve1
	break
done
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
[ "$failed" -ge 2 ] || fail "the faults stopped only $failed runs (the test injects at least two task failures)"
grep -q "task qmclone" "$TESTTMP/fb-pve1.log" && grep -q "clone failed: simulated" "$TESTTMP/fb-pve1.log" ||
	fail "the failed clone's task and its log are not in the error"
grep -q "import failed: simulated" "$TESTTMP/fb-pve1.log" || fail "the failed create's task log is not in the error"

assert_eq "[('pve1', 300, 'app-01'), ('pve1', 9000, 'tpl'), ('pve2', 301, 'app-02'), ('pve2', 400, 'db'), ('pve2', 9001, 'tpl'), ('pve3', 302, 'app-03'), ('pve3', 9002, 'tpl')]" \
	"$(vms)" "guests on the nodes after the faults"
assert_eq "{'pve1': ['base-9000-disk-0', 'vm-300-disk-0'], 'pve2': ['base-9001-disk-0', 'vm-301-disk-0', 'vm-400-disk-0'], 'pve3': ['base-9002-disk-0', 'vm-302-disk-0']}" \
	"$(sim_query '{n: sorted(v.split("/")[-1] for v in d.get("local-lvm", {})) for n, d in sorted(s["guest"]["vols"].items())}')" \
	"disks on local-lvm"
assert_eq 1 "$(sim_query 'sum(1 for t in s["tasks"].values() if t["type"] == "qmclone" and t["exitstatus"] != "OK")')" "failed clone tasks"

rm -f "$SIM_STATE/faults.json"
before=$(mutations)
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_eq "$before" "$(mutations)" "mutating requests of the run after"

sim_schema_check || fail "schema check"
echo "runs: $runs, stopped by faults: $failed, requests: $(requests)"
