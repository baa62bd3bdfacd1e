#!/bin/bash
# The ACME test server harness itself (tests/sim/acme-lib.sh: Debian's
# pebble, which t-edge.sh orders the edge certificate from), with the
# Technitium simulator's knotd as the DNS server its DNS-01 validations ask:
#   - pebble on 127.0.0.1 only (its ACME and management ports), with
#     -dnsserver 127.0.0.1:<the knotd's port>, no validation sleeps and
#     30% of good nonces rejected (its log says so);
#   - the directory (ACME_URL) has newNonce, newAccount and newOrder; a
#     HEAD to newNonce gives a Replay-Nonce;
#   - its HTTPS listener's certificate (127.0.0.1 and localhost) verifies
#     against ACME_TLS_CA, not against pebble's root; curl trusting
#     ACME_TRUST reaches it, curl with the system's trust does not;
#   - ACME_TRUST holds exactly two certificates: ACME_TLS_CA then ACME_ROOT;
#     ACME_ROOT is a CA; acme_intermediate's certificate verifies against
#     it and not against ACME_TLS_CA;
#   - acme_stop: no process left at ACME_PID; a new start (ACME_NONCEREJECT
#     0) has a new root and the same TLS CA, ACME_TRUST follows it;
#   - acme_stop stops no other process (the simulator's knotd answers).
# shellcheck disable=SC2154 # ACME_* are set by acme_start, TN_* by technitium_start
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/dns-lib.sh"
. "$TOP/tests/sim/acme-lib.sh"

for t in curl openssl jq ss; do command -v "$t" >/dev/null || skip "$t is not installed"; done

technitium_start dns
acme_start "$TN_DNS_PORT"
HOSTPORT=${ACME_URL#https://} MHOSTPORT=${ACME_MGMT#https://}
HOSTPORT=${HOSTPORT%%/*}

# ---- the process ---------------------------------------------------------------------
assert_eq "$(readlink -f "$(command -v pebble)")" "$(readlink "/proc/$ACME_PID/exe")" "ACME_PID's program"
ss -Hltnp | grep "pid=$ACME_PID," >"$TESTTMP/listen.txt" || fail "pebble listens nowhere"
assert_eq 2 "$(wc -l <"$TESTTMP/listen.txt")" "pebble's listening sockets"
grep -qF "127.0.0.1:${HOSTPORT#*:} " "$TESTTMP/listen.txt" || { cat "$TESTTMP/listen.txt" >&2; fail "not listening on $HOSTPORT"; }
grep -qF "127.0.0.1:${MHOSTPORT#*:} " "$TESTTMP/listen.txt" || { cat "$TESTTMP/listen.txt" >&2; fail "not listening on $MHOSTPORT"; }
awk '$4 !~ /^127\.0\.0\.1:/ {exit 1}' "$TESTTMP/listen.txt" || { cat "$TESTTMP/listen.txt" >&2; fail "pebble listens beyond loopback"; }
assert_contains "$ACME_LOG" "Using custom DNS resolver for ACME challenges: 127.0.0.1:$TN_DNS_PORT"
assert_contains "$ACME_LOG" "Disabling random VA sleeps"
assert_contains "$ACME_LOG" "Configured to reject ${ACME_NONCEREJECT:-30}% of good nonces"

# ---- the directory and a nonce -----------------------------------------------------------
curl -sSf --max-time 10 --cacert "$ACME_TRUST" "$ACME_URL" >"$TESTTMP/dir.json" || fail "the directory with ACME_TRUST"
jq -e '.newNonce and .newAccount and .newOrder' "$TESTTMP/dir.json" >/dev/null ||
	{ cat "$TESTTMP/dir.json" >&2; fail "the directory lacks newNonce, newAccount or newOrder"; }
for k in newNonce newAccount newOrder; do
	assert_contains "$(jq -r ".$k" "$TESTTMP/dir.json")" "https://$HOSTPORT/"
done
curl -sSf --max-time 10 --cacert "$ACME_TRUST" -I "$(jq -r .newNonce "$TESTTMP/dir.json")" >"$TESTTMP/nonce.txt" ||
	fail "HEAD newNonce"
grep -qiE '^replay-nonce: [A-Za-z0-9_-]+' "$TESTTMP/nonce.txt" || { cat "$TESTTMP/nonce.txt" >&2; fail "no Replay-Nonce"; }

# ---- trust ---------------------------------------------------------------------------------
# the system's trust: 60 (the peer is not trusted), 77 where there is no CA bundle
rc=0; OUT=$(curl -sS --max-time 10 "$ACME_URL" 2>&1) || rc=$?
case $rc in 60 | 77) ;; *) echo "$OUT" >&2; fail "curl with the system's trust exited $rc, expected 60 or 77" ;; esac
openssl s_client -connect "$HOSTPORT" -servername localhost </dev/null 2>/dev/null |
	openssl x509 >"$TESTTMP/listener.pem" || fail "pebble's listener certificate"
openssl verify -CAfile "$ACME_TLS_CA" -verify_ip 127.0.0.1 "$TESTTMP/listener.pem" >/dev/null ||
	fail "pebble's listener certificate does not verify against ACME_TLS_CA for 127.0.0.1"
openssl verify -CAfile "$ACME_TLS_CA" -verify_hostname localhost "$TESTTMP/listener.pem" >/dev/null ||
	fail "pebble's listener certificate does not verify against ACME_TLS_CA for localhost"
openssl verify -CAfile "$ACME_ROOT" "$TESTTMP/listener.pem" >/dev/null 2>&1 &&
	fail "pebble's listener certificate verifies against pebble's root"
openssl x509 -in "$TESTTMP/listener.pem" -noout -ext subjectAltName >"$TESTTMP/san.txt"
assert_contains "$TESTTMP/san.txt" "IP Address:127.0.0.1"
assert_contains "$TESTTMP/san.txt" "DNS:localhost"
curl -sSf --max-time 10 --cacert "$ACME_TRUST" -o /dev/null "$ACME_MGMT/roots/0" || fail "the management interface with ACME_TRUST"

assert_eq 2 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$ACME_TRUST")" "certificates in ACME_TRUST"
assert_eq 1 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$ACME_TLS_CA")" "certificates in ACME_TLS_CA"
assert_eq 1 "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$ACME_ROOT")" "certificates in ACME_ROOT"
assert_eq "$(cat "$ACME_TLS_CA" "$ACME_ROOT")" "$(cat "$ACME_TRUST")" "ACME_TRUST"
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256; }
[ "$(fp "$ACME_TLS_CA")" != "$(fp "$ACME_ROOT")" ] || fail "ACME_ROOT is the test TLS CA"
openssl x509 -in "$ACME_ROOT" -noout -ext basicConstraints | grep -q "CA:TRUE" || fail "ACME_ROOT is not a CA"
assert_contains "$(openssl x509 -in "$ACME_ROOT" -noout -subject)" "Pebble Root CA"

acme_intermediate "$TESTTMP/intermediate.pem"
assert_contains "$(openssl x509 -in "$TESTTMP/intermediate.pem" -noout -subject)" "Pebble Intermediate CA"
openssl verify -CAfile "$ACME_ROOT" "$TESTTMP/intermediate.pem" >/dev/null ||
	fail "pebble's intermediate does not verify against ACME_ROOT"
openssl verify -CAfile "$ACME_TRUST" "$TESTTMP/intermediate.pem" >/dev/null ||
	fail "pebble's intermediate does not verify against ACME_TRUST"
openssl verify -CAfile "$ACME_TLS_CA" "$TESTTMP/intermediate.pem" >/dev/null 2>&1 &&
	fail "pebble's intermediate verifies against the test TLS CA"

# ---- stop, and a new start ---------------------------------------------------------------------
pid=$ACME_PID
cp "$ACME_ROOT" "$TESTTMP/root-1.pem"
cp "$ACME_TLS_CA" "$TESTTMP/tls-ca-1.pem"
acme_stop
kill -0 "$pid" 2>/dev/null && fail "pebble ($pid) outlived acme_stop"
[ ! -e "/proc/$pid" ] || fail "a process is left at pebble's PID $pid"
expect_exit 7 curl -sS --max-time 5 --cacert "$ACME_TRUST" "$ACME_URL"
kill -0 "$TN_PID" 2>/dev/null || fail "acme_stop stopped the Technitium simulator"
kdig @127.0.0.1 -p "$TN_DNS_PORT" +time=2 +retry=1 localhost SOA >/dev/null || fail "the simulator's knotd stopped with pebble"

ACME_NONCEREJECT=0 acme_start "$TN_DNS_PORT"
[ "$ACME_PID" != "$pid" ] || fail "the same PID after a new start"
assert_contains "$ACME_LOG" "Configured to reject 0% of good nonces"
assert_eq "$(fp "$TESTTMP/tls-ca-1.pem")" "$(fp "$ACME_TLS_CA")" "the TLS CA after a new start"
[ "$(fp "$TESTTMP/root-1.pem")" != "$(fp "$ACME_ROOT")" ] || fail "the same root after a new start"
assert_eq "$(cat "$ACME_TLS_CA" "$ACME_ROOT")" "$(cat "$ACME_TRUST")" "ACME_TRUST after a new start"
curl -sSf --max-time 10 --cacert "$ACME_TRUST" -o /dev/null "$ACME_URL" || fail "the directory after a new start"
acme_intermediate "$TESTTMP/intermediate-2.pem"
openssl verify -CAfile "$ACME_ROOT" "$TESTTMP/intermediate-2.pem" >/dev/null ||
	fail "the new intermediate does not verify against the new root"
openssl verify -CAfile "$TESTTMP/root-1.pem" "$TESTTMP/intermediate-2.pem" >/dev/null 2>&1 &&
	fail "the new intermediate verifies against the old root"
pid=$ACME_PID
acme_stop
[ ! -e "/proc/$pid" ] || fail "a process is left at pebble's PID $pid"
echo "ok"
