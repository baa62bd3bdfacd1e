#!/bin/bash
# kill -9 of the first node's firstboot during the guest steps, again and
# again, each time further on — at a step's start, during an upload, inside
# a create or clone task (tasks are slow here, and keep running in Proxmox
# after the client dies), while a disk moves — then a run to the end: the
# same guests as an uninterrupted run, each cloned once, no duplicate, no
# orphaned disk (GET .../storage/local-lvm/content on every node lists the
# templates' and VMs' disks and nothing else), and a further run changes
# nothing.
# timeout: 600
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

guests_init
# Slow tasks: a kill lands inside one as often as between them.
SIM_TASK_MS=600 sim_start_all --guest-boot-ms 300
GUESTS=(--assets "$A" --boot-timeout 60)

# The cluster first (pve1's run goes on into the guest steps: killed there).
fb_bg pve2; fb_bg pve3
fb_bg pve1 "${GUESTS[@]}"
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3

# Kill pve1 as soon as its output shows each point in turn; each run starts
# over and gets further. A point the run has passed already (found done)
# kills at the next line that shows.
kill_at() { # PATTERN
	local f=$TESTTMP/fb-pve1.out i
	for i in $(seq 600); do
		grep -q -- "$1" "$f" 2>/dev/null && break
		kill -0 "${FB_PID[pve1]}" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "${FB_PID[pve1]}" 2>/dev/null || true
	wait "${FB_PID[pve1]}" 2>/dev/null || true
	echo "killed at: $(grep -c . "$f") lines, last: $(tail -1 "$f")"
	cat "$f" >>"$TESTTMP/fb-pve1-killed.log"
}
kill_at "Checking storage local-lvm"
points=("creating template tpl (VMID 9000)" "Creating template tpl on pve2" "creating template tpl (VMID 9002)"
	"uploading devopslab-seed-300" "cloning app-01" "starting app-01" "Creating VM app-02"
	"cloning app-03" "cloning db" "moving its disk" "starting db")
for p in "${points[@]}"; do
	fb_bg pve1 "${GUESTS[@]}"
	kill_at "$p"
done

# To the end.
fb pve1 "${GUESTS[@]}"
fb_formed pve1
grep -q "error:" <<<"$OUT" && { echo "$OUT" >&2; fail "the run after the kills reported an error"; }
assert_eq "[('pve1', 300, 'app-01'), ('pve1', 9000, 'tpl'), ('pve2', 301, 'app-02'), ('pve2', 400, 'db'), ('pve2', 9001, 'tpl'), ('pve3', 302, 'app-03'), ('pve3', 9002, 'tpl')]" \
	"$(vms)" "guests on the nodes after the kills"
for id in 300 301 302 400; do
	assert_eq 1 "$(requests "r['path'].endswith('/clone') and r['params'].get('newid') == '$id'")" "clone requests for VMID $id"
done
# No orphaned disk: each node's local-lvm holds its template's base disk and
# its VMs' disks, nothing else.
assert_eq "{'pve1': ['base-9000-disk-0', 'vm-300-disk-0'], 'pve2': ['base-9001-disk-0', 'vm-301-disk-0', 'vm-400-disk-0'], 'pve3': ['base-9002-disk-0', 'vm-302-disk-0']}" \
	"$(sim_query '{n: sorted(v.split("/")[-1] for v in d.get("local-lvm", {})) for n, d in sorted(s["guest"]["vols"].items())}')" \
	"disks on local-lvm"
assert_contains "$(conf pve2 400 virtio0)" "vm-400-disk-0"
for v in 300 301 302; do
	assert_contains "$(conf pve$((v - 299)) $v ide2)" "local:iso/devopslab-seed-$v-"
done

# Converged: nothing more to do.
before=$(mutations)
fb pve1 "${GUESTS[@]}"
fb_formed pve1
assert_eq "$before" "$(mutations)" "mutating requests of the run after"

sim_schema_check || fail "schema check"
echo "requests: $(requests)"
