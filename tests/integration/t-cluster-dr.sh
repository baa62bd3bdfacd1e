#!/bin/bash
# Disaster recovery: a member reinstalled from scratch (same name, new
# certificate, no cluster) is removed from the cluster by a healthy member
# and joins again; so is a reinstalled first node, which must rejoin the
# existing cluster instead of creating a second one. Afterwards a re-run of
# every node changes nothing.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start_all
form_all
assert_one_cluster 3

# pve3 is reinstalled.
sim_stop pve3
sim_start pve3 --fresh
assert_eq None "$(sim_query 's["nodes"]["pve3"]["cluster"]')" "pve3's cluster after reinstall"
before=$(mutations)
fb pve3
assert_eq 0 "$RC" "firstboot of the reinstalled pve3"
assert_contains "$OUT" "this node was reinstalled; removing the old entry through 'pve1'"
assert_eq 1 "$(requests 'r["method"] == "DELETE" and r["path"] == "/api2/json/cluster/config/nodes/pve3"')" "delnode calls"
assert_eq $((before + 2)) "$(mutations)" "mutating calls for the rejoin (delnode + join)"
assert_eq 1 "$(sim_query 'len(s["clusters"])')" "number of clusters"
assert_eq 3 "$(sim_query 'len(s["clusters"]["1"]["members"])')" "members after pve3's rejoin"
assert_joins 3

# The first node is reinstalled: it must not create a second cluster.
sim_stop pve1
sim_start pve1 --fresh
before=$(mutations)
fb pve1
fb_formed pve1 # the reinstalled pve1
assert_contains "$OUT" "this first node was reinstalled, joining it again"
assert_eq 1 "$(sim_query 'len(s["clusters"])')" "number of clusters after pve1's rejoin"
assert_eq 3 "$(sim_query 'len(s["clusters"]["1"]["members"])')" "members after pve1's rejoin"
assert_eq 1 "$(sim_query 'sum(1 for t in s["tasks"].values() if t["type"]=="clustercreate")')" "create tasks"
assert_eq $((before + 2)) "$(mutations)" "mutating calls for pve1's rejoin (delnode + join)"

# Converged: nothing more to do anywhere.
before=$(mutations)
form_all
assert_eq "$before" "$(mutations)" "mutating calls of a re-run"

sim_schema_check || fail "schema check"
