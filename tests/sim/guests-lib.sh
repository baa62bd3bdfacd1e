# tests/sim/guests-lib.sh — sourced by the guest tests after cluster-lib.sh:
#   guests_init   sim_init 3 and a manifest with a template on every node and
#                 four VMs (three linked clones with payload files, one full
#                 clone on virtio0), the assets in $A, the SSH key in $KEY
#   vms           every guest on the simulated nodes: (node, vmid, name)
#   conf NODE VMID KEY   a configuration value as the API shows it
#   sim_edit PYTHON      change the simulated world's state (under its lock)
# and a small client of the simulated API (curl, trusting each node's own
# certificate; $TICKET/$CSRF per node once `login NODE` ran):
#   api METHOD NODE PATH [curl args]   -> $CODE, $REASON, $BODY
#   call METHOD NODE PATH K=V...       a form (or, for GET/DELETE, a query)
#   jget EXPR            a Python expression over d, the last answer's JSON
#   expect CODE [REASON] the last answer's status (and reason)
#   upid, task METHOD NODE PATH K=V..., task_wait UPID -> $EXIT; tlog (its log)
#   login NODE           root@pam's ticket on NODE
#   booted VMID [NODE]   ping the VM's agent until it answers (NODE: pve1)
#   agent_run NODE VMID [--input DATA] ARGV...   agent/exec, then exec-status
#                        until it ends -> $GCODE, $GOUT, $GERR
#   guest_file NODE VMID PATH FILE [MODE]  FILE's bytes in the VM's guestfs
#                        at PATH, as payload.sh lays a payload file

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

# ---- a small API client: curl, trusting each node's own certificate ----------
declare -gA TICKET CSRF
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

booted() { # VMID [NODE]: ping its agent until it answers (the guest is up)
	local i n=${2:-pve1}
	for i in $(seq 100); do
		call POST "$n" "/nodes/$n/qemu/$1/agent/ping"
		[ "$CODE" = 200 ] && return 0
		expect 500 "QEMU guest agent is not running"
		sleep 0.1
	done
	fail "VM $1's agent did not answer within 10 s"
}
agent_run() { # NODE VMID [--input DATA] ARGV... -> $GCODE, $GOUT, $GERR
	local n=$1 v=$2 args=() a pid; shift 2
	# (not call: its form() takes one line per value, and the input may have more)
	if [ "$1" = --input ]; then args+=(--data-urlencode "input-data=$2"); shift 2; fi
	for a in "$@"; do args+=(--data-urlencode "command=$a"); done
	api POST "$n" "/nodes/$n/qemu/$v/agent/exec" "${args[@]}"
	expect 200
	pid=$(jget 'd["data"]["pid"]')
	for _ in $(seq 600); do
		api GET "$n" "/nodes/$n/qemu/$v/agent/exec-status" -G --data "pid=$pid"
		expect 200
		[ "$(jget 'd["data"]["exited"]')" = 1 ] && break
		sleep 0.05
	done
	GCODE=$(jget 'd["data"].get("exitcode")')
	GOUT=$(jget 'd["data"].get("out-data", "")')
	GERR=$(jget 'd["data"].get("err-data", "")')
}
guest_file() { # NODE VMID PATH FILE [MODE]
	sim_edit "import base64, hashlib
b = open('$4', 'rb').read()
s['guest']['vms']['$1']['$2'].setdefault('guestfs', {})['$3'] = {
    'mode': '${5:-0644}', 'sha256': hashlib.sha256(b).hexdigest(), 'size': len(b),
    'b64': base64.b64encode(b).decode(), 'from': 'payload'}"
}
