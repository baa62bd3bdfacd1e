# tests/sim/acme-lib.sh — sourced by the tests after tests/lib.sh: Let's
# Encrypt's ACME test server, Debian's pebble (2.4.0), on loopback ports,
# its DNS-01 validations asked of a DNS server the test names (the
# Technitium simulator's knotd).
#
#   acme_start DNS_PORT    start pebble (killed on exit) with -dnsserver
#                          127.0.0.1:DNS_PORT, no validation sleeps and
#                          ${ACME_NONCEREJECT:-30}% of good nonces rejected
#                          (clients must retry badNonce); sets
#                          ACME_URL    its directory (https://127.0.0.1:PORT/dir)
#                          ACME_MGMT   its management interface
#                          ACME_PID, ACME_LOG
#                          ACME_TLS_CA the test CA of pebble's HTTPS listener
#                          ACME_ROOT   the root pebble issues under (new at
#                                      every start)
#                          ACME_TRUST  both: what a client trusts
#   acme_stop              stop it (by its PID)
#   acme_intermediate FILE its intermediate (new at every start) in FILE
ACME_DIR=$TESTTMP/acme

command -v pebble >/dev/null || skip "pebble is not installed (scripts/install-deps.sh)"

declare -F free_port >/dev/null || free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A test CA and pebble's certificate for 127.0.0.1 (pebble serves HTTPS only).
_acme_certs() {
	mkdir -p "$ACME_DIR"
	[ -s "$ACME_DIR/tls-ca.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pebble test TLS CA" \
		-keyout "$ACME_DIR/tls-ca.key" -out "$ACME_DIR/tls-ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
		-keyout "$ACME_DIR/tls.key" -out "$ACME_DIR/tls.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$ACME_DIR/tls.ext"
	openssl x509 -req -in "$ACME_DIR/tls.csr" -CA "$ACME_DIR/tls-ca.pem" -CAkey "$ACME_DIR/tls-ca.key" \
		-CAcreateserial -days 2 -extfile "$ACME_DIR/tls.ext" -out "$ACME_DIR/tls.pem" 2>/dev/null
}

acme_start() { # DNS_PORT
	local dns=$1 port mport
	_acme_certs
	ACME_TLS_CA=$ACME_DIR/tls-ca.pem ACME_ROOT=$ACME_DIR/root.pem ACME_TRUST=$ACME_DIR/trust.pem
	ACME_LOG=$ACME_DIR/pebble.log
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		mport=$(free_port)
		[ "$port" != "$mport" ] || continue
		# httpPort and tlsPort are for http-01 and tls-alpn-01 challenges,
		# which nothing here answers: free ports, never asked
		cat >"$ACME_DIR/pebble.json" <<-EOF
			{"pebble": {"listenAddress": "127.0.0.1:$port", "managementListenAddress": "127.0.0.1:$mport",
			 "certificate": "$ACME_DIR/tls.pem", "privateKey": "$ACME_DIR/tls.key",
			 "httpPort": $(free_port), "tlsPort": $(free_port), "ocspResponderURL": "",
			 "externalAccountBindingRequired": false}}
		EOF
		: >"$ACME_LOG"
		PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=${ACME_NONCEREJECT:-30} \
			bg_start pebble -strict=false -config "$ACME_DIR/pebble.json" -dnsserver "127.0.0.1:$dns" \
			>>"$ACME_LOG" 2>&1
		ACME_PID=$!
		for _ in $(seq 100); do
			if curl -sf --max-time 5 --cacert "$ACME_TLS_CA" -o /dev/null "https://127.0.0.1:$port/dir" &&
				curl -sf --max-time 5 --cacert "$ACME_TLS_CA" -o "$ACME_ROOT" "https://127.0.0.1:$mport/roots/0"; then
				# shellcheck disable=SC2034 # for the tests
				ACME_URL=https://127.0.0.1:$port/dir ACME_MGMT=https://127.0.0.1:$mport
				cat "$ACME_TLS_CA" "$ACME_ROOT" >"$ACME_TRUST"
				return 0
			fi
			kill -0 "$ACME_PID" 2>/dev/null || break
			sleep 0.1
		done
		acme_stop
	done
	cat "$ACME_LOG" >&2
	fail "pebble did not start"
}

acme_stop() {
	[ -n "${ACME_PID:-}" ] || return 0
	kill "$ACME_PID" 2>/dev/null || true
	wait "$ACME_PID" 2>/dev/null || true
	ACME_PID=
}

acme_intermediate() { # FILE
	curl -sSf --max-time 10 --cacert "$ACME_TLS_CA" -o "$1" "$ACME_MGMT/intermediates/0" ||
		fail "pebble's intermediate ($ACME_MGMT/intermediates/0)"
}
