# tests/sim/guests-lib.sh — sourced by the guest tests after cluster-lib.sh:
#   guests_init   sim_init 3 and a manifest with a template on every node and
#                 four VMs (three linked clones with payload files, one full
#                 clone on virtio0), the assets in $A, the SSH key in $KEY
#   vms           every guest on the simulated nodes: (node, vmid, name)
#   conf NODE VMID KEY   a configuration value as the API shows it
#   sim_edit PYTHON      change the simulated world's state (under its lock)

guests_init() {
	sim_init 3
	# The assets: a (tiny, empty) qcow2 cloud image and two payload files.
	A=$TESTTMP/assets
	mkdir -p "$A/guest"
	qemu-img create -q -f qcow2 "$A/cloud.qcow2" 2G
	printf 'Welcome to the lab.\n' >"$A/guest/motd"
	printf '#!/bin/sh\necho agent\n' >"$A/guest/agent.sh"
	KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/84AkNwkIvKpLC+wnEJ8J/URoETXyHW/305I8FG3qh alice@devopslab"
	"$PY" - "$TESTTMP/cluster.yaml" "$KEY" <<-'PYEOF'
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
}

vms() { sim_query 'sorted((n, int(v), c["conf"].get("name")) for n, d in s["guest"]["vms"].items() for v, c in d.items())'; }
# a configuration value as the API shows it (pending values win)
conf() { sim_query "dict(s['guest']['vms']['$1']['$2']['conf'], **s['guest']['vms']['$1']['$2']['pending']).get('$3')"; }

sim_edit() { # python statements over s
	"$PY" - "$SIM_STATE" "$1" <<'PYEOF'
import fcntl, json, os, sys
d = sys.argv[1]
with open(os.path.join(d, "lock"), "a") as lk:
    fcntl.flock(lk, fcntl.LOCK_EX)
    s = json.load(open(os.path.join(d, "state.json")))
    exec(sys.argv[2])
    json.dump(s, open(os.path.join(d, "state.json.tmp"), "w"))
    os.rename(os.path.join(d, "state.json.tmp"), os.path.join(d, "state.json"))
PYEOF
}
