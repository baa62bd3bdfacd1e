# tests/sim/cluster-lib.sh — sourced by tests/integration/t-cluster-*.sh
# after tests/lib.sh: simulated Proxmox nodes (tests/sim/pve_sim.py) and
# `devopslab firstboot` runs against them.
#
#   sim_init N            manifest with N nodes (pve1 first), state, records
#   sim_start NODE [ARGS] start NODE's simulator (bg_start; killed on exit)
#   sim_stop NODE         kill it (a node that is down)
#   fb NODE [ARGS]        run firstboot for NODE with fast timings; $OUT, $RC
#   fb_bg NODE [ARGS]     same in the background; fb_wait NODE collects it
#   mutations             number of non-GET requests recorded, logins excluded
#   sim_query EXPR        evaluate a Python expression over the state (s)
#   faults JSON           install fault rules (see pve_sim.py)
#   sim_bundle [N=V]...   a signed bundle of the manifest for fb (FB_BUNDLE ...)
# Every recorded request is re-checked against the schema at exit.

SIM=$TOP/tests/sim
SIM_STATE=$TESTTMP/sim-state
export PVE_SIM_RECORD_DIR=$TESTTMP/records
SIM_TASK_MS=${SIM_TASK_MS:-100}
mkdir -p "$SIM_STATE" "$PVE_SIM_RECORD_DIR"
declare -A SIM_PORT SIM_PID FB_PID

sim_schema_check() {
	local recs
	mapfile -t recs < <(find "$TESTTMP" -name '*.jsonl' -not -path '*/k8s-records/*' \
		-not -path '*/technitium-records/*' | sort)
	[ ${#recs[@]} -gt 0 ] || return 0
	"$PY" "$SIM/pve_schema_check.py" --schema "$SHARED/reference/pve-api-schema-9.1.json" "${recs[@]}" ||
		{ echo "FAIL: a request did not pass the schema check" >&2; return 1; }
}

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

sim_init() { # N
	local n=$1 i
	printf 'correct horse battery staple\n' >"$TESTTMP/root.pw"
	{
		echo "version: 1"
		echo "cluster: {name: lab, domain: home.arpa}"
		echo "network: {subnet: 10.0.0.0/24, gateway: 10.0.0.1}"
		echo "nodes:"
		for ((i = 1; i <= n; i++)); do
			echo "  - {name: pve$i, role: $([ $i = 1 ] && echo first || echo member), serial: SN$i, ip: 10.0.0.1$i, disk: {largest_nvme: true}}"
		done
		echo "proxmox: {rootfs: rootfs, root_password: {secret: pw}}"
		echo "assets: [{name: rootfs, file: rootfs.tar.zst}]"
		# SIM_SECRETS: the declared secrets; "pw, cluster_ca_key" puts the
		# cluster-certificate steps into the plan.
		echo "secrets: {names: [${SIM_SECRETS:-pw}]}"
	} >"$TESTTMP/cluster.yaml"
	for ((i = 1; i <= n; i++)); do SIM_PORT[pve$i]=$(free_port); done
	SIM_NODES=$n
}

sim_start() { # NODE [pve_sim args]
	local node=$1 i=${1#pve} try; shift
	# The simulator writes NODE.fp only once its port is bound; a port taken
	# meanwhile by another process (the machine is shared) means a new port.
	for try in 1 2 3; do
		rm -f "$SIM_STATE/$node.fp"
		bg_start "$PY" "$SIM/pve_sim.py" --state "$SIM_STATE" --node "$node" --ip "10.0.0.1$i" \
			--port "${SIM_PORT[$node]}" --password-file "$TESTTMP/root.pw" --task-ms "$SIM_TASK_MS" \
			"$@" >>"$TESTTMP/sim-$node.log" 2>&1
		SIM_PID[$node]=$!
		for _ in $(seq 100); do
			[ -s "$SIM_STATE/$node.fp" ] && kill -0 "${SIM_PID[$node]}" 2>/dev/null && return 0
			kill -0 "${SIM_PID[$node]}" 2>/dev/null || break
			sleep 0.1
		done
		grep -q "Address already in use" "$TESTTMP/sim-$node.log" || break
		SIM_PORT[$node]=$(free_port)
	done
	cat "$TESTTMP/sim-$node.log" >&2
	fail "simulator $node did not start"
}

sim_start_all() { local i; for ((i = 1; i <= SIM_NODES; i++)); do sim_start "pve$i" "$@"; done; }

# A new simulated world (after sim_init): new state, new record directory.
sim_fresh() { # NAME
	local i
	for ((i = 1; i <= SIM_NODES; i++)); do sim_stop "pve$i"; done
	SIM_STATE=$TESTTMP/sim-state-$1
	export PVE_SIM_RECORD_DIR=$TESTTMP/records-$1
	mkdir -p "$SIM_STATE" "$PVE_SIM_RECORD_DIR"
	for ((i = 1; i <= SIM_NODES; i++)); do SIM_PORT[pve$i]=$(free_port); done
}

sim_stop() { [ -n "${SIM_PID[$1]:-}" ] || return 0; kill "${SIM_PID[$1]}" 2>/dev/null || true; wait "${SIM_PID[$1]}" 2>/dev/null || true; }

fp_of() { cat "$SIM_STATE/$1.fp"; }

# A signed bundle of the draft manifest for firstboot to read (after
# sim_init): a placeholder rootfs, the root password sealed as pw plus each
# NAME=VALUE given, a new secret key and signing key under $TESTTMP/in/;
# exports FB_BUNDLE, FB_PUBKEY and FB_SECRET_KEY (fb_cmd then reads it).
sim_bundle() { # [NAME=VALUE]...
	local kv
	mkdir -p "$TESTTMP/in/assets"
	echo "placeholder rootfs" >"$TESTTMP/in/assets/rootfs.tar.zst"
	{
		printf 'pw=%s\n' "$(cat "$TESTTMP/root.pw")"
		for kv in "$@"; do printf '%s\n' "$kv"; done
	} >"$TESTTMP/in/secrets.env"
	openssl rand -hex 32 >"$TESTTMP/in/secret.key"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TESTTMP/in/key.pem" 2>/dev/null
	openssl pkey -in "$TESTTMP/in/key.pem" -pubout -out "$TESTTMP/in/pub.pem"
	"$DEVOPSLAB" bundle create --manifest "$TESTTMP/cluster.yaml" --assets "$TESTTMP/in/assets" \
		--key "$TESTTMP/in/key.pem" --secrets "$TESTTMP/in/secrets.env" --secret-key "$TESTTMP/in/secret.key" \
		-o "$TESTTMP/cluster.bundle" >/dev/null
	export FB_BUNDLE=$TESTTMP/cluster.bundle FB_PUBKEY=$TESTTMP/in/pub.pem FB_SECRET_KEY=$TESTTMP/in/secret.key
}

# The firstboot command line for NODE: every node's endpoint and pin.
fb_cmd() { # NODE [args]
	local node=$1 i; shift
	# FB_BUNDLE: read the manifest and the root password from a signed
	# bundle (FB_PUBKEY, FB_SECRET_KEY) instead of the draft and a file.
	if [ -n "${FB_BUNDLE:-}" ]; then
		FB=("$DEVOPSLAB" firstboot --bundle "$FB_BUNDLE" --pubkey "$FB_PUBKEY" --secret-key "$FB_SECRET_KEY")
	else
		FB=("$DEVOPSLAB" firstboot --manifest "$TESTTMP/cluster.yaml" --password-file "$TESTTMP/root.pw")
	fi
	# the report (and kubeconfig) of each run stays in the test's directory;
	# the status page on a free loopback port (not the node's address); the
	# waits and the request timeout generous (a machine loaded by make
	# check's lanes slows the simulators down: a POST the client gives up on
	# is not retried): they only bound a failure, and a test that wants one
	# to expire passes its own (FB_TIMEOUT_MS: t-cluster-faults's lost answers)
	FB+=(--node "$node" --report-dir "$TESTTMP/report-$node" --status-listen 127.0.0.1:0 --poll-ms 50 --task-poll-ms 50
		--timeout-ms "${FB_TIMEOUT_MS:-10000}"
		--retry-base-ms 20 --attempts 5 --seed 7 --wait-first 120 --wait-quorum 120 --wait-turn 60)
	for ((i = 1; i <= SIM_NODES; i++)); do
		FB+=(--api "pve$i=https://127.0.0.1:${SIM_PORT[pve$i]}")
		# FB_PIN: all (default) pins every node; local trusts the node's own
		# certificate file (--local-cert) and the CA for the others; none: CA only.
		case ${FB_PIN:-all} in
		local) [ "pve$i" = "$node" ] && FB+=(--local-cert "$SIM_STATE/$node.pem") ;;
		all) [ -s "$SIM_STATE/pve$i.fp" ] && FB+=(--fingerprint "pve$i=$(fp_of "pve$i")") ;;
		esac
	done
	FB+=("$@")
}

fb() { # NODE [args] -> $OUT, $RC
	fb_cmd "$@"
	set +e; OUT=$("${FB[@]}" 2>&1); RC=$?; set -e
	echo "$OUT" >>"$TESTTMP/fb-$1.log"
}

fb_bg() { # NODE [args]
	fb_cmd "$@"
	"${FB[@]}" >"$TESTTMP/fb-$1.out" 2>&1 &
	FB_PID[$1]=$!
}

fb_wait() { # NODE -> $OUT, $RC
	set +e; wait "${FB_PID[$1]}"; RC=$?; set -e
	OUT=$(cat "$TESTTMP/fb-$1.out")
}

# The cluster steps of a firstboot run succeeded: exit 0, or 5 when it then
# stopped at a cluster-wide step this build does not implement yet (the first
# node's plan goes on with templates, VMs, ... and "verify").
fb_formed() { # NODE
	[ "$RC" = 0 ] && return 0
	if [ "$RC" = 5 ] && grep -q "not implemented in this build; stopping here" <<<"$OUT" &&
		! grep -q "error: node/$1/cluster/" <<<"$OUT"; then
		return 0
	fi
	echo "$OUT" >&2
	fail "firstboot $1 exited $RC"
}

# Form the cluster with all nodes started at once; every run must succeed.
form_all() {
	local i
	for ((i = 1; i <= SIM_NODES; i++)); do fb_bg "pve$i" "$@"; done
	for ((i = 1; i <= SIM_NODES; i++)); do
		fb_wait "pve$i"
		fb_formed "pve$i"
	done
}

requests() { # [FILTER: python expression over r, the record]
	"$PY" - "$PVE_SIM_RECORD_DIR" "${1:-True}" <<'PYEOF'
import glob, json, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.jsonl"):
    for line in open(f, encoding="utf-8"):
        r = json.loads(line)
        n += bool(eval(sys.argv[2]))
print(n)
PYEOF
}

mutations() { requests 'r["method"] != "GET" and r["path"] != "/api2/json/access/ticket"'; }

sim_query() { # python expression over s (the state)
	"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SIM_STATE/state.json" "$1"
}

faults() { printf '%s\n' "$1" >"$SIM_STATE/faults.json"; }

# One cluster named lab, every node in it, each join and create exactly once.
assert_one_cluster() { # N
	local n=$1
	assert_eq 1 "$(sim_query 'len(s["clusters"])')" "number of clusters"
	assert_eq "$n" "$(sim_query 'len(list(s["clusters"].values())[0]["members"])')" "cluster members"
	assert_eq "$n" "$(sim_query 'sum(1 for v in s["nodes"].values() if v["cluster"] is not None)')" "nodes in a cluster"
	assert_eq 1 "$(sim_query 'sum(1 for t in s["tasks"].values() if t["type"]=="clustercreate" and t["exitstatus"]=="OK")')" "successful creates"
}

# Each NODE serves a custom certificate that verifies against the CA file.
assert_ca_signed() { # CA NODE...
	local ca=$1 n; shift
	for n in "$@"; do
		assert_eq True "$(sim_query "s['nodes']['$n']['custom']")" "$n serves a custom certificate"
		"$PY" - "${SIM_PORT[$n]}" "$ca" <<'PYEOF' || fail "$n's certificate does not verify against the CA"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5) as s:
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        assert t.getpeercert()["subject"]
PYEOF
	done
}

assert_joins() { # N: successful joins
	assert_eq "$1" "$(sim_query 'sum(1 for t in s["tasks"].values() if t["type"]=="clusterjoin" and t["exitstatus"]=="OK")')" "successful joins"
}

# Each test ends with: sim_schema_check || fail ...

# Quorum kept: every Proxmox request record (each node's cluster after the
# request) shows a quorate cluster — tests/sim/quorum_check.py. With
# k3s-lib.sh, assert_quorum_kept_k8s checks the Kubernetes records too.
assert_pve_quorum_kept() { # [--since EPOCH]
	local out
	out=$("$PY" "$SIM/quorum_check.py" "$@" "$PVE_SIM_RECORD_DIR"/*.jsonl 2>&1) ||
		{ echo "$out" >&2; fail "quorum was not kept"; }
	echo "$out"
}

# A backup job run as pvescheduler would (pve_sim_jobs.py): $OUT the lines
# it printed (backup, skipped, failed, pruned).
sim_run_backup_job() { # ID [EPOCH]
	OUT=$("$PY" "$SIM/pve_sim_jobs.py" --state "$SIM_STATE" --run-job "$1" ${2:+--time "$2"} 2>&1) ||
		{ echo "$OUT" >&2; fail "backup job $1 did not run"; }
}
