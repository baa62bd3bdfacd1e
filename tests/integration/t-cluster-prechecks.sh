#!/bin/bash
# Proxmox's requirements for a join are checked before joining, each with a
# clear error and no join attempted: no guests on the joining node, clocks
# in sync, the same major version (a PVE 8.4 node against 9.1, its requests
# held to the 8.4 schema). Fixing the cause lets the same run converge.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start pve1
sim_start pve2 --time-offset 120
sim_start pve3 --guests 2
fb pve1 --wait-quorum 1
assert_eq 1 "$RC" "pve1 without its members"
assert_contains "$OUT" "no quorum with all 3 nodes"

fb pve2
assert_eq 1 "$RC" "pve2 with a skewed clock"
# Both clocks are read in whole seconds, one after the other: 119 to 121.
grep -Eq "clocks differ by 1(19|20|21) s between 'pve2' and 'pve1'" <<<"$OUT" || fail "no clock refusal: $OUT"
fb pve3
assert_eq 1 "$RC" "pve3 with guests"
assert_contains "$OUT" "'pve3' has 2 guest(s): Proxmox refuses to join a node with virtual guests"
assert_eq 0 "$(requests 'r["path"] == "/api2/json/cluster/config/join" and r["method"] == "POST"')" "join requests"

# pve3 reinstalled with Proxmox VE 8.4.
sim_stop pve3
sim_start pve3 --fresh --schema-version 8.4
fb pve3
assert_eq 1 "$RC" "pve3 running 8.4"
assert_contains "$OUT" "'pve3' runs Proxmox VE 8.4 but 'pve1' runs 9.1"

# Causes fixed: the cluster forms.
sim_stop pve2; sim_start pve2
sim_stop pve3; sim_start pve3 --fresh
form_all
assert_one_cluster 3

sim_schema_check || fail "schema check"
