#!/bin/bash
# Trust and waiting: a wrong pinned fingerprint is refused at once (exit 3)
# without a single mutating call; a node without any trust is refused; a
# wrong root password is a clear error; a first node that never comes up is
# a clear timeout; a member's pin that its join made stale is learned again
# from the first node, and only as the first node lists it.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start pve1
sim_start pve2
wrong=00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF

# The first node's pin is wrong (what a man in the middle would look like).
before=$(mutations)
start=$(date +%s)
fb pve2 --fingerprint "pve1=$wrong"
assert_eq 3 "$RC" "exit status with a wrong fingerprint for pve1"
assert_contains "$OUT" "server certificate not trusted (fingerprint does not match the pinned one"
assert_contains "$OUT" "$(fp_of pve1)"
[ $(($(date +%s) - start)) -lt 10 ] || fail "a wrong fingerprint must be refused at once, not waited on"
assert_eq "$before" "$(mutations)" "mutating calls after the refusal"

# The node's own pin is wrong.
fb pve2 --fingerprint "pve2=$wrong"
assert_eq 3 "$RC" "exit status with a wrong fingerprint for pve2"
assert_contains "$OUT" "fingerprint does not match"
assert_eq "$before" "$(mutations)" "mutating calls after the second refusal"

# No trust at all for pve1 (no pin, no CA): never trust on first use.
fb_cmd pve2
nopin=()
for a in "${FB[@]}"; do [[ $a == pve1=??:* ]] && { unset 'nopin[-1]'; continue; }; nopin+=("$a"); done
set +e; OUT=$("${nopin[@]}" 2>&1); RC=$?; set -e
assert_eq 3 "$RC" "exit status without trust for pve1"
assert_contains "$OUT" "no trust for node 'pve1'"

# A malformed fingerprint is bad input.
fb pve2 --fingerprint "pve1=12:34"
assert_eq 2 "$RC" "exit status with a malformed fingerprint"

# Wrong root password: Proxmox's "authentication failure", clearly.
printf 'wrong password\n' >"$TESTTMP/wrong.pw"
fb pve2 --password-file "$TESTTMP/wrong.pw"
assert_eq 1 "$RC" "exit status with a wrong password"
assert_contains "$OUT" "login as 'root@pam' on 'pve2' failed: authentication failure"

# The first node never comes up: a bounded wait with progress, then a clear
# timeout naming the node and the last error.
sim_stop pve1
start=$(date +%s)
fb pve2 --wait-first 2
assert_eq 1 "$RC" "exit status when pve1 never comes up"
assert_contains "$OUT" "still waiting for 'pve1'"
# the time it waited: the 2 s, or 3 when a slow machine overshot the last poll
grep -Eq "timed out after [23] s waiting for 'pve1'" <<<"$OUT" || fail "no bounded timeout: $OUT"
assert_contains "$OUT" "cannot connect"
[ $(($(date +%s) - start)) -lt 15 ] || fail "the wait for pve1 was not bounded"
assert_eq "$before" "$(mutations)" "mutating calls while pve1 was down"

# A member's pin taken before it joined: the join gave it a new certificate.
# pve3, started with pve2's old pin, looks at pve2 (has this node been
# rebuilt?): the first node, trusted, lists pve2's new certificate, so it is
# pinned and pve3 goes on. (CI once saw pve3's run refused here when pve2 had
# joined first.)
sim_start pve1
sim_start pve3
old2=$(fp_of pve2)
fb pve1 --wait-quorum 1
assert_contains "$OUT" "no quorum with all 3 nodes"
fb pve2 --wait-quorum 1
assert_contains "$OUT" "no quorum with all 3 nodes"
[ "$(fp_of pve2)" != "$old2" ] || fail "pve2's join did not give it a new certificate"
# A certificate the first node does not list for pve2 (pve3's, served on
# pve2's address) stays refused, before anything changes.
before=$(mutations)
fb pve3 --fingerprint "pve2=$old2" --api "pve2=https://127.0.0.1:${SIM_PORT[pve3]}"
assert_eq 3 "$RC" "exit status when pve2's address serves a certificate pve1 does not list"
assert_contains "$OUT" "not taken for a join's new certificate: 'pve2' serves a certificate (fingerprint $(fp_of pve3))"
assert_eq "$before" "$(mutations)" "mutating calls after the refusal of pve2's certificate"
fb pve3 --fingerprint "pve2=$old2"
fb_formed pve3
assert_contains "$OUT" "'pve2' has a new certificate (it joined the cluster); pinned it as reported by 'pve1'"
assert_one_cluster 3
sim_stop pve3

sim_schema_check || fail "schema check"
