#!/bin/bash
# Trust from the bundle, all the way: the cluster CA's certificate and key
# travel as sealed secrets (base64 of the PEMs) in the signed bundle, and
# firstboot uses them with no --ca/--ca-key: each node pins only its own
# certificate (read locally, as on a real node), signs its API certificate
# with the CA, and trusts the others through the CA. No CA file is left
# behind, and the CA key never appears in any output.
. "$TOP/tests/lib.sh"
SIM_SECRETS="pw, cluster_ca_key, cluster_ca_cert"
. "$TOP/tests/sim/cluster-lib.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-keyout "$TESTTMP/ca.key" -out "$TESTTMP/ca.pem" -subj "/O=DevOpsLab/CN=lab cluster CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
sim_init 3
mkdir -p "$TESTTMP/scratch"
sim_bundle "cluster_ca_key=$(base64 -w0 "$TESTTMP/ca.key")" "cluster_ca_cert=$(base64 -w0 "$TESTTMP/ca.pem")"
export FB_PIN=local TMPDIR=$TESTTMP/scratch

sim_start_all
form_all
assert_one_cluster 3
assert_joins 2
assert_ca_signed "$TESTTMP/ca.pem" pve1 pve2 pve3
assert_eq "" "$(ls -A "$TESTTMP/scratch")" "files left in TMPDIR (CA copies, bundle scratch)"
keyline=$(sed -n 2p "$TESTTMP/ca.key")
for f in "$TESTTMP"/fb-*; do ! grep -qF -- "$keyline" "$f" || fail "the CA key is in $f"; done
sim_schema_check || fail "schema check"
