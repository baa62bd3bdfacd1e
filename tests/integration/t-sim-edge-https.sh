#!/bin/bash
# The edge's stand-ins themselves: tests/sim/edge_certs.py (certificates
# made from a CA) and tests/sim/edge_https.py (the loopback HTTPS server that
# plays Traefik at the edge in t-edge.sh), checked with curl and openssl:
#   - edge_certs.py: a CA of its own (--new-ca); a leaf for *.home.arpa and
#     home.arpa on a P-256 key (PKCS#8, mode 0600), the chain leaf then CA,
#     serverAuth, verified by the CA; --days; --expired (validity in the
#     past); an unreadable CA is exit 2;
#   - edge_https.py on 127.0.0.1 only (--port 0, --port-file): a route
#     answers its status over TLS 1.2 and 1.3 with the leaf verified
#     (--cacert, --resolve HOST:PORT:127.0.0.1); the 401 route asks for
#     basic auth with realm "traefik"; an unknown host gets Traefik's 404
#     "404 page not found"; HEAD has no body;
#   - curl refuses it with another CA's trust, when it serves an expired
#     leaf, a leaf for another name, or another CA's leaf — and no request
#     is recorded for those;
#   - each request recorded as one line (host, SNI, method, path, status)
#     in --record-dir/edge-https.jsonl, and the same bytes under
#     SIM_RECORD_DIR/TESTDIR/edge-https.jsonl;
#   - a certificate that does not match the key: exit 2; SIGTERM: exit 0.
# sanitizer: skip
. "$TOP/tests/lib.sh"
SIM=$TOP/tests/sim

for t in curl openssl; do command -v "$t" >/dev/null || skip "$t is not installed"; done

# ---- certificates ----------------------------------------------------------------------
C=$TESTTMP/certs
mkdir -p "$C"
certs() { "$PY" "$SIM/edge_certs.py" "$@"; }
certs --new-ca --out-cert "$C/ca.pem" --out-key "$C/ca.key"
certs --new-ca --out-cert "$C/other-ca.pem" --out-key "$C/other-ca.key"
certs --ca-cert "$C/ca.pem" --ca-key "$C/ca.key" --name '*.home.arpa' --name home.arpa \
	--out-cert "$C/edge.pem" --out-key "$C/edge.key"
certs --ca-cert "$C/ca.pem" --ca-key "$C/ca.key" --name '*.home.arpa' --name home.arpa --expired \
	--out-cert "$C/expired.pem" --out-key "$C/expired.key"
certs --ca-cert "$C/ca.pem" --ca-key "$C/ca.key" --name '*.example.org' \
	--out-cert "$C/wrong-name.pem" --out-key "$C/wrong-name.key"
certs --ca-cert "$C/other-ca.pem" --ca-key "$C/other-ca.key" --name '*.home.arpa' --name home.arpa \
	--out-cert "$C/other.pem" --out-key "$C/other.key"
certs --ca-cert "$C/ca.pem" --ca-key "$C/ca.key" --name '*.home.arpa' --days 30 \
	--out-cert "$C/short.pem" --out-key "$C/short.key"

openssl x509 -in "$C/ca.pem" -noout -ext basicConstraints,keyUsage >"$C/ca.ext"
assert_contains "$C/ca.ext" "CA:TRUE"
assert_contains "$C/ca.ext" "Certificate Sign"
openssl verify -CAfile "$C/ca.pem" "$C/edge.pem" >/dev/null || fail "the leaf does not verify against its CA"
openssl verify -CAfile "$C/other-ca.pem" "$C/edge.pem" >/dev/null 2>&1 && fail "the leaf verifies against another CA"
openssl x509 -in "$C/edge.pem" -noout -ext subjectAltName,extendedKeyUsage,basicConstraints >"$C/edge.ext"
assert_contains "$C/edge.ext" "DNS:*.home.arpa, DNS:home.arpa"
assert_contains "$C/edge.ext" "TLS Web Server Authentication"
assert_contains "$C/edge.ext" "CA:FALSE"
assert_eq "subject=CN = *.home.arpa" "$(openssl x509 -in "$C/edge.pem" -noout -subject)" "the leaf's subject"
assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$C/edge.pem")" "certificates in the chain"
# the chain's second certificate is the CA
sed -n '/END CERTIFICATE/,$p' "$C/edge.pem" | sed 1d >"$C/edge-2nd.pem"
assert_eq "$(openssl x509 -in "$C/ca.pem" -noout -fingerprint -sha256)" \
	"$(openssl x509 -in "$C/edge-2nd.pem" -noout -fingerprint -sha256)" "the chain's second certificate"
assert_eq "-----BEGIN PRIVATE KEY-----" "$(head -n1 "$C/edge.key")" "the key's PEM type (PKCS#8)"
assert_eq 600 "$(stat -c %a "$C/edge.key")" "the key's mode"
openssl pkey -in "$C/edge.key" -noout -text | grep -q "NIST CURVE: P-256" || fail "the key is not P-256"
[ "$(openssl x509 -in "$C/edge.pem" -noout -pubkey | openssl sha256)" = \
	"$(openssl pkey -in "$C/edge.key" -pubout | openssl sha256)" ] || fail "the key is not the leaf's"
openssl verify -CAfile "$C/ca.pem" "$C/expired.pem" >"$C/expired.out" 2>&1 && fail "the expired leaf verifies"
assert_contains "$C/expired.out" "certificate has expired"
openssl x509 -in "$C/expired.pem" -noout -checkend 0 >/dev/null && fail "the expired leaf is still valid"
openssl x509 -in "$C/short.pem" -noout -checkend $((29 * 86400)) >/dev/null || fail "--days 30 ends within 29 days"
openssl x509 -in "$C/short.pem" -noout -checkend $((31 * 86400)) >/dev/null && fail "--days 30 lasts beyond 31 days"
expect_exit 2 certs --ca-cert "$C/nope.pem" --ca-key "$C/ca.key" --name x.home.arpa \
	--out-cert "$C/x.pem" --out-key "$C/x.key"
assert_contains "$OUT" "cannot read the CA"

# ---- the server --------------------------------------------------------------------------
REC=$TESTTMP/rec
# The suite's record file: SIM_RECORD_DIR's when the test runs under one
# (tests/README.md), else one of its own.
if [ -n "${SIM_RECORD_DIR:-}" ]; then
	EDGE_ENV=()
else
	EDGE_ENV=("SIM_RECORD_DIR=$TESTTMP/suite" TEST_NAME=t-example LABEL=plain)
fi
SUITE_FILE=$(env "${EDGE_ENV[@]}" "$PY" -c '
import sys
sys.path.insert(0, sys.argv[1])
import sim_record
print(sim_record.suite_path("edge", "https"))' "$SIM")
EDGE_PID=
# edge_start CERT KEY: edge_https.py with the console routes; $PORT
edge_start() {
	rm -f "$TESTTMP/port"
	: >"$TESTTMP/edge.out"
	bg_start env "${EDGE_ENV[@]}" "$PY" "$SIM/edge_https.py" --port 0 \
		--port-file "$TESTTMP/port" --cert "$1" --key "$2" --route pve.home.arpa=200 \
		--route dns.home.arpa=200 --route traefik.home.arpa=401 --record-dir "$REC" \
		>"$TESTTMP/edge.out" 2>>"$TESTTMP/edge.err"
	EDGE_PID=$!
	for _ in $(seq 100); do
		[ -s "$TESTTMP/port" ] && break
		kill -0 "$EDGE_PID" 2>/dev/null || { cat "$TESTTMP/edge.err" >&2; fail "edge_https.py exited"; }
		sleep 0.1
	done
	PORT=$(cat "$TESTTMP/port" 2>/dev/null) || { cat "$TESTTMP/edge.err" >&2; fail "no port file"; }
	for _ in $(seq 50); do
		grep -q "^edge_https: listening on https://127.0.0.1:$PORT$" "$TESTTMP/edge.out" && return 0
		sleep 0.1
	done
	fail "edge_https.py did not say where it listens: $(cat "$TESTTMP/edge.out")"
}
edge_stop() { # SIGTERM; it exits 0
	local rc=0
	kill "$EDGE_PID"
	wait "$EDGE_PID" || rc=$?
	assert_eq 0 "$rc" "edge_https.py's exit status on SIGTERM"
}
# get HOST PATH [CURL ARGS]: HTTPS to HOST:$PORT (127.0.0.1) trusting ca.pem;
# $CODE the status, $BODY, $HDRS the headers' file; curl's exit status
get() {
	local host=$1 path=$2 rc=0
	shift 2
	CODE=$(curl -sS --cacert "$C/ca.pem" --resolve "$host:$PORT:127.0.0.1" -D "$TESTTMP/headers" \
		-o "$TESTTMP/body" -w '%{http_code}' "$@" "https://$host:$PORT$path" 2>"$TESTTMP/curl.err") || rc=$?
	BODY=$(cat "$TESTTMP/body" 2>/dev/null || true)
	HDRS=$TESTTMP/headers
	return $rc
}
lines() { [ -f "$REC/edge-https.jsonl" ] && wc -l <"$REC/edge-https.jsonl" || echo 0; }

edge_start "$C/edge.pem" "$C/edge.key"
if command -v ss >/dev/null; then
	assert_eq "127.0.0.1:$PORT" "$(ss -Hltn "sport = :$PORT" | awk '{print $4}')" "the listening address"
fi

get pve.home.arpa /?x=1 || fail "HTTPS to pve.home.arpa: $(cat "$TESTTMP/curl.err")"
assert_eq 200 "$CODE" "pve.home.arpa's status"
assert_contains "$BODY" "<h1>pve.home.arpa</h1>"
get dns.home.arpa / --tlsv1.2 --tls-max 1.2 || fail "TLS 1.2: $(cat "$TESTTMP/curl.err")"
assert_eq 200 "$CODE" "dns.home.arpa's status over TLS 1.2"
get dns.home.arpa / --tlsv1.3 || fail "TLS 1.3: $(cat "$TESTTMP/curl.err")"
assert_eq 200 "$CODE" "dns.home.arpa's status over TLS 1.3"
get traefik.home.arpa /dashboard/ || fail "HTTPS to traefik.home.arpa: $(cat "$TESTTMP/curl.err")"
assert_eq 401 "$CODE" "the dashboard's status without credentials"
grep -qi '^WWW-Authenticate: Basic realm="traefik"' "$HDRS" || { cat "$HDRS" >&2; fail "no basic auth challenge"; }
get nope.home.arpa /x || fail "HTTPS to an unknown host: $(cat "$TESTTMP/curl.err")"
assert_eq 404 "$CODE" "an unknown host's status"
assert_eq "404 page not found" "$BODY" "an unknown host's answer"
get home.arpa / || fail "HTTPS to home.arpa: $(cat "$TESTTMP/curl.err")"
assert_eq 404 "$CODE" "home.arpa (in the certificate, no route)"
get pve.home.arpa / -H "Host: PVE.Home.Arpa:443" || fail "HTTPS with a Host in capitals"
assert_eq 200 "$CODE" "a Host header's case and port"
get pve.home.arpa / -I || fail "HEAD"
assert_eq 200 "$CODE" "HEAD's status"
case $BODY in *"<html>"*) fail "HEAD had a body: $BODY" ;; esac  # curl -I writes the headers there
n_good=$(lines)
assert_eq 8 "$n_good" "requests recorded"

# not trusted: another CA
get pve.home.arpa / --cacert "$C/other-ca.pem" && fail "curl trusted the leaf with another CA"
assert_contains "$(cat "$TESTTMP/curl.err")" "SSL certificate problem"
edge_stop

# an expired leaf, one for another name, another CA's
edge_start "$C/expired.pem" "$C/expired.key"
get pve.home.arpa / && fail "curl accepted an expired certificate"
assert_contains "$(cat "$TESTTMP/curl.err")" "certificate has expired"
edge_stop
edge_start "$C/wrong-name.pem" "$C/wrong-name.key"
get pve.home.arpa / && fail "curl accepted a certificate for another name"
assert_contains "$(cat "$TESTTMP/curl.err")" "pve.home.arpa"
get pve.example.org / || fail "the wrong-name leaf does not serve its own name: $(cat "$TESTTMP/curl.err")"
assert_eq 404 "$CODE" "pve.example.org (no route)"
edge_stop
edge_start "$C/other.pem" "$C/other.key"
get pve.home.arpa / && fail "curl accepted another CA's certificate"
assert_contains "$(cat "$TESTTMP/curl.err")" "SSL certificate problem"
edge_stop
assert_eq $((n_good + 1)) "$(lines)" "requests recorded after the refused handshakes (one: pve.example.org)"
grep -q "TLS handshake with 127.0.0.1 failed" "$TESTTMP/edge.err" || fail "the refused handshakes are not logged"

# the records
"$PY" - "$REC/edge-https.jsonl" <<'PYEOF' || fail "the records"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
for r in rs:
    assert sorted(r) == ["host", "method", "node", "path", "sni", "status", "time"], r
    assert r["node"] == "edge", r
got = [(r["host"], r["sni"], r["method"], r["path"], r["status"]) for r in rs]
want = [("pve.home.arpa", "pve.home.arpa", "GET", "/", 200),
        ("dns.home.arpa", "dns.home.arpa", "GET", "/", 200),
        ("dns.home.arpa", "dns.home.arpa", "GET", "/", 200),
        ("traefik.home.arpa", "traefik.home.arpa", "GET", "/dashboard/", 401),
        ("nope.home.arpa", "nope.home.arpa", "GET", "/x", 404),
        ("home.arpa", "home.arpa", "GET", "/", 404),
        ("pve.home.arpa", "pve.home.arpa", "GET", "/", 200),
        ("pve.home.arpa", "pve.home.arpa", "HEAD", "/", 200),
        ("pve.example.org", "pve.example.org", "GET", "/", 404)]
assert got == want, got
PYEOF
tail -n "$(lines)" "$SUITE_FILE" | cmp - "$REC/edge-https.jsonl" || fail "SIM_RECORD_DIR's copy ($SUITE_FILE) differs"

# --reload: started before the certificate exists (the demo's case),
# handshakes fail until it appears, then it is served; a new one replaces it
rm -f "$TESTTMP/late.pem" "$TESTTMP/late.key"
bg_start "$PY" "$SIM/edge_https.py" --port 0 --port-file "$TESTTMP/late.port" --cert "$TESTTMP/late.pem" \
	--key "$TESTTMP/late.key" --reload --route pve.home.arpa=200 >/dev/null 2>&1
LATE_PID=$!
for _ in $(seq 100); do [ -s "$TESTTMP/late.port" ] && break; sleep 0.1; done
LATE=$(cat "$TESTTMP/late.port")
curl -s -o /dev/null --cacert "$C/ca.pem" --resolve "pve.home.arpa:$LATE:127.0.0.1" "https://pve.home.arpa:$LATE/" &&
	fail "a handshake succeeded before the certificate existed"
cp "$C/edge.key" "$TESTTMP/late.key"
cp "$C/edge.pem" "$TESTTMP/late.pem"
[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$C/ca.pem" --resolve "pve.home.arpa:$LATE:127.0.0.1" \
	"https://pve.home.arpa:$LATE/")" = 200 ] || fail "--reload did not serve the certificate once it appeared"
cp "$C/other.key" "$TESTTMP/late.key"
cp "$C/other.pem" "$TESTTMP/late.pem"
curl -s -o /dev/null --cacert "$C/ca.pem" --resolve "pve.home.arpa:$LATE:127.0.0.1" "https://pve.home.arpa:$LATE/" &&
	fail "--reload kept the old certificate"
kill "$LATE_PID"

# a certificate that is not the key's: refused at the start
expect_exit 2 "$PY" "$SIM/edge_https.py" --port 0 --cert "$C/edge.pem" --key "$C/other.key"
assert_contains "$OUT" "cannot use"
expect_exit 2 "$PY" "$SIM/edge_https.py" --port 0 --cert "$C/edge.pem" --key "$C/edge.key" --route pve.home.arpa
echo "ok"
