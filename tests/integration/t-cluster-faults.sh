#!/bin/bash
# A fault injected at each step of cluster formation is survived: exactly
# one cluster, every node in it, no duplicate create or join. Faults: resets
# and 5xx before a request is processed, lost answers (reset or timeout
# after it was processed), task polls failing, slow and failing tasks,
# latency. Every request passes the schema check.
. "$TOP/tests/lib.sh"
# a lost answer (fault "timeout", delay 2500 ms) must outlast the client's patience
FB_TIMEOUT_MS=1500
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3

# Round A: login reset, create 503, status 502s, join answer lost (reset
# after processing), join-info 503.
sim_fresh a
sim_start_all
faults '[
 {"node": "pve1", "method": "POST", "path": "^/access/ticket$", "action": "reset", "times": 1},
 {"node": "pve1", "method": "POST", "path": "^/cluster/config$", "action": "error", "status": 503, "times": 1},
 {"node": "pve1", "method": "GET", "path": "^/cluster/status$", "action": "error", "status": 502, "skip": 1, "times": 2},
 {"node": "pve2", "method": "POST", "path": "^/cluster/config/join$", "action": "reset", "when": "after", "times": 1},
 {"node": "pve1", "method": "GET", "path": "^/cluster/config/join$", "action": "error", "status": 503, "times": 1}
]'
form_all
assert_one_cluster 3
assert_joins 2
assert_eq 5 "$(sim_query 'sum(s["fault_hits"].get(str(i), 0) > 0 for i in range(5))')" "faults that fired"

# Round B: create answer lost after processing, join 503 before, task
# status polls reset.
sim_fresh b
sim_start_all
faults '[
 {"node": "pve1", "method": "POST", "path": "^/cluster/config$", "action": "reset", "when": "after", "times": 1},
 {"node": "pve3", "method": "POST", "path": "^/cluster/config/join$", "action": "error", "status": 503, "times": 1},
 {"node": "pve2", "method": "GET", "path": "/tasks/.*/status$", "action": "reset", "times": 2},
 {"action": "latency", "delay_ms": 10}
]'
form_all
assert_one_cluster 3
assert_joins 2

# Round C: join times out after it was processed, slow create, failing join
# task (a clear error with the task log, and a re-run converges).
sim_fresh c
sim_start_all
faults '[
 {"node": "pve2", "method": "POST", "path": "^/cluster/config/join$", "action": "timeout", "when": "after", "delay_ms": 2500, "times": 1},
 {"node": "pve1", "method": "POST", "path": "^/cluster/config$", "action": "task-slow", "delay_ms": 700, "times": 1},
 {"node": "pve3", "method": "POST", "path": "^/cluster/config/join$", "action": "task-fail", "message": "simulated: corosync failed to start", "times": 1}
]'
fb_bg pve1; fb_bg pve2; fb_bg pve3
fb_wait pve3
assert_eq 1 "$RC" "firstboot pve3 with a failing join task"
assert_contains "$OUT" "task clusterjoin on 'pve3' failed: simulated: corosync failed to start"
assert_contains "$OUT" "log: "
fb pve3
assert_eq 0 "$RC" "firstboot pve3 re-run"
fb_wait pve1; fb_formed pve1
fb_wait pve2; assert_eq 0 "$RC" "firstboot pve2"
assert_one_cluster 3
assert_joins 2
assert_eq 1 "$(sim_query 'sum(1 for t in s["tasks"].values() if t["type"]=="clusterjoin" and t["exitstatus"]!="OK")')" "failed join tasks"

sim_schema_check || fail "schema check"
