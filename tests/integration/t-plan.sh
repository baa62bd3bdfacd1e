#!/bin/bash
# `devopslab plan`: golden text and JSON for examples/homelab.yaml (byte for
# byte), the JSON's structure, --node filtering, parameter hashes that move
# exactly when the manifest changes, and the usage/input errors.
# UPDATE_GOLDEN=1 rewrites tests/plan/homelab.{txt,json} (review the diff!).
. "$TOP/tests/lib.sh"

ex=$TOP/examples/homelab.yaml
golden=$TOP/tests/plan

"$DEVOPSLAB" plan --manifest "$ex" >"$TESTTMP/plan.txt" 2>"$TESTTMP/plan.err"
"$DEVOPSLAB" plan --manifest "$ex" --json >"$TESTTMP/plan.json" 2>/dev/null
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
	cp "$TESTTMP/plan.txt" "$golden/homelab.txt"
	cp "$TESTTMP/plan.json" "$golden/homelab.json"
fi
diff -u "$golden/homelab.txt" "$TESTTMP/plan.txt" || fail "text plan differs from tests/plan/homelab.txt"
diff -u "$golden/homelab.json" "$TESTTMP/plan.json" || fail "JSON plan differs from tests/plan/homelab.json"
# Warnings go to stderr in validate's format, never into the plan.
assert_contains "$TESTTMP/plan.err" "homelab.yaml:11:11: warning: cluster.domain:"

# Structure, checked independently of the golden file.
$PY - "$TESTTMP/plan.json" "$ex" <<'PYEOF'
import json, sys, yaml
plan = json.load(open(sys.argv[1]))
man = yaml.safe_load(open(sys.argv[2]))
steps = plan["steps"]
def fail(msg):
    sys.exit("FAIL: " + msg)
def kinds(k):
    return [s for s in steps if s["kind"] == k]
if plan["n_steps"] != len(steps): fail("n_steps")
if [s["index"] for s in steps] != list(range(1, len(steps) + 1)): fail("indexes not 1..n")
ids = [s["id"] for s in steps]
if len(set(ids)) != len(ids): fail("duplicate ids")
# VMs: 2 workers + 3 servers + 2 dns, each with its parameters.
vms = kinds("vm")
if len(vms) != 7: fail("expected 7 VMs, got %d" % len(vms))
names = [v["params"]["name"] for v in vms]
want = ["devops-k3s-worker-01", "devops-k3s-worker-02", "devops-k3s-server-01", "devops-k3s-server-02",
        "devops-k3s-server-03", "devops-dns-01", "devops-dns-02"]
if names != want: fail("VM names %s" % names)
w2 = vms[1]["params"]
if (w2["vmid"], w2["node"], w2["ip"], w2["memory_mib"], w2["cores"], w2["disk"]["size_bytes"]) != \
        (202, "devops-node-01", "10.0.10.22/24", 2048, 2, 20 << 30):
    fail("worker-02 params %s" % w2)
if [v["params"]["node"] for v in vms[2:5]] != ["devops-node-01", "devops-node-02", "devops-node-03"]:
    fail("servers are not round-robin over the nodes")
if [v["id"] for v in vms] != ["cluster/vm/" + n for n in want]: fail("VM ids are not by name")
# Every node: the same 16 install steps, in order, ids keyed by node name.
nodes = [n["name"] for n in man["nodes"]]
for n in nodes:
    inst = [s for s in steps if s["phase"] == "install" and s["node"] == n]
    if len(inst) != 16: fail("%s has %d install steps" % (n, len(inst)))
    if not all(s["id"].startswith("node/%s/" % n) for s in inst): fail("install ids of " + n)
    if inst[0]["kind"] != "bundle-verify" or inst[-1]["kind"] != "firstboot-install": fail("install order")
# All install steps come before all first-boot steps.
phases = [s["phase"] for s in steps]
if phases != sorted(phases, key=lambda p: p != "install"): fail("phases interleave")
# Cluster formation, node by node as firstboot runs it (docs/pve.md): the
# first node certs/create/quorum, then each member join/certs/quorum.
form = [(s["kind"], s["node"]) for s in steps if s["kind"].startswith("cluster-")]
want = [("cluster-certs", "devops-node-01"), ("cluster-create", "devops-node-01"), ("cluster-quorum", "devops-node-01")]
for n in ("devops-node-02", "devops-node-03"):
    want += [("cluster-join", n), ("cluster-certs", n), ("cluster-quorum", n)]
if form != want: fail("cluster formation order %s" % form)
if kinds("cluster-certs")[0]["params"]["ca_key"] != {"secret": "cluster_ca_key"}: fail("certs CA key")
# K3s: one init (embedded etcd), two server joins, two agents; all after the VMs.
init = kinds("k3s-server-init")
if len(init) != 1 or init[0]["params"]["datastore"] != "embedded-etcd": fail("k3s init")
if len(kinds("k3s-server-join")) != 2 or len(kinds("k3s-agent")) != 2: fail("k3s joins")
if ids.index(init[0]["id"]) < ids.index(vms[-1]["id"]): fail("k3s before the VMs exist")
# Joins and agents register through the API VIP, which kube-vip serves:
# deployed by the first server, its image from the bundle.
if any(s["params"]["server"] != "https://10.0.10.5:6443" for s in kinds("k3s-server-join") + kinds("k3s-agent")):
    fail("join/agent server url")
if init[0]["params"]["kube_vip"] != {"ref": "ghcr.io/kube-vip/kube-vip:v0.9.2", "interface": "eth0",
                                     "address": "10.0.10.5"}:
    fail("kube_vip %s" % init[0]["params"]["kube_vip"])
if any("kube_vip" in s["params"] for s in kinds("k3s-server-join") + kinds("k3s-agent")): fail("kube_vip on a join")
# Every K3s step names its node, the networks (defaults), what is disabled
# and the API address; servers also the names of their certificate.
for s in init + kinds("k3s-server-join") + kinds("k3s-agent"):
    p, keys = s["params"], list(s["params"])
    want = ["node_name", "cluster_cidr", "service_cidr", "disable", "api_vip"]
    if s["kind"] != "k3s-agent": want.append("tls_san")
    if keys[keys.index("version") + 1:keys.index("version") + 1 + len(want)] != want: fail("k3s params %s" % keys)
    if (p["node_name"], p["cluster_cidr"], p["service_cidr"], p["disable"], p["api_vip"]) != \
            (p["vm"], "10.42.0.0/16", "10.43.0.0/16", ["servicelb"], "10.0.10.5"):
        fail("k3s params of %s" % p["vm"])
    if s["kind"] != "k3s-agent" and p["tls_san"] != ["10.0.10.5", p["ip"]]: fail("tls_san of %s" % p["vm"])
    if p["token"] != {"secret": "k3s_token"}: fail("k3s token")
# The air-gap payload every K3s VM gets through the vm step's files; the
# servers also kube-vip's image, in the directory K3s imports images from.
k3s_payload = [
    {"asset": "k3s-binary", "file": "k3s", "path": "/usr/local/bin/k3s", "mode": "0755"},
    {"asset": "k3s-images", "file": "k3s-airgap-images-amd64.tar.zst",
     "path": "/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst", "mode": "0644"},
    {"asset": "k3s-install", "file": "install.sh", "path": "/usr/local/lib/devopslab/k3s-install.sh", "mode": "0755"},
]
server_payload = k3s_payload + [
    {"asset": "kube-vip", "file": "kube-vip-image.tar", "path": "/var/lib/rancher/k3s/agent/images/kube-vip-image.tar",
     "mode": "0644"},
]
dns_payload = [
    {"asset": "technitium", "file": "DnsServerPortable.tar.gz",
     "path": "/usr/local/lib/devopslab/technitium/DnsServerPortable.tar.gz", "mode": "0644"},
    {"asset": "aspnetcore-runtime", "file": "aspnetcore-runtime-8.0-linux-x64.tar.gz",
     "path": "/usr/local/lib/devopslab/technitium/aspnetcore-runtime.tar.gz", "mode": "0644"},
]
# DNS: zone, wildcard to the edge, per-node and per-VM records, forwarders
# on both servers, secondary fed by a TSIG-signed transfer.
recs = {s["params"]["name"]: s["params"]["value"] for s in kinds("dns-record")}
if recs.get("*.homelab.local") != "10.0.10.30": fail("wildcard record %s" % recs)
for n in man["nodes"]:
    if recs.get(n["name"] + ".homelab.local") != n["ip"]: fail("node record " + n["name"])
for v in vms:
    ip = v["params"]["ipconfig0"].split("ip=")[1].split("/")[0] if "ipconfig0" in v["params"] else None
    if recs.get(v["params"]["name"] + ".homelab.local") is None: fail("VM record " + v["params"]["name"])
if len(kinds("dns-forwarders")[0]["params"]["forwarders"]) != 2: fail("forwarders")
if kinds("dns-forwarders")[0]["params"]["servers"] != ["devops-dns-01", "devops-dns-02"]: fail("forwarders' servers")
srv = {s["params"]["vm"]: s["params"] for s in kinds("dns-server")}
if srv["devops-dns-01"]["recursion_acl"] != ["10.0.10.0/24"] or srv["devops-dns-02"]["tsig_key"] != "devopslab-xfr":
    fail("dns-server params %s" % srv)
if srv["devops-dns-01"]["admin_password"] != {"secret": "dns_admin_password"}: fail("DNS password by name")
if kinds("dns-zone")[0]["params"]["secondary_ip"] != "10.0.10.42": fail("zone transfer to the secondary")
if kinds("dns-secondary")[0]["params"]["secondary"] != "devops-dns-02": fail("secondary")
if kinds("edge-certs")[0]["params"]["domains"] != ["*.homelab.local", "homelab.local"]: fail("edge domains")
# Templates: one copy per node, VMIDs 9000 + position; each VM clones the
# copy on its own node (node-local storage), with a locally administered
# unicast MAC; storage counts each node's disks.
tpl = [(t["id"], t["params"]["node"], t["params"]["vmid"]) for t in kinds("template")]
want_tpl = [("cluster/template/ubuntu-2204-cloudimage-template/" + n, n, 9000 + i) for i, n in enumerate(nodes)]
if tpl != want_tpl: fail("template copies %s" % tpl)
copy = {n: vmid for _, n, vmid in tpl}
need = {}
for v in vms:
    p = v["params"]
    if p["template_vmid"] != copy[p["node"]]: fail("%s clones %s" % (p["name"], p["template_vmid"]))
    octets = [int(x, 16) for x in p["mac"].split(":")]
    if len(octets) != 6 or octets[0] & 3 != 2: fail("%s: MAC %s" % (p["name"], p["mac"]))
    if (p["full"], p["ciuser"], p["sshkeys"]) != (True, None, []): fail("%s guest params" % p["name"])
    if p["files"] != {"k3s_server": server_payload, "k3s_worker": k3s_payload,
                      "dns": dns_payload}.get(p["group"], []):
        fail("%s files %s" % (p["name"], p["files"]))
    if (p["nameserver"], p["searchdomain"]) != (["10.0.10.1"], "homelab.local"): fail("%s DNS" % p["name"])
    need[p["node"]] = need.get(p["node"], 0) + p["disk"]["size_bytes"]
if len({v["params"]["mac"] for v in vms}) != len(vms): fail("MACs not unique")
st = kinds("storage")
if len(st) != 1 or st[0]["params"]["nodes"] != nodes or st[0]["params"]["bytes"] != need: fail("storage %s" % st)
if not ids.index(st[0]["id"]) < ids.index(tpl[0][0]) < ids.index(tpl[-1][0]) < ids.index(vms[0]["id"]):
    fail("order: storage, templates, VMs")
if [s["kind"] for s in steps[-2:]] != ["verify", "dns-handover"]: fail("the verification, then the DNS hand-over, are not last")
ho = steps[-1]["params"]
if (ho["servers"], ho["search"], ho["nodes"]) != (["10.0.10.41", "10.0.10.42", "10.0.10.1"], "homelab.local",
                                                  [n["name"] for n in man["nodes"]]):
    fail("hand-over %s" % ho)
# Secrets only by name.
if kinds("config-users")[0]["params"]["password"] != {"secret": "root_password"}: fail("secret ref")
for s in steps:
    if len(s["params_hash"]) != 64: fail("hash of " + s["id"])
PYEOF

# --node: exactly that node's steps (plus the cluster-wide ones on the first
# node), in the same order and with the same hashes as in the full plan.
for n in devops-node-01 devops-node-02 devops-node-03; do
	"$DEVOPSLAB" plan --manifest "$ex" --node "$n" --json >"$TESTTMP/$n.json" 2>/dev/null
done
$PY - "$TESTTMP" <<'PYEOF'
import json, sys
d = sys.argv[1]
full = json.load(open(d + "/plan.json"))["steps"]
first = "devops-node-01"
union = []
for n in ["devops-node-01", "devops-node-02", "devops-node-03"]:
    p = json.load(open("%s/%s.json" % (d, n)))
    if p["node"] != n: sys.exit("FAIL: node field")
    want = [(s["id"], s["params_hash"]) for s in full if s["node"] == n or (s["node"] is None and n == first)]
    got = [(s["id"], s["params_hash"]) for s in p["steps"]]
    if got != want: sys.exit("FAIL: --node %s: %s" % (n, got[:3]))
    union += [s["id"] for s in p["steps"]]
if sorted(union) != sorted(s["id"] for s in full): sys.exit("FAIL: node plans do not partition the full plan")
PYEOF
"$DEVOPSLAB" plan --manifest "$ex" --node devops-node-02 >"$TESTTMP/n2.txt" 2>/dev/null
assert_eq "Plan for cluster devopslab, node devops-node-02: 19 steps" "$(head -1 "$TESTTMP/n2.txt")" "header"
assert_eq "  17. Joining cluster devopslab" "$(grep -E '^ +17\.' "$TESTTMP/n2.txt")" "join of node 02"
assert_eq "  19. Waiting for quorum (3 votes)" "$(grep -E '^ +19\.' "$TESTTMP/n2.txt")" "last step of node 02"

# A changed manifest changes the hash of exactly the steps it concerns.
sed 's/^    memory: 2048$/    memory: 3072/; 0,/memory: 3072/!s/memory: 3072/memory: 2048/' "$ex" >"$TESTTMP/changed.yaml"
grep -c 'memory: 3072' "$TESTTMP/changed.yaml" | grep -qx 1 || fail "test setup: sed did not change one VM group"
"$DEVOPSLAB" plan --manifest "$TESTTMP/changed.yaml" --json >"$TESTTMP/changed.json" 2>/dev/null
$PY - "$TESTTMP/plan.json" "$TESTTMP/changed.json" <<'PYEOF'
import json, sys
a = {s["id"]: s["params_hash"] for s in json.load(open(sys.argv[1]))["steps"]}
b = {s["id"]: s["params_hash"] for s in json.load(open(sys.argv[2]))["steps"]}
if a.keys() != b.keys(): sys.exit("FAIL: ids changed")
diff = sorted(k for k in a if a[k] != b[k])
if diff != ["cluster/vm/devops-k3s-worker-01", "cluster/vm/devops-k3s-worker-02"]:
    sys.exit("FAIL: changed hashes: %s" % diff)
PYEOF

# From a signed bundle: verified first, then the same plan; a bundle signed
# by another key is refused (exit 4) before anything is parsed; the verified
# copy lives in a private scratch directory that does not outlive the run.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TESTTMP/key.pem" 2>/dev/null
openssl pkey -in "$TESTTMP/key.pem" -pubout -out "$TESTTMP/pub.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TESTTMP/other.pem" 2>/dev/null
openssl pkey -in "$TESTTMP/other.pem" -pubout -out "$TESTTMP/other.pub"
mkdir "$TESTTMP/scratch"
"$TOP/scripts/example-inputs.sh" "$ex" "$TESTTMP/in" # placeholder assets, secrets and their key
"$DEVOPSLAB" bundle create --manifest "$ex" --assets "$TESTTMP/in/assets" --key "$TESTTMP/key.pem" \
	--secrets "$TESTTMP/in/secrets.env" --secret-key "$TESTTMP/in/secret.key" -o "$TESTTMP/b.bundle" >/dev/null
TMPDIR=$TESTTMP/scratch "$DEVOPSLAB" plan --bundle "$TESTTMP/b.bundle" --pubkey "$TESTTMP/pub.pem" \
	>"$TESTTMP/bundle.txt" 2>"$TESTTMP/bundle.err"
diff -u "$golden/homelab.txt" "$TESTTMP/bundle.txt" || fail "plan from the bundle differs"
assert_contains "$TESTTMP/bundle.err" "$TESTTMP/b.bundle:manifest.yaml:11:11: warning:"
assert_eq "" "$(ls -A "$TESTTMP/scratch")" "scratch directory left behind"
TMPDIR=$TESTTMP/scratch expect_exit 4 "$DEVOPSLAB" plan --bundle "$TESTTMP/b.bundle" --pubkey "$TESTTMP/other.pub"
assert_contains "$OUT" "failed verification"
assert_eq "" "$(ls -A "$TESTTMP/scratch")" "scratch directory left behind after a refusal"
expect_exit 2 "$DEVOPSLAB" plan --bundle "$TESTTMP/b.bundle" --pubkey "$TESTTMP/missing.pem"

# Errors.
expect_exit 2 "$DEVOPSLAB" plan --manifest "$ex" --node devops-node-09
assert_contains "$OUT" 'no node "devops-node-09" in the manifest'
printf 'version: 1\ncluster: {name: x}\nnodes: 7\n' >"$TESTTMP/bad.yaml"
expect_exit 2 "$DEVOPSLAB" plan --manifest "$TESTTMP/bad.yaml"
assert_contains "$OUT" "$TESTTMP/bad.yaml:3:"
assert_contains "$OUT" ": error: "
expect_exit 2 "$DEVOPSLAB" plan --manifest "$TESTTMP/missing.yaml"
expect_exit 2 "$DEVOPSLAB" plan
expect_exit 2 "$DEVOPSLAB" plan --bundle b.tar
assert_contains "$OUT" "--bundle needs --pubkey"
expect_exit 2 "$DEVOPSLAB" plan --manifest "$ex" --bundle b.tar --pubkey k.pem
expect_exit 2 "$DEVOPSLAB" plan --manifest "$ex" extra
expect_exit 0 "$DEVOPSLAB" plan --help
assert_contains "$OUT" "--node NAME"

# --recover: the plan of rebuilding devops-node-02 (docs/operations.md):
# its install, its join, then every cluster-wide step, run by it; the steps
# that bring back what lived on it say how.
"$DEVOPSLAB" plan --manifest "$ex" --recover devops-node-02 >"$TESTTMP/rec.txt" 2>/dev/null ||
	fail "plan --recover"
"$DEVOPSLAB" plan --manifest "$ex" --recover devops-node-02 --json >"$TESTTMP/rec.json" 2>/dev/null ||
	fail "plan --recover --json"
assert_contains "$TESTTMP/rec.txt" "Recovery plan for node devops-node-02 of cluster devopslab"
assert_contains "$TESTTMP/rec.txt" "firstboot cluster-wide (run by devops-node-02)"
$PY - "$TESTTMP/rec.json" "$TESTTMP/plan.json" <<'PYEOF'
import json, sys
rec, full = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def fail(msg):
    sys.exit("FAIL: " + msg)
if rec.get("recover") is not True or rec["node"] != "devops-node-02": fail("header %s" % rec)
steps = {s["id"]: s for s in rec["steps"]}
# its own steps and every cluster-wide one; no other node's
want = [s["id"] for s in full["steps"] if s["node"] in (None, "devops-node-02")]
if [s["id"] for s in rec["steps"]] != want: fail("steps are not node-02's and the cluster-wide ones, in order")
notes = {i: s["recover"] for i, s in steps.items() if s["recover"]}
def note(i, *words):
    if i not in notes: fail("no recovery note on " + i)
    for w in words:
        if w not in notes[i]: fail("%s: %r lacks %r" % (i, notes[i], w))
note("node/devops-node-02/cluster/join", "pvecm delnode", "never a second cluster")
note("cluster/template/ubuntu-2204-cloudimage-template/devops-node-02", "made anew")
note("cluster/vm/devops-dns-01", "newest backup on storage local", "else cloned anew")
note("cluster/vm/devops-k3s-server-02", "never restored from a backup")
note("cluster/k3s/server/devops-k3s-server-02", "etcd member", "before the new one joins")
note("cluster/dns/server/devops-dns-01", "installed anew")
note("cluster/dns/zone/homelab.local", "rebuilt primary")
note("cluster/dns/secondary/devops-dns-02", "re-synchronised")
# what did not live on node 02 is only checked
for i in ("cluster/vm/devops-k3s-server-01", "cluster/vm/devops-dns-02", "cluster/k3s/server/devops-k3s-server-01",
          "cluster/template/ubuntu-2204-cloudimage-template/devops-node-01", "cluster/backup/devopslab",
          "cluster/edge/traefik", "cluster/verify"):
    if i not in steps: fail("missing step " + i)
    if i in notes: fail("%s has a recovery note: %r" % (i, notes[i]))
if any(s["phase"] == "install" and s["recover"] for s in rec["steps"]): fail("install steps carry notes")
# the VM steps are the plan's own: restore_from only where a backup may be restored
rf = {s["params"]["name"]: s["params"].get("restore_from") for s in full["steps"] if s["kind"] == "vm"}
if rf != {"devops-k3s-worker-01": "local", "devops-k3s-worker-02": "local", "devops-k3s-server-01": None,
          "devops-k3s-server-02": None, "devops-k3s-server-03": None, "devops-dns-01": "local",
          "devops-dns-02": "local"}:
    fail("restore_from %s" % rf)
PYEOF
[ $? = 0 ] || fail "the recovery plan's structure"
expect_exit 2 "$DEVOPSLAB" plan --manifest "$ex" --recover devops-node-09
assert_contains "$OUT" 'no node "devops-node-09" in the manifest'
expect_exit 2 "$DEVOPSLAB" plan --manifest "$ex" --recover devops-node-02 --node devops-node-02
assert_contains "$OUT" "exclude each other"
