#!/bin/bash
# The guest steps against three simulated Proxmox VE nodes: the first
# node's firstboot forms the cluster, checks the storage, builds a template
# on each node from the cloud image in the assets, clones every VM (linked
# and full) with its own NoCloud seed and the payload ISO, starts them and
# waits until each guest agent reports the planned address. A second run
# makes no mutating call; a VM whose memory was changed by hand is shown by
# `status --live` (changing nothing), then reported and set back by a run,
# not recreated; a VMID held by a guest of another name is
# refused (exit 3) without a change. A backup section makes one vzdump job
# of every VM (none on a storage Proxmox does not have), converged, and set
# back after a hand change. Every request passes the API schema
# check; the seeds the simulator received are judged by cloud-init itself.
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

guests_init

# installer-8: `local` as Proxmox VE 8's installer left it (iso, vztmpl,
# backup; 9's adds import), as on a cluster upgraded from 8.
sim_start_all --guest-boot-ms 200 --storage-preset installer-8
GUESTS=(--assets "$A" --boot-timeout 60)


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
sim_edit 's["guest"]["vms"]["pve3"]["302"]["conf"]["memory"] = "4096"'
# `status --live` (firstboot --dry-run) shows the drift first and changes nothing
before=$(mutations)
fb_cmd pve1 "${GUESTS[@]}"
set +e; LIVE=$("$DEVOPSLAB" status --live "${FB[@]:2}" 2>&1); RC=$?; set -e
[ "$RC" = 0 ] || [ "$RC" = 5 ] || { echo "$LIVE" >&2; fail "status --live exited $RC"; }
assert_contains "$LIVE" "app-03 differs from the manifest: memory 4096 -> 1024 MiB"
assert_contains "$LIVE" "Creating VM app-03: would apply"
assert_contains "$LIVE" "Creating VM app-02: already done"
assert_contains "$LIVE" "dry run: 1 step would change something; nothing was changed"
assert_eq "$before" "$(mutations)" "mutating requests of status --live"
assert_eq 4096 "$(conf pve3 302 memory)" "app-03's memory after status --live"
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "app-03 differs from the manifest: memory 4096 -> 1024 MiB"
assert_eq 1024 "$(conf pve3 302 memory)" "app-03's memory set back"
assert_eq 1 "$(requests 'r["path"].endswith("/clone") and r["params"].get("newid") == "302"')" "clones of app-03"
assert_eq 0 "$(requests 'r["method"] == "DELETE" and "/qemu/" in r["path"]')" "guests destroyed"

# --- backups: one vzdump job for every VM, converged, set back when changed ----------
cp "$TESTTMP/cluster.yaml" "$TESTTMP/cluster-nobackup.yaml"
printf 'backup:\n  storage: nosuch\n' >>"$TESTTMP/cluster.yaml"
fb pve1 "${GUESTS[@]}"
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "a backup job on a storage that does not exist was accepted"; }
assert_contains "$OUT" "cannot create backup job devopslab: "
cp "$TESTTMP/cluster-nobackup.yaml" "$TESTTMP/cluster.yaml"
printf 'backup:\n  schedule: "sun 01:30"\n  keep: {last: 2, weekly: 8}\n' >>"$TESTTMP/cluster.yaml"
VOUT=$("$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" 2>&1) # not into grep -q: a pipe closed early is SIGPIPE
assert_contains "$VOUT" "storage 'local' is each node's own disk"
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "Scheduling the VMs' backups (sun 01:30, on local): done"
assert_eq 1 "$(requests 'r["method"] == "POST" and r["path"].endswith("/cluster/backup") and r["params"] == {
	"id": "devopslab", "schedule": "sun 01:30", "storage": "local", "mode": "snapshot", "compress": "zstd",
	"vmid": "300,301,302,400", "prune-backups": "keep-last=2,keep-weekly=8", "enabled": "1",
	"comment": "managed by devopslab"}')" "the backup job as created"
before=$(mutations)
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "Scheduling the VMs' backups (sun 01:30, on local): already done"
assert_eq "$before" "$(mutations)" "mutating requests of a converged run with a backup job"
sim_edit 's["guest"]["jobs"]["devopslab"].update(schedule="daily", enabled="0")'
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_contains "$OUT" "backup job devopslab differs from the manifest (schedule, enabled): setting it back"
assert_eq 1 "$(requests 'r["method"] == "PUT" and r["path"].endswith("/cluster/backup/devopslab") and r["params"].get("schedule") == "sun 01:30" and r["params"].get("enabled") == "1"')" \
	"the job set back"
cp "$TESTTMP/cluster-nobackup.yaml" "$TESTTMP/cluster.yaml"

# --- a VMID held by a guest of another name: refused, nothing touched ---------------
sim_edit 's["guest"]["vms"]["pve1"]["300"]["conf"]["name"] = "someone-else"'
before=$(mutations)
fb pve1 "${GUESTS[@]}"
assert_eq 3 "$RC" "exit status for a VMID held by another guest"
assert_contains "$OUT" "VMID 300 is 'someone-else' on node 'pve1', not 'app-01'"
assert_eq "$before" "$(mutations)" "mutating requests of the refused run"

sim_schema_check || fail "schema check"
echo "requests: $(requests)"
