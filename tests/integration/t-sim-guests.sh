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
# and PVE's refusals). Every request passes the API schema check at the end.
# timeout: 180
. "$TOP/tests/lib.sh"
SIM_TASK_MS=50
. "$TOP/tests/sim/cluster-lib.sh"

for t in curl xorriso qemu-img; do command -v "$t" >/dev/null || skip "$t is not installed"; done

# Long enough that the first ping after a start always comes before the
# guest is "up", even on a loaded machine.
BOOT_MS=2000
sim_init 2
sim_start_all --guest-boot-ms "$BOOT_MS" --lock-wait-ms 300
form_all
assert_one_cluster 2

# ---- a small API client: curl, trusting each node's own certificate ----------
declare -A TICKET CSRF
# api METHOD NODE PATH [curl args] -> $CODE (HTTP status), $REASON, $BODY
api() {
	local m=$1 n=$2 p=$3; shift 3
	CODE=$(curl -sS --cacert "$SIM_STATE/$n.pem" -o "$TESTTMP/body" -D "$TESTTMP/head" -w '%{http_code}' \
		-X "$m" -b "PVEAuthCookie=${TICKET[$n]:-}" -H "CSRFPreventionToken: ${CSRF[$n]:-}" "$@" \
		"https://127.0.0.1:${SIM_PORT[$n]}/api2/json$p")
	local status_line
	read -r status_line <"$TESTTMP/head"
	status_line=${status_line%$'\r'}
	REASON=${status_line#* * }
	BODY=$(<"$TESTTMP/body")
}
# jget EXPR — a Python expression over d, the last answer's JSON
jget() { "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" <<<"$BODY"; }
# form K=V... — curl arguments for a form body
form() { local a; for a in "$@"; do printf -- '--data-urlencode\n%s\n' "$a"; done; }
call() { # METHOD NODE PATH K=V... (form or, for GET, query)
	local m=$1 n=$2 p=$3 args; shift 3
	mapfile -t args < <(form "$@")
	case $m in GET | DELETE) args=(-G "${args[@]}") ;; esac
	api "$m" "$n" "$p" "${args[@]}"
}
expect() { # CODE [REASON-SUBSTRING] — the last answer
	[ "$CODE" = "$1" ] || fail "expected HTTP $1${2:+ ($2)}, got $CODE $REASON: $BODY"
	[ -z "${2:-}" ] || assert_contains "$REASON" "$2"
}
# upid — the UPID the last call answered
upid() { [[ $BODY =~ \"data\":\ \"(UPID:[^\"]*)\" ]] || fail "no UPID in: $BODY"; echo "${BASH_REMATCH[1]}"; }
# task METHOD NODE PATH K=V... — a call answering a UPID, then its end:
# $EXIT (exitstatus; the log: tlog)
task() {
	call "$@"
	expect 200
	task_wait "$(upid)"
}
task_wait() { # UPID (fields: UPID:node:...; only ':' and '@' need encoding)
	local n enc=${1//:/%3A}
	n=${1#UPID:}
	n=${n%%:*}
	enc=${enc//@/%40}
	for _ in $(seq 300); do
		sleep 0.05 # no task ends before --task-ms
		api GET "$n" "/nodes/$n/tasks/$enc/status"
		[[ $BODY == *'"status": "stopped"'* ]] && break
	done
	[[ $BODY =~ \"exitstatus\":\ \"(([^\"\\]|\\.)*)\" ]] || fail "no exit status in: $BODY"
	EXIT=${BASH_REMATCH[1]}
	api GET "$n" "/nodes/$n/tasks/$enc/log" -G --data limit=0
	cp "$TESTTMP/body" "$TESTTMP/tasklog"
}
tlog() { "$PY" -c 'import json, sys; print("\n".join(x["t"] for x in json.load(sys.stdin)["data"]))' <"$TESTTMP/tasklog"; }
login() {
	call POST "$1" /access/ticket username=root@pam "password=$(cat "$TESTTMP/root.pw")"
	expect 200
	TICKET[$1]=$(jget 'd["data"]["ticket"]')
	CSRF[$1]=$(jget 'd["data"]["CSRFPreventionToken"]')
}
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
booted() { # VMID: ping its agent until it answers (the guest is up)
	local i
	for i in $(seq 100); do
		call POST pve1 "/nodes/pve1/qemu/$1/agent/ping"
		[ "$CODE" = 200 ] && return 0
		expect 500 "QEMU guest agent is not running"
		sleep 0.1
	done
	fail "VM $1's agent did not answer within 10 s"
}
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
faults "[$slow_clones, {\"node\": \"pve1\", \"method\": \"POST\", \"path\": \"^/nodes/pve1/qemu/202/clone$\", \"action\": \"task-slow\", \"delay_ms\": 900, \"times\": 1}]"
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

sim_schema_check || fail "schema check"
assert_eq 0 "$(requests 'r["path"].endswith("/upload") and not r["params"].get("filename")')" "uploads recorded without a file name"
echo "requests: $(requests)"
