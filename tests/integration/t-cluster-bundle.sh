#!/bin/bash
# firstboot from a signed bundle: the manifest is verified before use and
# the root password comes from the bundle's sealed secrets (AES-256-GCM),
# never from a file or the command line. A wrong secret key or a bundle
# signed by another key is refused before any request is sent.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
# The bundle: the draft manifest, a placeholder rootfs, the password sealed.
sim_bundle
openssl rand -hex 32 >"$TESTTMP/in/wrong.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TESTTMP/in/other.pem" 2>/dev/null
openssl pkey -in "$TESTTMP/in/other.pem" -pubout -out "$TESTTMP/in/other.pub"

sim_start_all
# Refusals first: nothing reaches the API.
FB_SECRET_KEY=$TESTTMP/in/wrong.key fb pve1
assert_eq 4 "$RC" "firstboot with a wrong secret key"
assert_contains "$OUT" "cannot decrypt secrets.enc"
FB_PUBKEY=$TESTTMP/in/other.pub fb pve1
assert_eq 4 "$RC" "firstboot with a bundle signed by another key"
assert_contains "$OUT" "failed verification"
assert_eq 0 "$(requests)" "requests sent before the inputs were trusted"

form_all
assert_one_cluster 3
assert_joins 2
pw=$(cat "$TESTTMP/root.pw")
for f in "$TESTTMP"/fb-*; do ! grep -qF -- "$pw" "$f" || fail "the root password is in $f"; done
sim_schema_check || fail "schema check"
