#!/bin/bash
# Trust from the bundle: with the cluster CA (certificate + key), each node
# pins only its own certificate (read locally on a real node); the first
# node installs a CA-signed API certificate before creating the cluster,
# members trust it through the CA, join, and install theirs after the join
# (which replaced their certificates). Every node ends up serving a
# certificate that verifies against the CA; a re-run changes nothing; a
# first node serving a certificate the CA did not sign is never trusted.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-keyout "$TESTTMP/ca.key" -out "$TESTTMP/ca.pem" -subj "/O=DevOpsLab/CN=lab cluster CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
export FB_PIN=local
SIM_SECRETS="pw, cluster_ca_key" # the manifest declares the CA key: certificate steps

sim_init 3
sim_start_all
form_all --ca "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key"
assert_one_cluster 3
assert_joins 2
assert_ca_signed "$TESTTMP/ca.pem" pve1 pve2 pve3
# first: 1 upload + create; members: join + upload each.
assert_eq 6 "$(mutations)" "mutating requests (3 certificates, 1 create, 2 joins)"
assert_eq 3 "$(requests 'r["method"] == "POST" and r["path"].endswith("/certificates/custom")')" "certificate uploads"

# Converged: a re-run, trusting every node by the CA alone, changes nothing.
before=$(mutations)
FB_PIN=none form_all --ca "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key"
assert_eq "$before" "$(mutations)" "mutating requests of a re-run"

# A first node whose certificate the CA did not sign: a member waits (the
# first node may not have installed its certificate yet) and then fails,
# saying why; it never sends its password there.
sim_stop pve1
sim_start pve1 --fresh
sim_stop pve2
sim_start pve2 --fresh
before=$(mutations)
fb pve2 --ca "$TESTTMP/ca.pem" --wait-first 1
assert_eq 1 "$RC" "exit status against an unsigned first node"
assert_contains "$OUT" "not signed by the trusted CA"
assert_eq "$before" "$(mutations)" "mutating requests against an unsigned first node"

sim_schema_check || fail "schema check"
