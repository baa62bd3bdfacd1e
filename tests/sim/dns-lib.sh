# tests/sim/dns-lib.sh — sourced by the DNS tests after tests/lib.sh: the
# Technitium DNS Server simulator (technitium_sim.py), whose zones a real
# knotd serves on a loopback port.
#
#   technitium_start NAME [ARGS]   start one server (killed on exit, its
#                                  knotd with it); sets TN_URL, TN_DNS_PORT,
#                                  TN_PID and TN_URL_NAME, TN_DNS_PORT_NAME
#                                  (NAME with - as _); admin password in
#                                  $TESTTMP/tn-admin.pw
#   technitium_start_installed NAME DIR [ARGS]
#                                  the same for a server installed into a
#                                  guest (--install-dir DIR): its port is
#                                  bound but refuses connections until
#                                  DIR/installed appears, then serves HTTPS
#                                  (TN_URL https://127.0.0.1:PORT) with
#                                  DIR's password and certificate
#   tn_use NAME                    make NAME the server tn_api talks to
#   tn_login [PASSWORD]            log in; TN_TOKEN (per server: TN_TOKEN_NAME)
#   tn_api PATH [K=V]...           POST the form to PATH with the token
#                                  (Authorization: Bearer); the JSON on stdout
#   TN_CURL_OPTS (array)           more curl options for tn_login and tn_api
#                                  (HTTPS: --cacert, --connect-to)
#   tn_ok PATH [K=V]...            the same, failing the test unless status is "ok"
#   tn_dig PORT ARGS...            kdig @127.0.0.1 -p PORT, short answer
#   tn_requests NAME [FILTER]      recorded requests of NAME (jq FILTER over them)
#   tn_assets DIR                  stand-ins for the bundle's Technitium and
#                                  ASP.NET Core archives in DIR/dns/, for a
#                                  manifest's dns.airgap
SIM=${SIM:-$TOP/tests/sim}
export TECHNITIUM_SIM_RECORD_DIR=$TESTTMP/technitium-records
mkdir -p "$TECHNITIUM_SIM_RECORD_DIR"
[ -s "$TESTTMP/tn-admin.pw" ] || printf 'tn-admin-secret\n' >"$TESTTMP/tn-admin.pw"

if ! command -v knotd >/dev/null || ! command -v kdig >/dev/null; then
	skip "knot and knot-dnsutils are not installed (scripts/install-deps.sh)"
fi

declare -F free_port >/dev/null || free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

technitium_start() { # NAME [technitium_sim args]
	local name=$1; shift
	_tn_start http "$name" --admin-password-file "$TESTTMP/tn-admin.pw" "$@"
}

technitium_start_installed() { # NAME DIR [technitium_sim args]
	local name=$1 dir=$2; shift 2
	_tn_start https "$name" --install-dir "$dir" "$@"
}

# _tn_start http|https NAME [technitium_sim args]: start on free ports (new
# ones when a port was taken meanwhile) and wait until the server listens
# (http) or has bound its port (https: an installed server, listening later).
_tn_start() {
	local scheme=$1 name=$2 var log; shift 2
	var=${name//-/_}
	log=$TESTTMP/sim-technitium-$name.log
	for _ in 1 2 3 4 5; do
		local port dport ready
		port=$(free_port)
		dport=$(free_port)
		[ "$port" != "$dport" ] || continue
		ready="listening on http://127.0.0.1:$port "
		[ "$scheme" = http ] || ready="bound on 127.0.0.1:$port "
		bg_start "$PY" "$SIM/technitium_sim.py" --name "$name" --port "$port" --dns-port "$dport" \
			--state "$TESTTMP/technitium-$name" "$@" >>"$log" 2>&1
		TN_PID=$!
		for _ in $(seq 150); do
			if grep -qF "$ready" "$log" 2>/dev/null && kill -0 "$TN_PID" 2>/dev/null; then
				TN_URL=$scheme://127.0.0.1:$port TN_DNS_PORT=$dport
				printf -v "TN_URL_$var" '%s' "$TN_URL"
				printf -v "TN_DNS_PORT_$var" '%s' "$dport"
				printf -v "TN_PID_$var" '%s' "$TN_PID"
				return 0
			fi
			kill -0 "$TN_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$TN_PID" 2>/dev/null || true
		wait "$TN_PID" 2>/dev/null || true
	done
	cat "$log" >&2
	fail "the Technitium simulator $name did not start"
}

# shellcheck disable=SC2034 # TN_DNS_PORT is for the tests
tn_use() { # NAME
	local var=${1//-/_} u p t
	u=TN_URL_$var p=TN_DNS_PORT_$var t=TN_TOKEN_$var
	TN_URL=${!u} TN_DNS_PORT=${!p} TN_TOKEN=${!t:-}
	TN_NAME=$1
}

# tn_api through an installed server's VM address (NAME IP), trusted by the
# cluster CA $TESTTMP/ca.pem, as the provisioner reaches it.
tn_vm() { # NAME IP
	local port
	tn_use "$1"
	port=${TN_URL##*:}
	TN_URL=https://$2:53443
	TN_CURL_OPTS=(--cacert "$TESTTMP/ca.pem" --connect-to "$2:53443:127.0.0.1:$port")
}

tn_login() { # [PASSWORD]
	local pw=${1:-$(cat "$TESTTMP/tn-admin.pw")} out
	out=$(curl -sS --max-time 10 ${TN_CURL_OPTS[@]+"${TN_CURL_OPTS[@]}"} "$TN_URL/api/user/login" \
		--data-urlencode user=admin --data-urlencode "pass=$pw")
	TN_TOKEN=$(jq -r '.token // empty' <<<"$out")
	[ -n "$TN_TOKEN" ] || { echo "$out" >&2; fail "login to $TN_URL failed"; }
	[ -z "${TN_NAME:-}" ] || printf -v "TN_TOKEN_${TN_NAME//-/_}" '%s' "$TN_TOKEN"
}

tn_api() { # PATH [K=V]...
	local path=$1 kv args=(); shift
	for kv in "$@"; do args+=(--data-urlencode "$kv"); done
	curl -sS --max-time 20 ${TN_CURL_OPTS[@]+"${TN_CURL_OPTS[@]}"} ${TN_TOKEN:+-H "Authorization: Bearer $TN_TOKEN"} "${args[@]}" \
		-X POST -H 'Content-Type: application/x-www-form-urlencoded' "$TN_URL$path"
}

tn_ok() { # PATH [K=V]...
	local out
	out=$(tn_api "$@")
	[ "$(jq -r .status <<<"$out")" = ok ] || { echo "$out" >&2; fail "$TN_NAME $1: not ok"; }
	printf '%s\n' "$out"
}

tn_dig() { # PORT ARGS...
	local port=$1; shift
	kdig @127.0.0.1 -p "$port" +time=2 +retry=1 +short "$@"
}

tn_requests() { # NAME [jq FILTER]
	jq -c "${2:-.}" "$TECHNITIUM_SIM_RECORD_DIR/$1.jsonl"
}

tn_assets() { # DIR
	mkdir -p "$1/dns"
	printf 'Technitium stand-in\n' >"$1/dns/DnsServerPortable.tar.gz"
	printf 'runtime stand-in\n' >"$1/dns/aspnetcore-runtime-8.0-linux-x64.tar.gz"
}

# The example's topology for t-edge, t-powercut and t-dr-node: k3s_init
# (K3s behind kube-vip, ServiceLB off), the Technitium assets, the DNS
# admin and dashboard passwords in $TESTTMP/dns.pw and dash.pw, and
# dns_edge_manifest's sections.
dns_edge_init() {
	K3S_VIP=1 K3S_DISABLE=servicelb k3s_init
	tn_assets "$A"
	printf 'dns admin p@ss\n' >"$TESTTMP/dns.pw"
	printf 'dashboard s3cret\n' >"$TESTTMP/dash.pw"
	dns_edge_manifest
}

# The example's topology on top of k3s_init's manifest (t-edge.sh,
# t-powercut.sh): the Technitium assets (tn_assets), a DNS VM dns-01 on
# pve2, a dns section (dns-01 the primary, password secret dns_pw) and an
# edge section (10.0.0.30, the dashboard behind secret dash_pw, an allow
# list and a rate limit).
dns_edge_manifest() {
	"$PY" - "$TESTTMP/cluster.yaml" <<-'PYEOF'
	import sys
	p = sys.argv[1]
	s = open(p).read()
	s = s.replace("  - {name: kube-vip, file: k3s/kube-vip.tar}",
	              "  - {name: kube-vip, file: k3s/kube-vip.tar}\n"
	              "  - {name: technitium, file: dns/DnsServerPortable.tar.gz}\n"
	              "  - {name: aspnet, file: dns/aspnetcore-runtime-8.0-linux-x64.tar.gz}")
	s = s.replace("names: [pw, k3s_token, cluster_ca_key]", "names: [pw, k3s_token, cluster_ca_key, dns_pw, dash_pw]")
	s = s.replace("k3s:\n", """  - id: dns
	    name: "dns-{n:02}"
	    count: 1
	    vmid: 501
	    target_node: [pve2]
	    clone: tpl
	    full_clone: false
	    memory: 1024
	    agent: 1
	    disk: {size: 4G}
	    ipconfig0: "ip=10.0.0.41/24,gw=10.0.0.1"
	k3s:
	""", 1)
	s += """dns:
	  primary: dns-01
	  node_records: true
	  admin_password: {secret: dns_pw}
	  airgap: {package: technitium, runtime: aspnet}
	edge:
	  ip: 10.0.0.30
	  dashboard_host: traefik.home.arpa
	  dashboard_password: {secret: dash_pw}
	  allow: [10.0.0.0/24, 192.168.50.0/24]
	  rate_limit: {average: 50, burst: 100}
	"""
	open(p, "w").write(s)
	PYEOF
}

# The firstboot arguments of the lab of dns_edge_init against the running
# simulators (sim_start_all, k8s_start, technitium_start_installed dns-01)
# into ARGS: K3s (timeout TIMEOUT, default 60), DNS, the edge (EDGE_PORT,
# free_port, the stand-in's), then EXTRA... (t-gitops.sh, t-monitoring.sh).
lab_args() { # [TIMEOUT [EXTRA...]]
	local timeout=${1:-60}
	shift || true
	k3s_args
	ARGS=("${K3S[@]}" --k3s-timeout "$timeout"
		--dns-password-file "$TESTTMP/dns.pw" --dns-timeout 60
		--dns-connect "dns-01=127.0.0.1:${TN_URL_dns_01##*:}" --dns-query "dns-01=127.0.0.1:$TN_DNS_PORT_dns_01"
		--edge-password-file "$TESTTMP/dash.pw" --edge-timeout 60 --edge-connect "127.0.0.1:$EDGE_PORT" "$@")
}

# The edge stand-in (edge_https.py) on EDGE_PORT with the TLS secret the
# edge-certs step made, answering the lab's consoles as Traefik would and
# HOST=STATUS... besides; recording into TESTTMP/edge-rec.
lab_edge_serve() { # [HOST=STATUS...]
	local r routes=()
	kget /api/v1/namespaces/kube-system/secrets/devopslab-edge-tls >"$TESTTMP/tls.json" || fail "no TLS secret"
	"$PY" -c '
import base64, json, sys
t = json.load(open(sys.argv[1] + "/tls.json"))["data"]
open(sys.argv[1] + "/edge.crt", "wb").write(base64.b64decode(t["tls.crt"]))
open(sys.argv[1] + "/edge.key", "wb").write(base64.b64decode(t["tls.key"]))' "$TESTTMP"
	for r in pve.home.arpa=200 dns.home.arpa=200 traefik.home.arpa=401 "$@"; do routes+=(--route "$r"); done
	bg_start "$PY" "$SIM/edge_https.py" --port "$EDGE_PORT" --cert "$TESTTMP/edge.crt" --key "$TESTTMP/edge.key" \
		"${routes[@]}" --record-dir "$TESTTMP/edge-rec" >>"$TESTTMP/edge.log" 2>&1
	for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$EDGE_PORT/" && return 0; sleep 0.1; done
	cat "$TESTTMP/edge.log" >&2
	fail "the edge stand-in did not start"
}

# The simulators of the lab of dns_edge_init: three Proxmox VE nodes (with
# LAB_PVE_ARGS, an array, if set), the Kubernetes API (with K3s's Traefik
# 34.2.0 and K8S_ARGS...), Technitium installed in dns-01; EDGE_PORT for
# the edge stand-in (lab_edge_serve).
lab_start() { # [K8S_ARGS...]
	mkdir -p "$TESTTMP/tn-installed"
	FB_PIN=local
	SIM_TASK_MS=100 sim_start_all --guest-boot-ms 200 --technitium-dir "$TESTTMP/tn-installed" \
		${LAB_PVE_ARGS[@]+"${LAB_PVE_ARGS[@]}"}
	k8s_start --promote-ms 300 --ready-ms 200 --helm-ms 300 --traefik-chart 34.2.0 "$@"
	technitium_start_installed dns-01 "$TESTTMP/tn-installed/dns-01"
	EDGE_PORT=$(free_port)
}

# The first formation: the members' runs (which must form the cluster) and
# the first node's, whose verification fails while nothing serves the
# edge; $OUT and $RC are the first node's.
lab_form() {
	fb_bg pve2 "${ARGS[@]}"; fb_bg pve3 "${ARGS[@]}"; fb_bg pve1 "${ARGS[@]}" --verify-timeout 2
	fb_wait pve2; fb_formed pve2
	fb_wait pve3; fb_formed pve3
	fb_wait pve1
	grep -q "error: cluster/verify: .*checks did not answer as planned" <<<"$OUT" ||
		{ echo "$OUT" >&2; fail "the first run did not fail in the verification (nothing serves the edge)"; }
}

# The first node's run alone with ARGS and ARGS... -> $OUT, $RC.
lab_run1() {
	fb_bg pve1 "${ARGS[@]}" "$@"
	fb_wait pve1
}

# VALUE (a secret) is nowhere in the runs' output or the report, nor its base64.
lab_secret_absent() { # VALUE WHAT
	grep -rqF -e "$1" -e "$(printf '%s' "$1" | base64 -w0)" "$TESTTMP"/fb-*.out "$TESTTMP/report" &&
		fail "$2 in the output or the report"
	return 0
}
