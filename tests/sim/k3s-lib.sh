# tests/sim/k3s-lib.sh — sourced by the K3s tests after cluster-lib.sh and
# guests-lib.sh: the Kubernetes API simulator (k8s_sim.py) beside the
# simulated Proxmox nodes, and a manifest with K3s in it.
#
#   k3s_init             sim_init 3 and a manifest: a template per node,
#                        3 K3s servers (one per node), 2 agents, the air-gap
#                        assets in $A, the cluster CA ($TESTTMP/ca.{pem,key})
#                        and the token ($TESTTMP/k3s.token); K3S_VIP=1 adds
#                        api_vip 10.0.0.5 and kube-vip; K3S_DISABLE: the
#                        k3s.disable list (default "traefik"; empty: none)
#   k8s_start [ARGS]     start k8s_sim.py (killed on exit); $K8S_URL
#   k3s_one_server [NAME=ARCHIVE]...  the Proxmox simulator's state as it is
#                        once firstboot installed K3s in one server
#                        (k3s-server-01, 10.0.0.31, traefik disabled, tls-san
#                        127.0.0.1): its CAs made, $TESTTMP/{server,client}-ca.{crt,key},
#                        the eleven CA files, each ARCHIVE in its static
#                        directory as charts/NAME — for the tests of the
#                        Kubernetes simulator alone (no Proxmox simulator runs)
#   k3s_admin_cert       after k3s_one_server: the admin's client certificate
#                        (O=system:masters), as K3s issues it, in
#                        $TESTTMP/admin.{crt,key}
#   k3s_args             K3S=(firstboot's options for the K3s tests: assets, CA,
#                        token, the simulator's URL, report directory)
#   k8s_query EXPR       a Python expression over its state (st)
#   k8s_ready_nodes      the Ready nodes, sorted, as the API lists them
#   k8s_voting           the voting etcd members, sorted
#   k8s_join_errors      {vm: error} of the K3s starts that failed
#   k8s_requests [F]     Kubernetes requests recorded (F: over r)
#   k8s_mutations        of them, the ones that are not GET
#   k3s_guest_files DIR  each K3s guest's files (written, or from its payload), into DIR/VM/...
#   k3s_guest_mode VM P  a file's mode in a guest
#   k3s_install_order    the VMs in the order K3s was installed in them
#   k3s_recreate_vm VM   the VM as if destroyed and cloned again (new
#                        machine identity, no files, no K3s)
#   k3s_stop_vm VM       the VM stopped (its K3s with it)
#   k8s_hold NODE, k8s_release NODE   keep NODE from becoming Ready, and let it
#   k3s_kubeconfig_pems  the report's kubeconfig's CA, client certificate and
#                        key into $TESTTMP/kc-{ca,cert,key}.pem
#   kget PATH            GET PATH from the API with those (curl)
#   k3s_rerun_converged  firstboot on pve1 once more: no error, and no mutating
#                        request to either API

export K8S_SIM_RECORD_DIR=$TESTTMP/k8s-records
mkdir -p "$K8S_SIM_RECORD_DIR"

k3s_init() {
	SIM_SECRETS="pw, k3s_token, cluster_ca_key" sim_init 3
	A=$TESTTMP/assets
	mkdir -p "$A/k3s"
	qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
	printf '#!/bin/sh\necho k3s stand-in\n' >"$A/k3s/k3s"
	printf '#!/bin/sh\necho install stand-in\n' >"$A/k3s/install.sh"
	printf 'images\n' >"$A/k3s/k3s-airgap-images-amd64.tar.zst"
	printf 'kube-vip image\n' >"$A/k3s/kube-vip.tar"
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-keyout "$TESTTMP/ca.key" -out "$TESTTMP/ca.pem" -subj "/O=DevOpsLab/CN=test cluster CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null)
	printf 'k3s-secret-token\n' >"$TESTTMP/k3s.token"
	"$PY" - "$TESTTMP/cluster.yaml" "${K3S_VIP:-}" "${K3S_DISABLE-traefik}" <<-'PYEOF'
	import sys
	p, vip, disable = sys.argv[1], sys.argv[2], sys.argv[3]
	s = open(p).read()
	s = s.replace("assets: [{name: rootfs, file: rootfs.tar.zst}]",
	              "assets:\n"
	              "  - {name: rootfs, file: rootfs.tar.zst}\n"
	              "  - {name: cloud, file: cloud.qcow2}\n"
	              "  - {name: k3s-bin, file: k3s/k3s}\n"
	              "  - {name: k3s-install, file: k3s/install.sh}\n"
	              "  - {name: k3s-images, file: k3s/k3s-airgap-images-amd64.tar.zst}\n"
	              "  - {name: kube-vip, file: k3s/kube-vip.tar}")
	s += """templates:
	  - {name: tpl, vmid: 9000, image: cloud, target_node: [pve1, pve2, pve3]}
	vms:
	  - id: srv
	    name: "k3s-server-{n:02}"
	    count: 3
	    vmid: 201
	    target_node: [pve1, pve2, pve3]
	    clone: tpl
	    full_clone: false
	    memory: 2048
	    agent: 1
	    disk: {size: 8G}
	    ipconfig0: "ip=10.0.0.31/24,gw=10.0.0.1"
	  - id: wrk
	    name: "k3s-worker-{n:02}"
	    count: 2
	    vmid: 211
	    target_node: [pve1, pve2]
	    clone: tpl
	    full_clone: false
	    memory: 2048
	    agent: 1
	    disk: {size: 8G}
	    ipconfig0: "ip=10.0.0.21/24,gw=10.0.0.1"
	k3s:
	  token: {secret: k3s_token}
	  servers: [srv]
	  agents: [wrk]
	  ha: true
	  disable: [traefik]
	  airgap: {binary: k3s-bin, images: k3s-images, install_script: k3s-install}
	"""
	s = s.replace("  disable: [traefik]\n", "  disable: [%s]\n" % disable if disable else "")
	if vip:
	    s += """  api_vip: 10.0.0.5
	  kube_vip: {image: kube-vip, ref: "ghcr.io/kube-vip/kube-vip:v0.9.2"}
	"""
	open(p, "w").write(s)
	PYEOF
	"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
		{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
}

k8s_start() { # [k8s_sim args]
	local try
	for try in 1 2 3; do
		K8S_PORT=$(free_port)
		bg_start "$PY" "$SIM/k8s_sim.py" --port "$K8S_PORT" --pve-state "$SIM_STATE" "$@" \
			>>"$TESTTMP/sim-k8s.log" 2>&1
		K8S_PID=$!
		for _ in $(seq 100); do
			grep -q "listening on https://127.0.0.1:$K8S_PORT" "$TESTTMP/sim-k8s.log" 2>/dev/null &&
				kill -0 "$K8S_PID" 2>/dev/null && { K8S_URL=https://127.0.0.1:$K8S_PORT; return 0; }
			kill -0 "$K8S_PID" 2>/dev/null || break
			sleep 0.1
		done
		grep -q "Address already in use" "$TESTTMP/sim-k8s.log" || break
	done
	cat "$TESTTMP/sim-k8s.log" >&2
	fail "the Kubernetes API simulator did not start"
}

k3s_one_server() { # [NAME=ARCHIVE]...
	local ca
	for ca in server-ca client-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
			-keyout "$TESTTMP/$ca.key" -out "$TESTTMP/$ca.crt" -subj "/CN=$ca" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null ||
			fail "making $ca"
	done
	"$PY" - "$TESTTMP" "$SIM_STATE/state.json" "$@" <<'PYEOF' || fail "writing the K3s server's state"
import base64, hashlib, json, sys, time, uuid
t, out = sys.argv[1], sys.argv[2]
TLS = "/var/lib/rancher/k3s/server/tls/"
files = {}
for f in ("server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key"):
    files[TLS + f] = {"mode": "0600", "data": open("%s/%s" % (t, f)).read()}
for f in ("request-header-ca.crt", "request-header-ca.key", "etcd/server-ca.crt", "etcd/server-ca.key",
          "etcd/peer-ca.crt", "etcd/peer-ca.key", "service.key"):
    files[TLS + f] = {"mode": "0600", "data": "placeholder %s\n" % f}
for arg in sys.argv[3:]:
    name, archive = arg.split("=", 1)
    chart = open(archive, "rb").read()
    files["/var/lib/rancher/k3s/server/static/charts/" + name] = {
        "mode": "0644", "b64": base64.b64encode(chart).decode(), "sha256": hashlib.sha256(chart).hexdigest(),
        "size": len(chart)}
ca_hash = hashlib.sha256(files[TLS + "server-ca.crt"]["data"].encode()).hexdigest()
ident = str(uuid.uuid4())
config = ("node-name: k3s-server-01\nnode-ip: 10.0.0.31\ntoken: K10%s::server:fixture-secret\n"
          "disable: [traefik]\ntls-san: [127.0.0.1]\n" % ca_hash)
now = time.time() - 5
vm = {"conf": {"name": "k3s-server-01", "smbios1": "uuid=%s" % ident, "agent": "1"}, "running": True,
      "started": now - 5, "guestfs": files,
      "k3s": {"unit": "k3s", "role": "server", "started": now, "identity": ident, "config": config}}
json.dump({"guest": {"vms": {"pve1": {"201": vm}}}}, open(out, "w"))
PYEOF
}

k3s_admin_cert() {
	{
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TESTTMP/admin.key" \
			-out "$TESTTMP/admin.csr" -subj "/O=system:masters/CN=system:admin" &&
			openssl x509 -req -in "$TESTTMP/admin.csr" -CA "$TESTTMP/client-ca.crt" -CAkey "$TESTTMP/client-ca.key" \
				-CAcreateserial -days 30 -out "$TESTTMP/admin.crt" -extfile <(echo "extendedKeyUsage=clientAuth")
	} 2>/dev/null || fail "issuing the admin certificate"
}

k3s_args() {
	K3S=(--assets "$A" --boot-timeout 60 --ca "$TESTTMP/ca.pem" --ca-key "$TESTTMP/ca.key"
		--k3s-token-file "$TESTTMP/k3s.token" --k3s-api "$K8S_URL" --report-dir "$TESTTMP/report")
}

k8s_query() { # python expression over st (k8s.json)
	"$PY" - "$SIM_STATE/k8s.json" "$1" <<'PYEOF'
import json, sys
st = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))
PYEOF
}

# Through the API itself, with the admin certificate of the kubeconfig
# (the test writes kc-*.pem) — or, before that, from the state.
k8s_ready_nodes() {
	"$PY" - "$SIM_STATE" <<'PYEOF'
import json, os, sys, time
sys.path.insert(0, os.environ["TOP"] + "/tests/sim")
import k8s_sim
d = sys.argv[1]
st = json.load(open(os.path.join(d, "k8s.json")))
pve = json.load(open(os.path.join(d, "state.json")))
class A: ready_ms = 0; never_ready = []
live = {g[0]: g for g in k8s_sim.guests(pve)}
now = time.time()
print(sorted(n for n in st["nodes"]
             if k8s_sim.node_obj(st, live, n, now, A)["status"]["conditions"][0]["status"] == "True"))
PYEOF
}
k8s_voting() { k8s_query 'sorted(m for m, v in st["members"].items() if v["voting_at"] <= __import__("time").time())'; }
k8s_join_errors() { k8s_query '{o["vm"]: o["error"] for o in st["starts"].values() if o["error"]}'; }

k8s_requests() { # [FILTER over r]
	"$PY" - "$K8S_SIM_RECORD_DIR" "${1:-True}" <<'PYEOF'
import glob, json, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.jsonl"):
    for line in open(f):
        r = json.loads(line)
        n += bool(eval(sys.argv[2]))
print(n)
PYEOF
}
k8s_mutations() { k8s_requests 'r["method"] != "GET"'; }

k3s_guest_files() { # DIR
	"$PY" - "$SIM_STATE/state.json" "$1" <<'PYEOF'
import base64, json, os, sys
s = json.load(open(sys.argv[1]))
for node, d in s["guest"]["vms"].items():
    for vmid, vm in d.items():
        for path, f in (vm.get("guestfs") or {}).items():
            p = os.path.join(sys.argv[2], vm["conf"]["name"], path.lstrip("/"))
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if "b64" in f:  # a payload file (pve_sim_guests.py), bytes
                open(p, "wb").write(base64.b64decode(f["b64"]))
            elif "data" in f:
                open(p, "w").write(f["data"])
PYEOF
}

k3s_guest_mode() { # VM PATH
	sim_query "[vm['guestfs']['$2']['mode'] for d in s['guest']['vms'].values() for vm in d.values() if vm['conf'].get('name') == '$1'][0]"
}

k3s_install_order() {
	sim_query "[v['conf']['name'] for v in sorted((vm for d in s['guest']['vms'].values() for vm in d.values() if vm.get('k3s')), key=lambda vm: vm['k3s']['started'])]"
}

k3s_recreate_vm() { # VM
	sim_edit "
import uuid
for vms_ in s['guest']['vms'].values():
    for vm in vms_.values():
        if vm['conf'].get('name') == '$1':
            vm['conf']['smbios1'] = 'uuid=%s' % uuid.uuid4()
            vm.pop('k3s', None); vm.pop('guestfs', None); vm['agent_log'] = []
"
}

k3s_stop_vm() { # VM
	sim_edit "
for vms_ in s['guest']['vms'].values():
    for vm in vms_.values():
        if vm['conf'].get('name') == '$1':
            vm['running'] = False
"
}

k8s_edit() { # python statements over st (k8s.json), under the simulators' lock
	"$PY" - "$SIM_STATE" "$1" <<'PYEOF'
import fcntl, json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "lock"), "a") as lk:
    fcntl.flock(lk, fcntl.LOCK_EX)
    p = os.path.join(d, "k8s.json")
    st = json.load(open(p)) if os.path.exists(p) else {"cluster": None, "starts": {}, "nodes": {}, "secrets": {},
                                                      "members": {}, "deleted": []}
    exec(sys.argv[2])
    json.dump(st, open(p + ".tmp", "w"))
    os.rename(p + ".tmp", p)
PYEOF
}
k8s_hold() { k8s_edit "st.setdefault('hold', []).append('$1')"; }
k8s_release() { k8s_edit "st['hold'] = [n for n in st.get('hold', []) if n != '$1']"; }

k3s_kubeconfig_pems() {
	"$PY" - "$TESTTMP/report/kubeconfig" "$TESTTMP" <<'PYEOF' || fail "kubeconfig"
import base64, sys, yaml
k = yaml.safe_load(open(sys.argv[1]))
u = k["users"][0]["user"]
for data, f in ((k["clusters"][0]["cluster"]["certificate-authority-data"], "kc-ca.pem"),
                (u["client-certificate-data"], "kc-cert.pem"), (u["client-key-data"], "kc-key.pem")):
    open(sys.argv[2] + "/" + f, "wb").write(base64.b64decode(data))
PYEOF
}

kget() { # PATH
	curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
		"$K8S_URL$1"
}

k3s_rerun_converged() {
	local before kbefore
	before=$(mutations) kbefore=$(k8s_mutations)
	fb pve1 "${K3S[@]}"
	fb_formed pve1
	grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the re-run reported an error"; }
	assert_eq "$before" "$(mutations)" "mutating Proxmox requests of the re-run"
	assert_eq "$kbefore" "$(k8s_mutations)" "mutating Kubernetes requests of the re-run"
}

# Quorum kept after every request, Proxmox's and etcd's, and etcd never
# more than MAX members (tests/sim/quorum_check.py; 0: no limit).
assert_quorum_kept_k8s() { # MAX [--since EPOCH]
	local max=$1 out; shift
	out=$("$PY" "$SIM/quorum_check.py" --max-etcd "$max" "$@" "$PVE_SIM_RECORD_DIR"/*.jsonl \
		"$K8S_SIM_RECORD_DIR"/*.jsonl 2>&1) || { echo "$out" >&2; fail "quorum was not kept"; }
	echo "$out"
}
