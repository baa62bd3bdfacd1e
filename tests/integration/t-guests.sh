#!/bin/bash
# The guest steps against three simulated Proxmox VE nodes: the first
# node's firstboot forms the cluster, checks the storage, builds a template
# on each node from the cloud image in the assets, clones every VM (linked
# and full) with its own NoCloud seed and the payload ISO, starts them and
# waits until each guest agent reports the planned address. A second run
# makes no mutating call; a VM whose memory was changed by hand is reported
# and set back, not recreated; a VMID held by a guest of another name is
# refused (exit 3) without a change. Every request passes the API schema
# check; the seeds the simulator received are judged by cloud-init itself.
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

sim_init 3
# The assets: a (tiny, empty) qcow2 cloud image and two payload files.
A=$TESTTMP/assets
mkdir -p "$A/guest"
qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
printf 'Welcome to the lab.\n' >"$A/guest/motd"
printf '#!/bin/sh\necho agent\n' >"$A/guest/agent.sh"
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/84AkNwkIvKpLC+wnEJ8J/URoETXyHW/305I8FG3qh alice@devopslab"
"$PY" - "$TESTTMP/cluster.yaml" "$KEY" <<'PYEOF'
import sys
p, key = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("assets: [{name: rootfs, file: rootfs.tar.zst}]",
              "assets:\n"
              "  - {name: rootfs, file: rootfs.tar.zst}\n"
              "  - {name: cloud, file: cloud.qcow2}\n"
              "  - {name: motd, file: guest/motd}\n"
              "  - {name: agent, file: guest/agent.sh}")
s += """templates:
  - {name: tpl, vmid: 9000, image: cloud, target_node: [pve1, pve2, pve3]}
vms:
  - id: app
    name: "app-{n:02}"
    count: 3
    vmid: 300
    target_node: [pve1, pve2, pve3]
    clone: tpl
    full_clone: false
    cores: 2
    memory: 1024
    agent: 1
    disk: {size: 8G}
    ipconfig0: "ip=10.0.0.51/24"
    ciuser: devops
    sshkeys: ["%s"]
    files:
      - {asset: motd, path: /etc/motd}
      - {asset: agent, path: /usr/local/bin/agent.sh, mode: "0755"}
  - id: db
    name: db
    vmid: 400
    target_node: pve2
    clone: tpl
    memory: 2048
    agent: 1
    disk: {size: 4G, type: virtio}
    ipconfig0: "ip=10.0.0.61/24"
""" % key
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >/dev/null 2>&1 || fail "the test manifest does not validate"

# installer-8: `local` as Proxmox VE 8's installer left it (iso, vztmpl,
# backup; 9's adds import), as on a cluster upgraded from 8.
sim_start_all --guest-boot-ms 200 --storage-preset installer-8
GUESTS=(--assets "$A" --boot-timeout 60)

vms() { sim_query 'sorted((n, int(v), c["conf"].get("name")) for n, d in s["guest"]["vms"].items() for v, c in d.items())'; }
# a configuration value as the API shows it (pending values win)
conf() { sim_query "dict(s['guest']['vms']['$1']['$2']['conf'], **s['guest']['vms']['$1']['$2']['pending']).get('$3')"; }

# --- first run: cluster, storage, templates, VMs -------------------------------
fb_bg pve2; fb_bg pve3
fb pve1 "${GUESTS[@]}"
fb_formed pve1
first=$OUT
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
for v in app-01 app-02 app-03 db; do
	assert_contains "$first" "Creating VM $v: done"
done
grep -q "error:" <<<"$first" && { echo "$first" >&2; fail "the first run reported an error"; }
assert_eq "[('pve1', 300, 'app-01'), ('pve1', 9000, 'tpl'), ('pve2', 301, 'app-02'), ('pve2', 400, 'db'), ('pve2', 9001, 'tpl'), ('pve3', 302, 'app-03'), ('pve3', 9002, 'tpl')]" \
	"$(vms)" "guests on the nodes"
for n in 1 2 3; do
	assert_eq 1 "$(conf pve$n $((8999 + n)) template)" "the copy on pve$n is a template"
done
# the VMs as the manifest says: sizes, NIC with the derived MAC, seed and payload
mac=$("$DEVOPSLAB" plan --manifest "$TESTTMP/cluster.yaml" --node pve1 --json |
	"$PY" -c 'import json,sys; p=json.load(sys.stdin); print([s["params"]["mac"] for s in p["steps"] if s["id"]=="cluster/vm/app-02"][0])')
assert_eq 2 "$(conf pve2 301 cores)" "app-02 cores"
assert_eq 1024 "$(conf pve2 301 memory)" "app-02 memory"
assert_contains "$(conf pve2 301 net0)" "virtio=${mac,,}"
assert_contains "$(conf pve2 301 net0)" "bridge=vmbr0"
assert_contains "$(conf pve2 301 scsi0)" "size=8G"
assert_contains "$(conf pve2 301 ide2)" "local:iso/devopslab-seed-301-"
assert_contains "$(conf pve2 301 ide3)" "local:iso/devopslab-payload-"
# linked clones share the template's base disk; db is a full clone on virtio0
assert_eq 3 "$(requests 'r["path"].endswith("/clone") and r["params"].get("full") == "0"')" "linked clones"
assert_eq 1 "$(requests 'r["path"].endswith("/clone") and r["params"].get("full") == "1" and r["params"].get("storage") == "local-lvm"')" "full clones"
assert_contains "$(conf pve2 400 virtio0)" "vm-400-disk-0"
assert_contains "$(conf pve2 400 virtio0)" "size=4G"
assert_eq None "$(conf pve2 400 scsi0)" "db's disk moved off scsi0"
assert_contains "$(conf pve2 400 boot)" "order=virtio0"
# the content types the guest layer needed were enabled, and said so
assert_contains "$first" "enabling content type 'import'"
assert_contains "$(sim_query 's["guest"]["storage_cfg"]["local"]["content"]' 2>/dev/null ||
	sim_query 'str(s["guest"])')" "iso"
# the uploaded image is gone once the templates hold it
assert_eq 0 "$(requests 'r["path"].endswith("/upload") and r["params"].get("content") == "import" and r["status"] != 200')" "failed image uploads"
assert_eq 3 "$(requests 'r["path"].endswith("/upload") and r["params"].get("content") == "import"')" "one image upload per node"

# What the guests received, judged by cloud-init's own schema validator.
recs=$PVE_SIM_RECORD_DIR
for v in app-01 app-02 app-03 db; do
	[ -s "$recs/$v.user-data" ] || fail "the simulator has no user-data of $v"
	assert_contains "$recs/$v.meta-data" "$v"
done
assert_contains "$recs/app-02.user-data" "$KEY"
assert_contains "$recs/app-02.user-data" 'name: "devops"'
assert_contains "$recs/app-02.network-config" "10.0.0.52/24"
assert_contains "$recs/app-02.network-config" "${mac,,}"
if command -v cloud-init >/dev/null; then
	for v in app-01 db; do
		cloud-init schema --config-file "$recs/$v.user-data" >/dev/null 2>&1 ||
			{ cloud-init schema --config-file "$recs/$v.user-data" >&2 || true; fail "cloud-init refuses $v's user-data"; }
	done
else
	echo "NOTE: cloud-init is not installed: user-data not checked by its schema"
fi

# --- again: converged, no mutating call -----------------------------------------
before=$(mutations)
fb pve1 "${GUESTS[@]}"
fb_formed pve1
[ "$before" = "$(mutations)" ] || { echo "$OUT" >&2; "$PY" - "$PVE_SIM_RECORD_DIR" <<'PYEOF' >&2
import glob, json, sys
rs = sorted((json.loads(l) for f in glob.glob(sys.argv[1] + "/*.jsonl") for l in open(f)), key=lambda r: r["time"])
for r in [r for r in rs if r["method"] != "GET" and r["path"] != "/api2/json/access/ticket"][-8:]:
    print(r["method"], r["path"], r["params"])
PYEOF
fail "the second run made mutating requests"; }

# --- drift: memory changed by hand is reported and set back, not recreated ----------
"$PY" - "$SIM_STATE" <<'PYEOF'
import fcntl, json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "lock"), "a") as lk:
    fcntl.flock(lk, fcntl.LOCK_EX)
    s = json.load(open(os.path.join(d, "state.json")))
    s["guest"]["vms"]["pve3"]["302"]["conf"]["memory"] = "4096"
    json.dump(s, open(os.path.join(d, "state.json.tmp"), "w"))
    os.rename(os.path.join(d, "state.json.tmp"), os.path.join(d, "state.json"))
PYEOF
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "app-03 differs from the manifest: memory 4096 -> 1024 MiB"
assert_eq 1024 "$(conf pve3 302 memory)" "app-03's memory set back"
assert_eq 1 "$(requests 'r["path"].endswith("/clone") and r["params"].get("newid") == "302"')" "clones of app-03"
assert_eq 0 "$(requests 'r["method"] == "DELETE" and "/qemu/" in r["path"]')" "guests destroyed"

# --- a VMID held by a guest of another name: refused, nothing touched ---------------
"$PY" - "$SIM_STATE" <<'PYEOF'
import fcntl, json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "lock"), "a") as lk:
    fcntl.flock(lk, fcntl.LOCK_EX)
    s = json.load(open(os.path.join(d, "state.json")))
    s["guest"]["vms"]["pve1"]["300"]["conf"]["name"] = "someone-else"
    json.dump(s, open(os.path.join(d, "state.json.tmp"), "w"))
    os.rename(os.path.join(d, "state.json.tmp"), os.path.join(d, "state.json"))
PYEOF
before=$(mutations)
fb pve1 "${GUESTS[@]}"
assert_eq 3 "$RC" "exit status for a VMID held by another guest"
assert_contains "$OUT" "VMID 300 is 'someone-else' on node 'pve1', not 'app-01'"
assert_eq "$before" "$(mutations)" "mutating requests of the refused run"

sim_schema_check || fail "schema check"
echo "requests: $(requests)"
