#!/bin/bash
# Technitium DNS Server installed into a guest, as the DNS step does it
# through the guest agent: the Technitium simulator on an install directory
# (technitium_sim.py --install-dir) and the guest model of the install
# script (pve_sim_guests.py technitium_install, pve_sim.py --technitium-dir):
#   - until DIR/installed appears the server's port refuses connections;
#     then the API answers over HTTPS with the PKCS#12's certificate, which
#     verifies against the CA for the VM's IP (curl --connect-to), not with
#     another CA nor for another address; admin logs in with admin.pw's
#     password (a wrong one is refused); DNS_SERVER_DOMAIN is the server's
#     dnsServerDomain; its knotd serves a zone made over HTTPS; requests are
#     recorded without a password or token;
#   - restarted with its state it keeps its first password and domain (the
#     environment is read only by a new server), still over HTTPS;
#   - a PKCS#12 whose password is wrong: the simulator says why and exits 1;
#   - agent/exec `/bin/sh technitium-install.sh` in a simulated VM: no
#     script (dash's exit 2), a payload tarball missing, admin.pw missing,
#     the environment lacking the certificate's password, web.pfx.b64 not
#     base64: exit 1 and the reason; `systemctl is-active technitium` 4
#     before, 0 after a run that succeeds, which publishes the install
#     (admin.pw, web.pfx, technitium.env, installed: VMID, node, the VM's
#     identity) for the simulator waiting on it; a re-run publishes again.
# timeout: 300
# shellcheck disable=SC2154 # TN_*_NAME are set by printf -v
# sanitizer: skip
. "$TOP/tests/lib.sh"
SIM_TASK_MS=50
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

for t in curl openssl jq; do command -v "$t" >/dev/null || skip "$t is not installed"; done

# ---- a CA, another CA, the DNS VM's certificate (IP 10.0.10.41), its PKCS#12 ----
P=$TESTTMP/pki
mkdir -p "$P"
mkca() { # NAME
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-keyout "$P/$1.key" -out "$P/$1.pem" -subj "/O=DevOpsLab/CN=$1" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mkca ca
mkca other-ca
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/dns1.key" \
	-out "$P/dns1.csr" -subj "/CN=dns1.homelab.local" 2>/dev/null
printf '%s\n' "subjectAltName=IP:10.0.10.41,DNS:dns1.homelab.local" "basicConstraints=critical,CA:FALSE" \
	"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$P/dns1.ext"
openssl x509 -req -in "$P/dns1.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 365 \
	-extfile "$P/dns1.ext" -out "$P/dns1.pem" 2>/dev/null
PFX_PW=pfx-pass-7f3a
PFX_PW=$PFX_PW openssl pkcs12 -export -in "$P/dns1.pem" -inkey "$P/dns1.key" -certfile "$P/ca.pem" \
	-passout env:PFX_PW -out "$P/dns1.pfx"
ADMIN_PW='admin pw:4b#e1'

env_text() { # PFX-PASSWORD DOMAIN [OMIT-KEY]: the unit's environment, as the DNS step writes it
	local k
	for k in "DNS_SERVER_ADMIN_PASSWORD_FILE=/etc/devopslab/technitium/admin.pw" \
		DNS_SERVER_WEB_SERVICE_ENABLE_HTTPS=true DNS_SERVER_WEB_SERVICE_HTTPS_PORT=53443 \
		DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PATH=/etc/devopslab/technitium/web.pfx \
		"DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD=$1" DNS_SERVER_WEB_SERVICE_HTTP_TO_TLS_REDIRECT=true \
		"DNS_SERVER_DOMAIN=$2"; do
		[ "${k%%=*}" = "${3:-}" ] || printf '%s\n' "$k"
	done
}
publish() { # DIR PASSWORD PFX-PASSWORD DOMAIN: an install by hand, DIR/installed last
	mkdir -p "$1"
	printf '%s' "$2" >"$1/admin.pw"
	cp "$P/dns1.pfx" "$1/web.pfx"
	env_text "$3" "$4" >"$1/technitium.env"
	printf '{"vmid": 141, "node": "pve1", "identity": "by-hand", "time": %s}\n' "$(date +%s)" >"$1/installed.tmp"
	mv "$1/installed.tmp" "$1/installed"
}
refused() { # PORT: a TCP connection to it is refused
	"$PY" - "$1" <<-'PYEOF'
	import socket, sys
	try:
	    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10).close()
	except ConnectionRefusedError:
	    sys.exit(0)
	sys.exit(1)
	PYEOF
}
wait_listening() { # NAME: its simulator serves HTTPS (after the install)
	local v=${1//-/_} u p i
	u=TN_URL_$v p=TN_PID_$v
	for i in $(seq 600); do
		grep -qF "listening on ${!u} " "$TESTTMP/sim-technitium-$1.log" && return 0
		kill -0 "${!p}" 2>/dev/null || break
		sleep 0.1
	done
	cat "$TESTTMP/sim-technitium-$1.log" >&2
	fail "the installed Technitium simulator $1 does not serve HTTPS"
}
https_to() { # NAME: tn_login and tn_api talk to it as https://10.0.10.41:53443, trusting the CA
	tn_use "$1"
	TN_CURL_OPTS=(--cacert "$P/ca.pem" --connect-to "10.0.10.41:53443:127.0.0.1:${TN_URL##*:}")
	TN_URL=https://10.0.10.41:53443
}

# ---- the simulator on an install directory ---------------------------------------
D1=$TESTTMP/install-dns1
technitium_start_installed dns1 "$D1"
PORT1=${TN_URL_dns1##*:}
assert_eq "https://127.0.0.1:$PORT1" "$TN_URL_dns1" "TN_URL of an installed server"
refused "$PORT1" || fail "the port of a server not yet installed does not refuse connections"
expect_exit 7 curl -sS --max-time 10 "https://127.0.0.1:$PORT1/api/user/login"
ss -Hltn "sport = :$PORT1" | grep -q . && fail "the simulator listens before the install"
publish "$D1" "$ADMIN_PW" "$PFX_PW" dns1.homelab.local
wait_listening dns1
ss -Hltn "sport = :$PORT1" | grep -qv '127.0.0.1' && fail "the simulator listens beyond loopback"

https_to dns1
out=$(tn_api /api/user/login user=admin pass=wrong)
assert_eq error "$(jq -r .status <<<"$out")" "login with a wrong password"
tn_login "$ADMIN_PW"
expect_exit 60 curl -sS --max-time 10 --cacert "$P/other-ca.pem" \
	--connect-to "10.0.10.41:53443:127.0.0.1:$PORT1" https://10.0.10.41:53443/api/user/login
assert_contains "$OUT" "SSL certificate problem"
expect_exit 60 curl -sS --max-time 10 --cacert "$P/ca.pem" \
	--connect-to "10.0.10.42:53443:127.0.0.1:$PORT1" https://10.0.10.42:53443/api/user/login
out=$(tn_ok /api/settings/get)
assert_eq "dns1.homelab.local true 53443 ************" \
	"$(jq -r '.response | "\(.dnsServerDomain) \(.webServiceEnableTls) \(.webServiceTlsPort) \(.webServiceTlsCertificatePassword)"' <<<"$out")" \
	"settings of the installed server"
tn_ok /api/zones/create zone=homelab.local type=Primary >/dev/null
tn_ok /api/zones/records/add domain=dns1.homelab.local type=A ipAddress=10.0.10.41 >/dev/null
assert_eq 10.0.10.41 "$(tn_dig "$TN_DNS_PORT_dns1" dns1.homelab.local A)" "a record over HTTPS, served by knotd"
R=$TECHNITIUM_SIM_RECORD_DIR/dns1.jsonl
assert_eq 2 "$(tn_requests dns1 'select(.path=="/api/user/login" and .login=="password" and .redacted==["pass"])' | wc -l)" \
	"logins recorded"
grep -qF -e "$ADMIN_PW" -e "$PFX_PW" -e "$TN_TOKEN_dns1" "$R" && fail "a secret in the records"
grep -qF -e "$ADMIN_PW" "$TESTTMP/technitium-dns1/technitium.json" && fail "the admin password in the state in clear"

# restarted with its state: the first password and domain stay, HTTPS too
kill "$TN_PID_dns1"
wait "$TN_PID_dns1" 2>/dev/null || true
publish "$D1" "a new password" "$PFX_PW" other.homelab.local
technitium_start_installed dns1 "$D1"
wait_listening dns1
https_to dns1
out=$(tn_api /api/user/login user=admin "pass=a new password")
assert_eq error "$(jq -r .status <<<"$out")" "login with the password of a later environment"
tn_login "$ADMIN_PW"
assert_eq dns1.homelab.local "$(tn_ok /api/settings/get | jq -r .response.dnsServerDomain)" "domain after a restart"
assert_eq 10.0.10.41 "$(tn_dig "$TN_DNS_PORT_dns1" dns1.homelab.local A)" "record after a restart"

# a PKCS#12 that openssl cannot open with the password given
D2=$TESTTMP/install-dns2
technitium_start_installed dns2 "$D2"
publish "$D2" "$ADMIN_PW" not-the-pfx-password dns2.homelab.local
for _ in $(seq 300); do kill -0 "$TN_PID_dns2" 2>/dev/null || break; sleep 0.1; done
kill -0 "$TN_PID_dns2" 2>/dev/null && fail "a simulator whose certificate does not open still runs after 30 s"
rc=0
wait "$TN_PID_dns2" || rc=$?
assert_eq 1 "$rc" "exit status of a simulator whose certificate does not open"
assert_contains "$TESTTMP/sim-technitium-dns2.log" "dns2: the web service did not start: openssl pkcs12 -in $D2/web.pfx"

# ---- the install script in a simulated VM (pve_sim agent/exec) ---------------------
TNDIR=$TESTTMP/tn-installs
sim_init 1
sim_start pve1 --guest-boot-ms 200 --exec-ms 400 --technitium-dir "$TNDIR"
declare -A TICKET CSRF
api() { # METHOD PATH [curl args] -> $CODE, $BODY
	local m=$1 p=$2; shift 2
	CODE=$(curl -sS --max-time 30 --cacert "$SIM_STATE/pve1.pem" -o "$TESTTMP/body" -w '%{http_code}' -X "$m" \
		-b "PVEAuthCookie=${TICKET[pve1]:-}" -H "CSRFPreventionToken: ${CSRF[pve1]:-}" "$@" \
		"https://127.0.0.1:${SIM_PORT[pve1]}/api2/json$p")
	BODY=$(<"$TESTTMP/body")
}
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$BODY"; }
api POST /access/ticket --data-urlencode username=root@pam --data-urlencode "password=$(cat "$TESTTMP/root.pw")"
TICKET[pve1]=$(jget 'd["data"]["ticket"]')
CSRF[pve1]=$(jget 'd["data"]["CSRFPreventionToken"]')
task_ok() { # UPID in $BODY: wait for the task, which must end OK
	local upid enc
	upid=$(jget 'd["data"]')
	enc=${upid//:/%3A}
	enc=${enc//@/%40}
	for _ in $(seq 300); do
		api GET "/nodes/pve1/tasks/$enc/status"
		[ "$(jget 'd["data"]["status"]')" = stopped ] && break
		sleep 0.05
	done
	assert_eq OK "$(jget 'd["data"].get("exitstatus")')" "task $upid"
}
api POST /nodes/pve1/qemu --data vmid=141 --data name=dns1 --data agent=1 --data memory=1024 --data start=1
assert_eq 200 "$CODE" "create and start VM 141: $BODY"
task_ok
for i in $(seq 200); do
	api POST /nodes/pve1/qemu/141/agent/ping
	[ "$CODE" = 200 ] && break
	sleep 0.05
done
assert_eq 200 "$CODE" "VM 141's agent: $BODY"
# gexec [--input DATA] ARGV...: agent/exec, then exec-status until it ends: $GCODE, $GOUT, $GERR
gexec() {
	local args=() a pid
	if [ "$1" = --input ]; then args+=(--data-urlencode "input-data=$2"); shift 2; fi
	for a in "$@"; do args+=(--data-urlencode "command=$a"); done
	api POST /nodes/pve1/qemu/141/agent/exec "${args[@]}"
	assert_eq 200 "$CODE" "agent/exec $*: $BODY"
	pid=$(jget 'd["data"]["pid"]')
	for _ in $(seq 300); do
		api GET /nodes/pve1/qemu/141/agent/exec-status -G --data "pid=$pid"
		[ "$(jget 'd["data"]["exited"]')" = 1 ] && break
		sleep 0.05
	done
	GCODE=$(jget 'd["data"].get("exitcode")')
	GOUT=$(jget 'd["data"].get("out-data", "")')
	GERR=$(jget 'd["data"].get("err-data", "")')
}
install_file() { # MODE PATH DATA
	gexec --input "$3" /usr/bin/install -D -m "$1" /dev/stdin "$2"
	assert_eq 0 "$GCODE" "install $2"
}
run_script() { gexec /bin/sh /usr/local/lib/devopslab/technitium-install.sh; }
payload_file() { # NAME: a stand-in for a tarball payload.sh lays from the bundle
	sim_edit "
import base64, hashlib
b = b'stand-in for $1'
s['guest']['vms']['pve1']['141'].setdefault('guestfs', {})['/usr/local/lib/devopslab/technitium/$1'] = {
    'mode': '0644', 'sha256': hashlib.sha256(b).hexdigest(), 'size': len(b),
    'b64': base64.b64encode(b).decode(), 'from': 'payload'}
"
}
E=/etc/devopslab/technitium

gexec systemctl is-active technitium
assert_eq "4 inactive" "$GCODE $GOUT" "is-active before the install"
run_script
assert_eq 2 "$GCODE" "the install script missing"
assert_contains "$GERR" "/bin/sh: 0: cannot open /usr/local/lib/devopslab/technitium-install.sh: No such file"
install_file 0755 /usr/local/lib/devopslab/technitium-install.sh "$(printf '#!/bin/sh\nset -eu\n: the real script\n')"
payload_file aspnetcore-runtime.tar.gz
run_script
assert_eq 1 "$GCODE" "a payload tarball missing"
assert_contains "$GERR" "/usr/local/lib/devopslab/technitium/DnsServerPortable.tar.gz is missing"
payload_file DnsServerPortable.tar.gz
run_script
assert_eq 1 "$GCODE" "admin.pw missing"
assert_contains "$GERR" "$E/admin.pw is missing"
install_file 0600 "$E/admin.pw" "$ADMIN_PW"
install_file 0600 "$E/web.pfx.b64" "this is not base64!"
install_file 0600 "$E/technitium.env" "$(env_text "$PFX_PW" dns1.homelab.local \
	DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD)"
install_file 0644 /etc/systemd/system/technitium.service "$(printf '[Unit]\nDescription=Technitium DNS Server\n')"
run_script
assert_eq 1 "$GCODE" "the environment without the certificate's password"
assert_contains "$GERR" "does not set DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD"
install_file 0600 "$E/technitium.env" "$(env_text "$PFX_PW" dns1.homelab.local)"
run_script
assert_eq 1 "$GCODE" "web.pfx.b64 not base64"
assert_contains "$GERR" "base64: invalid input"
[ -e "$TNDIR/dns1/installed" ] && fail "a failed install was published"
gexec systemctl is-active technitium
assert_eq 4 "$GCODE" "is-active after failed installs"

# the simulator waits on the VM's directory; the script (base64 with line breaks) succeeds
technitium_start_installed dns3 "$TNDIR/dns1"
refused "${TN_URL_dns3##*:}" || fail "the port of the VM's server does not refuse connections before the install"
install_file 0600 "$E/web.pfx.b64" "$(base64 -w 64 "$P/dns1.pfx")"
run_script
assert_eq 0 "$GCODE" "the install script: $GERR"
gexec systemctl is-active technitium
assert_eq "0 active" "$GCODE $GOUT" "is-active after the install"
gexec systemctl is-active k3s
assert_eq 4 "$GCODE" "is-active of a unit never installed"
assert_eq "0600 True" "$(sim_query "' '.join(str(x) for x in (lambda f: (f['mode'], __import__('base64').b64decode(f['b64']) == open('$P/dns1.pfx', 'rb').read()))(s['guest']['vms']['pve1']['141']['guestfs']['$E/web.pfx']))")" \
	"web.pfx in the guest"
ident=$(sim_query "s['guest']['vms']['pve1']['141']['conf']['smbios1'].split('uuid=')[1].split(',')[0]")
assert_eq "141 pve1 $ident" "$(jq -r '"\(.vmid) \(.node) \(.identity)"' "$TNDIR/dns1/installed")" "the install published"
assert_eq "$ADMIN_PW" "$(cat "$TNDIR/dns1/admin.pw")" "published password"
cmp "$P/dns1.pfx" "$TNDIR/dns1/web.pfx" || fail "the published web.pfx is not the PKCS#12"
assert_eq "$(env_text "$PFX_PW" dns1.homelab.local)" "$(cat "$TNDIR/dns1/technitium.env")" "published environment"
assert_eq "600 600 600" "$(stat -c %a "$TNDIR/dns1/admin.pw" "$TNDIR/dns1/web.pfx" "$TNDIR/dns1/technitium.env" | xargs)" \
	"modes of the published files"
wait_listening dns3
https_to dns3
tn_login "$ADMIN_PW"
assert_eq dns1.homelab.local "$(tn_ok /api/settings/get | jq -r .response.dnsServerDomain)" "the VM's server's domain"
# a re-run: fine, and published again
rm "$TNDIR/dns1/installed"
run_script
assert_eq 0 "$GCODE" "the install script again: $GERR"
[ -s "$TNDIR/dns1/installed" ] || fail "a re-run did not publish again"
gexec systemctl is-active technitium
assert_eq 0 "$GCODE" "is-active after a re-run"

"$PY" "$SIM/pve_schema_check.py" --schema "$SHARED/reference/pve-api-schema-9.1.json" "$PVE_SIM_RECORD_DIR"/*.jsonl ||
	fail "a request did not pass the schema check"
echo "ok"
