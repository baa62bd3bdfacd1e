# disk-lib.sh — helpers for t-disk-*.sh (sourced after tests/lib.sh).
# Everything a test creates lives in $TESTTMP; loop devices are detached and
# LVM never scans beyond the one device it is pointed at.

# One LVM-using disk test at a time on this machine (the VG is always "pve").
exec 9>/run/devopslab-test-lvm.lock
flock 9

# Loop devices of ours: detach_ours DIR-PREFIX detaches every loop device
# whose backing file lies under it. (attach runs in $(...), a subshell, so
# it cannot register its own on_exit; this one runs even on failure.)
detach_ours() {
	local dev file
	losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
		case $file in "$1"*) losetup -d "$dev" 2>/dev/null || true ;; esac
	done
}
on_exit "detach_ours '$TESTTMP/'"
# Stale state from earlier disk tests that died before cleaning up: we hold
# the lock, so no other t-disk-* test is running, and every loop device
# backed by another t-disk-* scratch directory is left over.
losetup -l -n -O NAME,BACK-FILE 2>/dev/null | while read -r dev file; do
	case $file in
	"$TESTTMP"/*) ;;
	/tmp/devopslab-test.t-disk-*)
		echo "disk-lib: detaching stale $dev ($file)"
		losetup -d "$dev" 2>/dev/null || true ;;
	esac
done

# mk_manifest FILE WIPE 'DISK-RULES' ['STORAGE'] [SEED]
mk_manifest() {
	local storage=""
	[ -n "${4:-}" ] && storage="  storage: {$4}"
	cat >"$1" <<EOM
version: 1
cluster:
  name: testlab
  seed: ${5:-test-seed}
  domain: home.arpa
  timezone: Europe/Berlin
  keyboard: us
network:
  subnet: 10.0.10.0/24
  gateway: 10.0.10.1
  dns: [10.0.10.1]
  bridge: vmbr0
nodes:
  - name: n1
    role: first
    mac: "52:54:00:0a:00:01"
    ip: 10.0.10.11
    nic: "52:54:00:0a:00:01"
    disk: {$3, wipe: $2}
assets:
  - {name: rootfs, file: rootfs.tar.zst}
proxmox:
  rootfs: rootfs
  root_password: {secret: root_password}
  ssh_keys: []
$storage
secrets:
  names: [root_password]
EOM
}

# attach [losetup options...] FILE -> prints the loop device; detached on exit
attach() {
	local l
	l=$(losetup -f --show "$@")
	echo "$l"
}

lvm_cfg() { # DEV
	echo "devices { filter=[\"a|^$1\$|\",\"r|.*|\"] global_filter=[\"a|^$1\$|\",\"r|.*|\"] use_devicesfile=0 obtain_device_list_from_udev=0 } activation { udev_sync=0 udev_rules=0 } global { activation=0 } backup { backup=0 archive=0 }"
}

# part_field IMAGE N FIELD (start|size|type|name|uuid) from sfdisk --json
part_field() {
	sfdisk --json "$1" | $PY -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
p = [p for p in t["partitions"] if p["node"].endswith(sys.argv[1])][0]
print(p[sys.argv[2]])' "$2" "$3"
}

# verify_disk DISK SECTOR EXPECT_BIOS(0|1) MEMORY MANIFEST — check the result
# with independent tools against `disk plan`'s table.
verify_disk() {
	local disk=$1 ss=$2 bios=$3 mem=$4 man=$5 plan off size lv
	plan=$("$DEVOPSLAB" disk plan --manifest "$man" --node n1 --device "$disk" --memory "$mem")
	assert_contains "$plan" "current table: matches"
	sfdisk --json "$disk" >"$TESTTMP/sf.json"
	$PY - "$TESTTMP/sf.json" "$ss" "$bios" <<'PYEOF' "$plan"
import json, sys, re
t = json.load(open(sys.argv[1]))["partitiontable"]
ss, bios, plan = int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
assert t["label"] == "gpt", t["label"]
assert t["sectorsize"] == ss, t
parts = {int(re.search(r"(\d+)$", p["node"]).group(1)): p for p in t["partitions"]}
want = {}
for m in re.finditer(r"^\s+(\d)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\S+)\s+(\S+)\s+\S+ \(PARTUUID (\S+)\)", plan, re.M):
    want[int(m.group(1))] = m.groups()
assert sorted(parts) == sorted(want) == ([1, 2, 3] if bios else [2, 3]), (sorted(parts), sorted(want))
for n, (num, start, end, typ, name, uuid) in want.items():
    p = parts[n]
    assert p["start"] == int(start) and p["size"] == int(end) - int(start) + 1, (n, p, start, end)
    assert p["type"].upper() == typ.upper() and p["name"] == name and p["uuid"].upper() == uuid.upper(), (n, p)
if bios:
    assert parts[1]["start"] == 34 and parts[1]["size"] == 2014, parts[1]
assert parts[2]["start"] * ss == 1 << 20, parts[2]
print("sfdisk: ok")
PYEOF
	# ESP: vfat, clean
	off=$(($(part_field "$disk" 2 start) * ss)); size=$(($(part_field "$disk" 2 size) * ss))
	blkid -p -O "$off" -S "$size" -o value -s TYPE "$disk" | grep -qx vfat || fail "ESP is not vfat"
	lv=$(attach -o "$off" --sizelimit "$size" -b "$ss" "$disk")
	fsck.vfat -n "$lv" >/dev/null || fail "fsck.vfat -n $lv failed"
	losetup -d "$lv"
	# LVM: PV on p3, VG pve, LV sizes as planned
	off=$(($(part_field "$disk" 3 start) * ss)); size=$(($(part_field "$disk" 3 size) * ss))
	blkid -p -O "$off" -S "$size" -o value -s TYPE "$disk" | grep -qx LVM2_member || fail "p3 is not an LVM PV"
	lv=$(attach -o "$off" --sizelimit "$size" -b "$ss" "$disk")
	lvs --config "$(lvm_cfg "$lv")" -a --units k --nosuffix --reportformat json \
		-o lv_name,lv_size,segtype,seg_pe_ranges pve 2>/dev/null >"$TESTTMP/lvs.json"
	vgs --config "$(lvm_cfg "$lv")" --units b --nosuffix --reportformat json \
		-o vg_name,vg_extent_size,pv_pe_start 2>/dev/null >"$TESTTMP/vgs.json" || true
	pvs --config "$(lvm_cfg "$lv")" --units b --nosuffix --noheadings -o pe_start "$lv" 2>/dev/null \
		>"$TESTTMP/pe_start"
	$PY - "$TESTTMP/lvs.json" <<'PYEOF' "$plan"
import json, sys, re
lvs = {l["lv_name"].strip("[]"): l for l in json.load(open(sys.argv[1]))["report"][0]["lv"]}
plan = sys.argv[2]
for name in ("swap", "root"):
    m = re.search(r"^\s+%s\s+(\d+) KiB" % name, plan, re.M)
    if m:
        assert float(lvs[name]["lv_size"]) == float(m.group(1)), (name, lvs[name], m.group(1))
        assert lvs[name]["segtype"] == "linear", lvs[name]
m = re.search(r"^\s+data\s+(\d+) KiB\s+thin pool, metadata (\d+) KiB", plan, re.M)
if m:
    assert lvs["data"]["segtype"] == "thin-pool", lvs["data"]
    assert float(lvs["data"]["lv_size"]) == float(m.group(1)), lvs["data"]
    assert float(lvs["data_tmeta"]["lv_size"]) == float(m.group(2)), lvs["data_tmeta"]
    assert float(lvs["lvol0_pmspare"]["lv_size"]) == float(m.group(2))
print("lvs: ok", sorted(lvs))
PYEOF
	# root: ext4 at its extents, clean; swap signature
	local pe ext first rsize
	pe=$(tr -d ' ' <"$TESTTMP/pe_start")
	ext=$((4 << 20))
	first=$($PY -c 'import json,sys; l=[l for l in json.load(open(sys.argv[1]))["report"][0]["lv"] if l["lv_name"]=="root"][0]; print(l["seg_pe_ranges"].split(":")[1].split("-")[0])' "$TESTTMP/lvs.json")
	rsize=$($PY -c 'import json,sys; l=[l for l in json.load(open(sys.argv[1]))["report"][0]["lv"] if l["lv_name"]=="root"][0]; print(int(float(l["lv_size"]))*1024)' "$TESTTMP/lvs.json")
	losetup -d "$lv"
	lv=$(attach -r -o $((off + pe + first * ext)) --sizelimit "$rsize" -b "$ss" "$disk")
	blkid -p -o value -s TYPE "$lv" | grep -qx ext4 || fail "root LV is not ext4"
	fsck.ext4 -n -f "$lv" >/dev/null 2>&1 || fail "fsck.ext4 -n root failed"
	losetup -d "$lv"
	echo "verify_disk $disk: ok"
}
