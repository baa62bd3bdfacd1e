#!/bin/bash
# The Proxmox simulator's guest model (tests/sim/pve_sim_guests.py,
# docs/pve.md "The guest model"), driven with curl on a two-node cluster that
# `devopslab firstboot` forms: uploads (a NoCloud seed ISO, a qcow2 image,
# checksums, refusals), a VM created with import-from, made a template,
# cloned (linked on the node; refused onto the other node; concurrent clones
# of the template; the lock a running source takes), resized, given the seed,
# started; its guest agent before and after the boot delay, the addresses the
# seed gave it, the seed files in the record directory; a duplicate VMID,
# deletes; backup jobs (create, read from the other node, update, delete
# and PVE's refusals); backups run as pvescheduler would (pve_sim_jobs.py
# --run-job: on the shared "nas" every node sees, on a node's own "local"
# only that node; keep-last), vzdump through the API, restores (refused
# without force, over a running VM, with a disk option, from a backup this
# node cannot read; force over itself; a new VMID, unique, started), a VM
# destroyed without its volumes, a member reinstalled (--fresh) whose VM
# configuration the cluster kept without its disks (delnode, join, start
# fails, restored); quorum in every record. Every request passes the API
# schema check at the end.
# timeout: 180
# (a simulator's own test: nothing of ours runs under ASan)
# sanitizer: skip
. "$TOP/tests/lib.sh"
SIM_TASK_MS=50
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh" # sim_edit, conf, the API client (api, call, task, login, booted)

for t in curl xorriso qemu-img; do command -v "$t" >/dev/null || skip "$t is not installed"; done

# Long enough that the first ping after a start always comes before the
# guest is "up", even on a loaded machine.
BOOT_MS=2000
sim_init 2
sim_start_all --guest-boot-ms "$BOOT_MS" --lock-wait-ms 300
form_all
assert_one_cluster 2

login pve1
login pve2

# ---- storage: what a fresh PVE 9 install has; content checks as pve-storage ----
call GET pve1 /nodes/pve1/storage
expect 200
assert_eq "local:backup,import,iso,vztmpl:1 local-lvm:images,rootdir:$((400 << 30))" \
	"$(jget '" ".join("%s:%s:%s" % (x["storage"], x["content"], x["active"] if x["type"] == "dir" else x["total"]) for x in d["data"])')" \
	"storages of pve1"
call PUT pve1 /storage/local-lvm content=iso
expect 500 "update storage failed: storage does not support content type 'none'"

# ---- uploads ---------------------------------------------------------------------
MAC=BC:24:11:00:02:01
mkdir -p "$TESTTMP/seed"
printf '#cloud-config\nhostname: web1\n' >"$TESTTMP/seed/user-data"
printf 'instance-id: web1\nlocal-hostname: web1\n' >"$TESTTMP/seed/meta-data"
cat >"$TESTTMP/seed/network-config" <<EOF
version: 2
ethernets:
  lan:
    match: {macaddress: "${MAC,,}"}
    set-name: lan0
    addresses: [10.0.0.51/24]
    routes: [{to: default, via: 10.0.0.1}]
EOF
xorriso -as mkisofs -quiet -o "$TESTTMP/seed-web1.iso" -V cidata -J -r "$TESTTMP/seed" 2>/dev/null
qemu-img create -q -f qcow2 "$TESTTMP/disk.qcow2" 1G
sum=$(sha256sum "$TESTTMP/seed-web1.iso" | cut -d' ' -f1)

# upload NODE FILE CONTENT [curl -F args before the file]
upload() {
	local n=$1 f=$2 c=$3; shift 3
	api POST "$n" "/nodes/$n/storage/local/upload" -F "content=$c" "$@" -F "filename=@$f"
}
upload pve1 "$TESTTMP/seed-web1.iso" iso -F checksum-algorithm=sha256 -F "checksum=$sum"
expect 200
task_wait "$(upid)"
assert_eq OK "$EXIT" "ISO upload task"
cmp "$TESTTMP/seed-web1.iso" "$SIM_STATE/volumes/pve1/local/template/iso/seed-web1.iso" ||
	fail "the uploaded ISO is not byte for byte the file sent"
bad=$(printf '%064d' 0)
upload pve1 "$TESTTMP/seed-web1.iso" iso -F checksum-algorithm=sha256 -F "checksum=$bad"
task_wait "$(upid)"
assert_eq "checksum mismatch: got '$sum' != expect '$bad'" "$EXIT" "upload with a wrong checksum"
cp "$TESTTMP/disk.qcow2" "$TESTTMP/disk.txt"
upload pve1 "$TESTTMP/disk.txt" iso
expect 400 "Parameter verification failed."
assert_eq "wrong file extension" "$(jget 'd["errors"]["filename"]')" "refusal of a .txt ISO"
api POST pve1 /nodes/pve1/storage/local-lvm/upload -F content=import -F "filename=@$TESTTMP/disk.qcow2"
expect 500 "can't upload to storage type 'lvmthin'"
upload pve1 "$TESTTMP/disk.qcow2" import
task_wait "$(upid)"
assert_eq OK "$EXIT" "qcow2 upload task"
# An upload is not proxied (the schema has no proxyto for it): the node that
# got the file runs the task and copies the file to the node named.
api POST pve1 /nodes/pve2/storage/local/upload -F content=iso -F "filename=@$TESTTMP/seed-web1.iso"
expect 200
assert_eq pve1 "$(cut -d: -f2 <<<"$(upid)")" "the node running an upload for pve2"
task_wait "$(upid)"
assert_eq OK "$EXIT" "upload to pve2 through pve1"
cmp "$TESTTMP/seed-web1.iso" "$SIM_STATE/volumes/pve2/local/template/iso/seed-web1.iso" ||
	fail "the ISO uploaded for pve2 is not on pve2"
call GET pve1 /nodes/pve1/storage/local/content
assert_eq "local:import/disk.qcow2:qcow2 local:iso/seed-web1.iso:iso" \
	"$(jget '" ".join("%s:%s" % (x["volid"], x["format"]) for x in d["data"])')" "content of local"

# ---- a template from an imported disk ---------------------------------------------
task POST pve1 /nodes/pve1/qemu vmid=9000 name=tmpl cores=2 memory=2048 cpu=host scsihw=virtio-scsi-single \
	net0=virtio,bridge=vmbr0 scsi0=local-lvm:0,import-from=local:import/disk.qcow2 serial0=socket vga=serial0 \
	agent=1 boot=order=scsi0 ostype=l26
assert_eq OK "$EXIT" "create 9000"
call GET pve1 /nodes/pve1/qemu/9000/config
assert_eq "local-lvm:vm-9000-disk-0,size=1G" "$(jget 'd["data"]["scsi0"]')" "9000's imported disk"
[[ $(jget 'd["data"]["net0"]') =~ ^virtio=BC:24:11:([0-9A-F]{2}:){2}[0-9A-F]{2},bridge=vmbr0$ ]] ||
	fail "9000's NIC got no Proxmox MAC: $(jget 'd["data"]["net0"]')"
task POST pve1 /nodes/pve1/qemu/9000/template
assert_eq OK "$EXIT" "template 9000"
call GET pve1 /nodes/pve1/qemu/9000/config
assert_eq "local-lvm:base-9000-disk-0,size=1G 1" "$(jget 'd["data"]["scsi0"] + " " + d["data"]["template"]')" \
	"9000 as a template"

# ---- clones ---------------------------------------------------------------------------
task POST pve1 /nodes/pve1/qemu/9000/clone newid=201 name=web1 full=0
assert_eq OK "$EXIT" "linked clone 201"
assert_contains "$(tlog)" "create linked clone of drive scsi0 (local-lvm:base-9000-disk-0)"
call GET pve1 /nodes/pve1/storage/local-lvm/content vmid=201
assert_eq "local-lvm:vm-201-disk-0" "$(jget '" ".join(x["volid"] for x in d["data"])')" "201's disk"
call POST pve1 /nodes/pve1/qemu/9000/clone newid=301 name=far full=0 target=pve2
expect 500 "can't clone VM to node 'pve2' (VM uses local storage)"

# Two clones of the stopped template at once: both take a shared lock
# (Qemu.pm clone_vm), so both succeed; each new VM is locked meanwhile.
slow_clones='{"node": "pve1", "method": "POST", "path": "^/nodes/pve1/qemu/9000/clone$", "action": "task-slow", "delay_ms": 800, "times": 2}'
faults "[$slow_clones]"
call POST pve1 /nodes/pve1/qemu/9000/clone newid=202 name=web2 full=0
expect 200
c202=$(upid)
call POST pve1 /nodes/pve1/qemu/9000/clone newid=203 name=web3 full=0
expect 200
c203=$(upid)
call PUT pve1 /nodes/pve1/qemu/202/config cores=4
expect 500 "VM is locked (clone)"
task_wait "$c202"
assert_eq OK "$EXIT" "clone 202 beside another clone"
task_wait "$c203"
assert_eq OK "$EXIT" "clone 203 beside another clone"

# ---- resize, the seed, start, agent -------------------------------------------------------
task PUT pve1 /nodes/pve1/qemu/201/resize disk=scsi0 size=+1G
assert_eq OK "$EXIT" "grow 201's disk"
task PUT pve1 /nodes/pve1/qemu/201/resize disk=scsi0 size=1G
assert_eq "shrinking disks is not supported" "$EXIT" "shrink 201's disk"
call GET pve1 /nodes/pve1/qemu/201/config
assert_eq "local-lvm:vm-201-disk-0,size=2G" "$(jget 'd["data"]["scsi0"]')" "201's disk after resizing"
call POST pve1 /nodes/pve1/qemu/201/config ide2=local:iso/seed-web1.iso
expect 400
assert_eq "explicit 'media=cdrom' is required for iso images" "$(jget 'd["errors"]["ide2"]')" "an ISO as a disk"
task POST pve1 /nodes/pve1/qemu/201/config ide2=local:iso/seed-web1.iso,media=cdrom "net0=virtio=$MAC,bridge=vmbr0"
assert_eq OK "$EXIT" "give 201 its seed"
# 202 gets the same seed, whose network-config does not name its NIC.
task POST pve1 /nodes/pve1/qemu/202/config ide2=local:iso/seed-web1.iso,media=cdrom
assert_eq OK "$EXIT" "give 202 the seed"
call POST pve1 /nodes/pve1/qemu/201/agent/ping
expect 500 "VM 201 is not running"
task POST pve1 /nodes/pve1/qemu/201/status/start
assert_eq OK "$EXIT" "start 201"
call POST pve1 /nodes/pve1/qemu/201/agent/ping
expect 500 "QEMU guest agent is not running"
task POST pve1 /nodes/pve1/qemu/202/status/start
assert_eq OK "$EXIT" "start 202"
booted 201
assert_eq '{"data": {"result": {}}}' "$BODY" "201's agent ping"
# Through the other node, as a client that asks any member.
call GET pve2 /nodes/pve1/qemu/201/agent/network-get-interfaces
expect 200
assert_eq "lo:127.0.0.1/8 lan0:${MAC,,}:10.0.0.51/24" \
	"$(jget '" ".join(x["name"] + ":" + (x["hardware-address"] + ":" if x["name"] != "lo" else "") + ",".join("%s/%d" % (a["ip-address"], a["prefix"]) for a in x["ip-addresses"] if a["ip-address-type"] == "ipv4") for x in d["data"]["result"])')" \
	"the addresses the seed gave web1"
for f in user-data meta-data network-config; do
	cmp "$TESTTMP/seed/$f" "$PVE_SIM_RECORD_DIR/web1.$f" || fail "web1.$f in the record directory is not the seed's"
done
# A VM whose NIC the seed does not name gets no IPv4 address.
booted 202
call GET pve1 /nodes/pve1/qemu/202/agent/network-get-interfaces
expect 200
assert_eq "lo:127.0.0.1 ens18:" \
	"$(jget '" ".join(x["name"] + ":" + ",".join(a["ip-address"] for a in x["ip-addresses"] if a["ip-address-type"] == "ipv4") for x in d["data"]["result"])')" \
	"interfaces of a VM the seed does not match"

# A running source is locked exclusively while it is cloned: a second clone
# waits (--lock-wait-ms here), then fails as Proxmox's lock_file_full does.
# (Hit counters go by a rule's position: the used-up rule stays first.)
slow_clone_202='{"node": "pve1", "method": "POST", "path": "^/nodes/pve1/qemu/202/clone$", "action": "task-slow", "delay_ms": 900, "times": 1}'
faults "[$slow_clones, $slow_clone_202]"
call POST pve1 /nodes/pve1/qemu/202/clone newid=204 name=web4
expect 200
c204=$(upid)
task POST pve1 /nodes/pve1/qemu/202/clone newid=205 name=web5
assert_eq "can't lock file '/var/lock/qemu-server/lock-202.conf' - got timeout" "$EXIT" "a second clone of a running VM"
task_wait "$c204"
assert_eq OK "$EXIT" "full clone of a running VM"
faults '[]'

# ---- the cluster's VMIDs, the resource view, deletes --------------------------------------
call POST pve2 /nodes/pve2/qemu vmid=201 name=dup
expect 500 "unable to create VM 201 - VM 201 already exists on node 'pve1'"
call GET pve2 /cluster/resources type=vm
assert_eq "201:pve1:running:0 202:pve1:running:0 203:pve1:stopped:0 204:pve1:stopped:0 9000:pve1:stopped:1" \
	"$(jget '" ".join("%d:%s:%s:%d" % (x["vmid"], x["node"], x["status"], x["template"]) for x in d["data"])')" \
	"VMs of the cluster"
call DELETE pve1 /nodes/pve1/qemu/201
expect 500 "VM 201 is running - destroy failed"
task POST pve1 /nodes/pve1/qemu/201/status/stop
assert_eq OK "$EXIT" "stop 201"
task DELETE pve1 /nodes/pve1/qemu/201 purge=1 destroy-unreferenced-disks=1
assert_eq OK "$EXIT" "destroy 201"
call GET pve1 /nodes/pve1/qemu/201/status/current
expect 500 "Configuration file 'nodes/pve1/qemu-server/201.conf' does not exist"
call GET pve1 /nodes/pve1/storage/local-lvm/content vmid=201
assert_eq "[]" "$(jget 'd["data"]')" "201's disks after destroying it"
task DELETE pve1 /nodes/pve1/storage/local/content/local:import/disk.qcow2
assert_eq OK "$EXIT" "delete the imported qcow2"
[ ! -e "$SIM_STATE/volumes/pve1/local/import/disk.qcow2" ] || fail "the deleted volume's file is still there"

# ---- backup jobs (pve_sim_jobs.py): the cluster's jobs.cfg --------------------------
call POST pve1 /cluster/backup id=nightly schedule=02:30 storage=local vmid=200,201 mode=snapshot \
	prune-backups=keep-daily=7,keep-weekly=4 compress=zstd
expect 200
call GET pve2 /cluster/backup/nightly # every node sees the cluster's jobs
expect 200
assert_eq "{'keep-daily': 7, 'keep-weekly': 4}" "$(jget 'd["data"]["prune-backups"]')" "prune-backups as an object"
assert_eq "1 vzdump 200,201 True" "$(jget '" ".join(map(str, (d["data"]["enabled"], d["data"]["type"], d["data"]["vmid"], d["data"]["next-run"] > 0)))')" \
	"the job as read back"
call POST pve1 /cluster/backup schedule="sun 01:00" all=1 storage=local
expect 200
call GET pve1 /cluster/backup
assert_eq "True" "$(jget 'len(d["data"]) == 2 and any(j["id"].startswith("backup-") for j in d["data"])')" "a generated id"
call PUT pve1 /cluster/backup/nightly schedule="mon..fri 22:00" delete=compress
expect 200
call GET pve1 /cluster/backup/nightly
assert_eq "mon..fri 22:00 False" "$(jget 'd["data"]["schedule"] + " " + str("compress" in d["data"])')" "the update and the delete"
call POST pve1 /cluster/backup id=nightly schedule=02:30 storage=local all=1
expect 500 "Job 'nightly' already exists"
call POST pve1 /cluster/backup id=b1 schedule=02:30 storage=nosuch all=1
expect 500 "storage 'nosuch' does not exist"
call POST pve1 /cluster/backup id=b1 schedule=02:30 storage=local-lvm all=1
expect 500 "storage 'local-lvm' does not support backups"
call POST pve1 /cluster/backup id=b1 schedule="every night" storage=local all=1
expect 400 "Parameter verification failed"
call POST pve1 /cluster/backup id=b1 schedule=02:30 storage=local all=1 prune-backups=keep-all=1,keep-daily=2
expect 400 "Parameter verification failed"
call POST pve1 /cluster/backup id=b1 schedule=02:30 storage=local
expect 400 "either 'all', 'vmid' or 'pool' must be set"
call GET pve1 /cluster/backup/nosuch
expect 404 "Job 'nosuch' does not exist"
call PUT pve1 /cluster/backup/nosuch schedule=02:30
expect 404 "Job 'nosuch' does not exist"
call DELETE pve1 /cluster/backup/nightly
expect 200
call DELETE pve1 /cluster/backup/nightly
expect 404 "Job 'nightly' does not exist"

# ---- backups (pve_sim_jobs.py --run-job), restores, a reinstalled member --------------
# The NFS storage of the preset installer-nas, added as an operator would.
sim_edit "import sys; sys.path.insert(0, '$SIM'); import pve_sim_storage as st
s['guest']['storage']['nas'] = dict(st.PRESETS['installer-nas']['nas'])"
task POST pve2 /nodes/pve2/qemu vmid=210 name=db scsi0=local-lvm:1 ide2=local-lvm:cloudinit agent=1 \
	net0=virtio,bridge=vmbr0 ipconfig0=ip=10.0.0.61/24
assert_eq OK "$EXIT" "create 210 on pve2"
call POST pve1 /cluster/backup id=dr schedule=02:30 storage=nas vmid=202,210,9000 mode=snapshot compress=zstd \
	prune-backups=keep-last=2 notes-template='{{guestname}} on {{node}}'
expect 200
t0=1796083200 # 2026-12-01 00:00 UTC; three nightly runs, keep-last=2 prunes the first
for i in 0 1 2; do sim_run_backup_job dr $((t0 + i * 86400)); done
assert_contains "$OUT" "backup nas:backup/vzdump-qemu-210-"
[ "$(grep -c '^pruned nas:backup/vzdump-qemu-' <<<"$OUT")" = 3 ] || fail "the third run pruned: $OUT"
call GET pve2 /nodes/pve2/storage/nas/content content=backup vmid=202 # shared: every node sees them
expect 200
assert_eq "2 vma.zst qemu 202 backup web2 on pve1" \
	"$(jget '" ".join([str(len(d["data"]))] + [str(d["data"][-1][k]) for k in ("format", "subtype", "vmid", "content", "notes")])')" \
	"202's backups on nas, listed from pve2"
B202=$(jget 'd["data"][-1]["volid"]')
[[ $B202 =~ ^nas:backup/vzdump-qemu-202-[0-9]{4}(_[0-9]{2}){2}-([0-9]{2}_){2}[0-9]{2}\.vma\.zst$ ]] || fail "backup volid $B202"
call GET pve1 /nodes/pve1/storage/nas/content
assert_eq 6 "$(jget 'len(d["data"])')" "backups on nas (202, 210, the template 9000; two each)"
# A node-local backup: pve1's 'local' holds it, pve2 cannot read it.
call POST pve1 /cluster/backup id=loc schedule=02:30 storage=local vmid=203
expect 200
sim_run_backup_job loc
BLOC=$(sed -n 's/^backup //p' <<<"$OUT")
call GET pve1 /nodes/pve1/storage/local/content content=backup
assert_eq "$BLOC vma" "$(jget '" ".join(x["volid"] + " " + x["format"] for x in d["data"])')" "pve1's local backup (no compress: .vma)"
call POST pve2 /nodes/pve2/qemu vmid=240 archive="$BLOC"
expect 500 "can't find file '$BLOC'"
# vzdump through the API: a task on the VM's node.
task POST pve1 /nodes/pve1/vzdump vmid=204 storage=nas compress=zstd mode=snapshot
assert_eq OK "$EXIT" "vzdump 204"
assert_contains "$(tlog)" "INFO: creating vzdump archive '/mnt/pve/nas/dump/vzdump-qemu-204-"
call POST pve1 /nodes/pve1/vzdump vmid=204 storage=local-lvm
expect 500 "storage 'local-lvm' does not support backups"

# Restores (qmrestore through the API).
call POST pve1 /nodes/pve1/qemu vmid=202 archive="$B202"
expect 500 "unable to restore VM 202 - VM 202 already exists on node 'pve1'"
call POST pve1 /nodes/pve1/qemu vmid=250 archive="$B202" scsi0=local-lvm:1
expect 400
assert_eq "option conflicts with option 'archive'" "$(jget 'd["errors"]["scsi0"]')" "a disk beside an archive"
call POST pve1 /nodes/pve1/qemu vmid=202 archive=nas:backup/vzdump-qemu-202-2020_01_01-00_00_00.vma.zst force=1
expect 500 "can't find file 'nas:backup/vzdump-qemu-202-2020_01_01-00_00_00.vma.zst'"
call POST pve1 /nodes/pve1/qemu vmid=202 archive="$B202" force=1
expect 500 "unable to restore VM 202 - vm is running"
task POST pve1 /nodes/pve1/qemu/202/status/stop
assert_eq OK "$EXIT" "stop 202"
task POST pve1 /nodes/pve1/qemu vmid=202 archive="$B202" force=1 storage=nas
assert_eq "Content type 'images' is not available on storage 'nas'" "$EXIT" "a restore onto a backup-only storage"
assert_eq "web2 local-lvm:vm-202-disk-0,size=1G" "$(conf pve1 202 name) $(conf pve1 202 scsi0)" "202 untouched by the failed restore"
# (the two used-up rules of the clones above keep their positions)
faults "[$slow_clones, $slow_clone_202, {\"node\": \"pve1\", \"method\": \"POST\", \"path\": \"^/nodes/pve1/qemu$\", \"action\": \"task-slow\", \"delay_ms\": 800, \"times\": 1}]"
call POST pve1 /nodes/pve1/qemu vmid=202 archive="$B202" force=1
expect 200
r202=$(upid)
call GET pve1 /nodes/pve1/qemu/202/config
assert_eq create "$(jget 'd["data"].get("lock")')" "202's lock while it is restored"
task_wait "$r202"
faults '[]'
assert_eq OK "$EXIT" "restore 202 over itself"
assert_contains "$(tlog)" "new volume ID is 'local-lvm:vm-202-disk-0'"
call GET pve1 /nodes/pve1/qemu/202/config
assert_eq "web2 local-lvm:vm-202-disk-0,size=1G False" \
	"$(jget 'd["data"]["name"] + " " + d["data"]["scsi0"] + " " + str("lock" in d["data"])')" "202 restored"
B210=$(sim_query 'max(k for k in s["guest"]["vols"]["@shared"]["nas"] if "-210-" in k)')
task POST pve1 /nodes/pve1/qemu vmid=230 archive="nas:$B210" storage=local-lvm unique=1 start=1 name=db-copy
assert_eq OK "$EXIT" "restore 210's backup as 230 on pve1, started"
call GET pve1 /nodes/pve1/qemu/230/config
assert_eq "db-copy local-lvm:vm-230-disk-0,size=1G local-lvm:vm-230-cloudinit,media=cdrom" \
	"$(jget '" ".join(d["data"][k] for k in ("name", "scsi0", "ide2"))')" "230: the name given, new disks"
[ "$(jget 'd["data"]["net0"]')" != "$(conf pve2 210 net0)" ] || fail "unique=1 kept 210's MAC"
call GET pve1 /nodes/pve1/qemu/230/status/current
assert_eq running "$(jget 'd["data"]["status"]')" "230 after start=1"
assert_eq "[(202, 'pve1', 'Content'), (202, 'pve1', 'OK'), (230, 'pve1', 'OK')]" \
	"$(sim_query '[(r["vmid"], r["node"], r["exitstatus"].split()[0]) for r in s["guest"]["restores"]]')" "restores recorded"
# A VM whose volumes are gone is destroyed all the same; a dir storage's
# free_image says so in the log, lvmthin's says nothing.
call PUT pve1 /storage/local content=backup,images,import,iso,vztmpl
expect 200
task POST pve2 /nodes/pve2/qemu vmid=211 name=tmp scsi0=local:1 scsi1=local-lvm:1
assert_eq OK "$EXIT" "create 211"
sim_edit "for sid in ('local', 'local-lvm'):
    for k in [k for k in s['guest']['vols']['pve2'].get(sid, {}) if '211' in k]:
        del s['guest']['vols']['pve2'][sid][k]"
task DELETE pve2 /nodes/pve2/qemu/211
assert_eq OK "$EXIT" "destroy 211 without its volumes"
assert_contains "$(tlog)" "disk image '/var/lib/vz/images/211/vm-211-disk-0.raw' does not exist"

# pve2 is reinstalled (--fresh): the cluster keeps 210's configuration, its
# disks are gone. Removed from the cluster (delnode) and joined again, pve2
# finds it, and cannot start it. A third node joins first, so that the
# cluster keeps its quorum without pve2.
join() { # NODE: join pve1's cluster through the API; the join replaces the node's key and certificate
	local fp
	fp=$(fp_of "$1")
	login "$1"
	call POST "$1" /cluster/config/join hostname=10.0.0.11 fingerprint="$(fp_of pve1)" \
		password="$(cat "$TESTTMP/root.pw")" link0="10.0.0.1${1#pve}"
	expect 200
	local u
	u=$(upid)
	for _ in $(seq 100); do [ "$(fp_of "$1")" != "$fp" ] && break; sleep 0.05; done
	sleep 0.3 # pveproxy restarts with the new certificate (--restart-ms)
	login "$1"
	task_wait "$u"
	assert_eq OK "$EXIT" "$1 joins"
}
SIM_PORT[pve3]=$(free_port)
sim_start pve3 --guest-boot-ms "$BOOT_MS" --lock-wait-ms 300
join pve3
sim_stop pve2
sleep 1 # its heartbeat goes stale
sim_run_backup_job dr
assert_contains "$OUT" "skipped 210 on pve2: its node is down"
sim_start pve2 --fresh --guest-boot-ms "$BOOT_MS" --lock-wait-ms 300
sim_run_backup_job dr
assert_contains "$OUT" "failed 210 on pve2: no such logical volume pve/vm-210-disk-0"
assert_eq "(True, False)" \
	"$(sim_query '(s["guest"]["vms"]["pve2"]["210"].get("lost_disks"), s["guest"]["vms"]["pve2"]["210"]["running"])')" \
	"210 after pve2's reinstall"
call DELETE pve1 /cluster/config/nodes/pve2
expect 200
call GET pve1 /cluster/resources type=vm
assert_contains "$(jget '[(x["vmid"], x["node"]) for x in d["data"]]')" "(210, 'pve2')"
join pve2
call GET pve2 /nodes/pve2/qemu/210/config
expect 200
assert_eq "local-lvm:vm-210-disk-0,size=1G" "$(jget 'd["data"]["scsi0"]')" "210's config on the rejoined pve2"
task POST pve2 /nodes/pve2/qemu/210/status/start
assert_eq "no such logical volume pve/vm-210-disk-0" "$EXIT" "starting 210 without its disk"
task POST pve2 /nodes/pve2/qemu vmid=210 archive="nas:$B210" force=1 start=1
assert_eq OK "$EXIT" "210 restored over its stale configuration"
call GET pve2 /nodes/pve2/qemu/210/status/current
assert_eq running "$(jget 'd["data"]["status"]')" "210 after its restore"
assert_eq False "$(sim_query 'bool(s["guest"]["vms"]["pve2"]["210"].get("lost_disks"))')" "210 restored: not lost"
# Every record says what quorum its node saw; the cluster kept it throughout.
assert_eq 0 "$(requests '"quorum" not in r')" "records without a quorum field"
assert_pve_quorum_kept
assert_eq "{'cluster': 'lab', 'members': 3, 'online': 3, 'quorate': True}" \
	"$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["quorum"])' "$PVE_SIM_RECORD_DIR/pve2.jsonl")" \
	"the quorum in pve2's last record"

sim_schema_check || fail "schema check"
assert_eq 0 "$(requests 'r["path"].endswith("/upload") and not r["params"].get("filename")')" "uploads recorded without a file name"
echo "requests: $(requests)"
