#!/bin/bash
# Disaster recovery of a whole node (docs/operations.md, "Recovering a
# node"), end to end against the simulators: the example's topology —
# three Proxmox VE nodes, a template on each, K3s (three servers with
# embedded etcd behind kube-vip, two agents), Technitium DNS (the primary
# on pve2, the secondary on pve3), the Traefik edge and the nightly backup
# job onto a shared NFS storage — is brought up; the backup job runs; then
# pve2 dies mid-life (its simulator stops, its VMs go dark) and the lab
# runs on (Proxmox quorate with 2 of 3, the Kubernetes API with 2 of 3
# etcd voters, the secondary answering for the zone). pve2 is rebuilt (a
# fresh simulator: new certificate, no cluster, its disks gone while the
# cluster keeps its VM configurations) and its own firstboot recovers it:
# `plan --recover` first shows what it will do; then the stale member is
# removed and it rejoins, the template is made anew, the DNS primary and
# the K3s agent come back from their latest backups, the etcd member is
# removed through a running server before a new server-02 joins, the
# secondary is re-synchronised. The lab ends as it was: the same cluster
# members, VMs (settings), K3s nodes and etcd members, DNS zone. Proxmox
# quorum and etcd quorum (never more than 3 members) hold after every
# request the simulators recorded. A second death of pve2, this time with
# its backups deleted, recovers the same lab by re-creating every VM; the
# primary's zone is made again and the secondary re-synchronised. Last,
# the first node dies and is rebuilt: it joins the running cluster (its
# CA-signed certificate installed again after the join), its K3s server
# joins the running etcd instead of initialising one, its agent comes back
# from its backup. A further run changes nothing, after each recovery.
# timeout: 900
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"
command -v kdig >/dev/null || fail "kdig is missing (scripts/install-deps.sh installs knot-dnsutils)"

dns_edge_init
# the example's DNS: a primary on pve2 and a secondary on pve3; backups
# onto the NFS storage "nas" the operator made in Proxmox
"$PY" - "$TESTTMP/cluster.yaml" <<'PYEOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace('    name: "dns-{n:02}"\n    count: 1\n', '    name: "dns-{n:02}"\n    count: 2\n', 1)
s = s.replace("    target_node: [pve2]\n", "    target_node: [pve2, pve3]\n", 1)
s = s.replace("  primary: dns-01\n", "  primary: dns-01\n  secondary: dns-02\n", 1)
s += """backup:
  schedule: "02:30"
  storage: nas
  keep: {daily: 7, weekly: 4}
"""
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
grep -q "count: 2" "$TESTTMP/cluster.yaml" && grep -q "secondary: dns-02" "$TESTTMP/cluster.yaml" ||
	fail "the manifest edit did not take"
FB_PIN=local
INST=$TESTTMP/tn-installed
MAP=$TESTTMP/tn-address-map
mkdir -p "$INST" "$TESTTMP/edge"
: >"$MAP"

# A Technitium server in a DNS VM: started (again) from the state its disk
# holds; the address map tells each server's knotd where the other is.
tn_up() { # NAME
	technitium_start_installed "$1" "$INST/$1" --address-map-file "$MAP"
	printf '10.0.0.41=127.0.0.1:%s\n10.0.0.42=127.0.0.1:%s\n' "${TN_DNS_PORT_dns_01:-1}" \
		"${TN_DNS_PORT_dns_02:-1}" >"$MAP"
}
tn_down() { # NAME
	local var=TN_PID_${1//-/_}
	[ -n "${!var:-}" ] || return 0
	kill "${!var}" 2>/dev/null || true
	wait "${!var}" 2>/dev/null || true
}
args() {
	k3s_args
	ARGS=("${K3S[@]}" --k3s-timeout 60 --dns-password-file "$TESTTMP/dns.pw" --dns-timeout 60
		--dns-connect "dns-01=127.0.0.1:${TN_URL_dns_01##*:}" --dns-connect "dns-02=127.0.0.1:${TN_URL_dns_02##*:}"
		--dns-query "dns-01=127.0.0.1:$TN_DNS_PORT_dns_01" --dns-query "dns-02=127.0.0.1:$TN_DNS_PORT_dns_02"
		--edge-password-file "$TESTTMP/dash.pw" --edge-timeout 60 --edge-connect "127.0.0.1:$EDGE_PORT"
		--verify-timeout 60)
}

SIM_TASK_MS=50 sim_start_all --guest-boot-ms 100 --technitium-dir "$INST" --storage-preset installer-nas
k8s_start --promote-ms 200 --ready-ms 100 --helm-ms 200 --traefik-chart 34.2.0
tn_up dns-01
tn_up dns-02
EDGE_PORT=$(free_port)
bg_start "$PY" "$SIM/edge_https.py" --port "$EDGE_PORT" --cert "$TESTTMP/edge/tls.crt" \
	--key "$TESTTMP/edge/tls.key" --reload --route pve.home.arpa=200 --route dns.home.arpa=200 \
	--route traefik.home.arpa=401 >>"$TESTTMP/edge.log" 2>&1
bg_start "$PY" "$SIM/edge_secret_watch.py" "$SIM_STATE/k8s.json" "$TESTTMP/edge"
args

# ---- the lab comes up ---------------------------------------------------------
t0=$(date +%s)
fb_bg pve2 "${ARGS[@]}" --journal "$TESTTMP/journal-pve2"
fb_bg pve3 "${ARGS[@]}" --journal "$TESTTMP/journal-pve3"
fb pve1 "${ARGS[@]}" --journal "$TESTTMP/journal-pve1"
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the first node's firstboot exited $RC"; }
grep -q "answered as planned" <<<"$OUT" || { echo "$OUT" >&2; fail "the lab did not verify"; }
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
echo "dr: the lab is up ($(( $(date +%s) - t0 )) s)"

# The lab as it is, for comparing: cluster members, the VMs with their
# settings (without what Proxmox makes anew: disk volume names' owners,
# generation ids, MACs Proxmox made up for templates), K3s nodes and etcd
# members, the zone's records on the primary and on the secondary.
snapshot() { # NAME
	"$PY" - "$SIM_STATE" "$TESTTMP/technitium-dns-01/technitium.json" "$TN_DNS_PORT_dns_01" "$TN_DNS_PORT_dns_02" \
		"$TESTTMP/lab-$1.json" <<'PYEOF'
import json, re, subprocess, sys, time
d, tn1, port1, port2, out = sys.argv[1:6]
s = json.load(open(d + "/state.json"))
k = json.load(open(d + "/k8s.json"))
VOLATILE = {"vmgenid", "smbios1", "meta", "digest", "lock"}
def setting(key, val):  # disks name their storage's volume: the same name is the same disk
    return re.sub(r"=BC:24:11:[0-9A-F:]{8},", "=BC:24:11:*,", val) if key.startswith("net") else val
# a template has a copy on every node under one name
vms = {}
for n, dd in s["guest"]["vms"].items():
    for v, c in dd.items():
        vms["%s@%s" % (c["conf"].get("name"), n)] = {
            "vmid": int(v), "running": bool(c.get("running")),
            "conf": {key: setting(key, val) for key, val in c["conf"].items() if key not in VOLATILE}}
members = sorted(list(s["clusters"].values())[0]["members"])
now = time.time()
# the zone as each server's DNS answers it (knotd; the secondary's by AXFR
# from the primary), for every name and type the primary holds
z = json.load(open(tn1))["zones"]
names = sorted({(n, r["type"]) for zz in z.values() for n, rs in zz["records"].items() for r in rs
                if r["type"] not in ("SOA",)})
def answers(port):
    res = {}
    for n, t in names:
        a = subprocess.run(["kdig", "@127.0.0.1", "-p", port, "+time=2", "+retry=1", "+short", n, t],
                           capture_output=True, text=True).stdout.split("\n")
        res["%s %s" % (n, t)] = sorted(x for x in a if x)
    return res
json.dump({"members": members, "vms": vms, "k3s_nodes": sorted(k["nodes"]),
           "etcd": sorted(m for m, v in k["members"].items() if v["voting_at"] <= now),
           "zone_primary": answers(port1), "zone_secondary": answers(port2)},
          open(out, "w"), indent=1, sort_keys=True)
PYEOF
}
same_lab() { # A B
	"$PY" - "$TESTTMP/lab-$1.json" "$TESTTMP/lab-$2.json" <<'PYEOF' || fail "the lab after the recovery ($2) differs from before ($1)"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
bad = False
for key in sorted(set(a) | set(b)):
    x, y = a.get(key), b.get(key)
    if x == y:
        continue
    bad = True
    if isinstance(x, dict) and isinstance(y, dict):
        for i in sorted(set(x) | set(y)):
            if x.get(i) != y.get(i):
                print("%s %s: before %s, after %s" % (key, i, x.get(i), y.get(i)))
    else:
        print("%s: before %s, after %s" % (key, x, y))
sys.exit(1 if bad else 0)
PYEOF
}
snapshot up
"$PY" - "$TESTTMP/lab-up.json" <<'PYEOF' || fail "the lab is not the example's"
import json, sys
lab = json.load(open(sys.argv[1]))
want_vms = {"tpl@pve1", "tpl@pve2", "tpl@pve3", "k3s-server-01@pve1", "k3s-server-02@pve2", "k3s-server-03@pve3",
            "k3s-worker-01@pve1", "k3s-worker-02@pve2", "dns-01@pve2", "dns-02@pve3"}
if set(lab["vms"]) != want_vms: sys.exit("VMs %s" % sorted(lab["vms"]))
if lab["members"] != ["pve1", "pve2", "pve3"]: sys.exit("members %s" % lab["members"])
if lab["etcd"] != ["k3s-server-01", "k3s-server-02", "k3s-server-03"]: sys.exit("etcd %s" % lab["etcd"])
if len(lab["k3s_nodes"]) != 5: sys.exit("K3s nodes %s" % lab["k3s_nodes"])
if lab["zone_primary"] != lab["zone_secondary"] or len(lab["zone_primary"]) < 10 or \
        lab["zone_primary"].get("k3s-server-02.home.arpa A") != ["10.0.0.32"]:
    sys.exit("zones %s / %s" % (lab["zone_primary"], lab["zone_secondary"]))
PYEOF
serial0=$(tn_dig "$TN_DNS_PORT_dns_02" home.arpa SOA | awk '{print $3}')

# The nightly backup runs (pvescheduler's part, done by the simulator).
"$PY" "$SIM/pve_sim_jobs.py" --state "$SIM_STATE" --run-job devopslab >"$TESTTMP/backup-run.out" 2>&1 ||
	{ cat "$TESTTMP/backup-run.out" >&2; fail "the backup job did not run"; }
nb=$(sim_query 'sum(1 for v in s["guest"]["vols"]["@shared"]["nas"].values() if v["content"] == "backup")')
assert_eq 7 "$nb" "backups on nas (one per VM)"

# ---- pve2 dies -------------------------------------------------------------------
# The box loses power: its simulator stops, its VMs (and what runs in them)
# go dark. The lab runs on.
power_off() { # NODE
	sim_stop "$1"
	sim_edit "
for vm in s['guest']['vms']['$1'].values():
    vm['running'] = False
"
}
power_off pve2
tn_down dns-01
sleep 1 # the members' heartbeats go stale
# pve1's API: quorate, pve2 listed and offline
pve_get() { # NODE PATH -> JSON data
	local t
	t=$(curl -sS -k --data-urlencode username=root@pam --data-urlencode "password=$(cat "$TESTTMP/root.pw")" \
		"https://127.0.0.1:${SIM_PORT[$1]}/api2/json/access/ticket" | jq -r .data.ticket)
	curl -sS -k -b "PVEAuthCookie=$t" "https://127.0.0.1:${SIM_PORT[$1]}/api2/json$2" | jq -c .data
}
assert_eq '[1,"pve2:0"]' "$(pve_get pve1 /cluster/status |
	jq -c '[(.[] | select(.type == "cluster") | .quorate), (.[] | select(.name == "pve2") | "\(.name):\(.online)")]')" \
	"pve1's view while pve2 is dead (quorate; pve2 offline)"
assert_eq "10.0.0.30" "$(tn_dig "$TN_DNS_PORT_dns_02" anything.home.arpa A)" "the secondary answers while the primary is dead"
kv=$(k8s_voting)
assert_eq "['k3s-server-01', 'k3s-server-02', 'k3s-server-03']" "$kv" "etcd members while server-02 is dead"

# The rebuilt NODE's own firstboot: it exits 0 and says each WANT; the lab
# then is as it was when it came up (snapshot LABEL), and Proxmox's and
# etcd's quorum held in every request recorded so far (never more etcd
# members than servers).
recover() { # NODE JOURNAL LABEL WANT...
	local node=$1 journal=$2 label=$3 want t0
	shift 3
	args
	t0=$(date +%s)
	fb "$node" "${ARGS[@]}" --journal "$journal"
	[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "$label: the rebuilt $node's firstboot exited $RC"; }
	echo "dr: $label: $node recovered ($(( $(date +%s) - t0 )) s)"
	for want in "$@"; do
		grep -qF "$want" <<<"$OUT" || { echo "$OUT" >&2; fail "$label: the recovery did not say: $want"; }
	done
	snapshot "$label"
	same_lab up "$label"
	"$PY" "$SIM/quorum_check.py" --max-etcd 3 "$PVE_SIM_RECORD_DIR"/*.jsonl "$K8S_SIM_RECORD_DIR"/*.jsonl \
		>"$TESTTMP/quorum-$label.out" 2>&1 || { cat "$TESTTMP/quorum-$label.out" >&2; fail "$label: quorum was lost"; }
	cat "$TESTTMP/quorum-$label.out"
}
# Converged: the same run again changes nothing.
converged() { # NODE JOURNAL
	local before kbefore
	before=$(mutations) kbefore=$(k8s_mutations)
	fb "$1" "${ARGS[@]}" --journal "$2"
	[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the re-run of the recovered $1 exited $RC"; }
	assert_eq "$before" "$(mutations)" "mutating Proxmox requests of $1's re-run"
	assert_eq "$kbefore" "$(k8s_mutations)" "mutating Kubernetes requests of $1's re-run"
}

# ---- pve2 is rebuilt ----------------------------------------------------------------
# The same box reinstalled from the stick: a fresh simulator (new
# certificate, in no cluster, its local disks empty); the cluster still
# lists it and keeps its VMs' configurations.
sim_start pve2 --fresh --guest-boot-ms 100 --technitium-dir "$INST" --storage-preset installer-nas
assert_eq True "$(sim_query 'all(vm.get("lost_disks") for vm in s["guest"]["vms"]["pve2"].values())')" \
	"pve2's VMs' disks are gone"

# What recovery will do, before it does it.
"$DEVOPSLAB" plan --manifest "$TESTTMP/cluster.yaml" --recover pve2 >"$TESTTMP/recover-plan.txt" 2>/dev/null ||
	fail "plan --recover pve2"
for want in "Recovery plan for node pve2 of cluster lab" "cluster-wide (run by pve2)" \
	"recover: a running member removes the dead pve2" "newest backup on storage nas" \
	"its old node and etcd member are removed through a running server" "re-synchronised from the primary"; do
	assert_contains "$TESTTMP/recover-plan.txt" "$want"
done

# The Technitium data on dns-01's disk comes back with its backup; the
# server starts from it (its VM is restored before the DNS steps run).
tn_up dns-01
recover pve2 "$TESTTMP/journal-pve2-rebuilt" recovered "this node was rebuilt" "recovering 'pve2'" \
	"removing the old entry through 'pve1'" "template tpl (VMID 9001): its disk is gone" "restoring dns-01 (VMID 501)" \
	"restoring k3s-worker-02 (VMID 212)" "k3s-server-02 (VMID 202): no backup of it" "removing the stale node" \
	"answered as planned" "node 'pve2' is recovered"
assert_eq 2 "$(sim_query 'len(s["guest"]["restores"])')" "restores (dns-01 and k3s-worker-02)"
assert_eq "recovered" "$(jq -r 'select(.id == "node/pve2/recovery") | .result.state' "$TESTTMP/journal-pve2-rebuilt" | tail -1)" \
	"the journal's recovery record"
serial1=$(tn_dig "$TN_DNS_PORT_dns_01" home.arpa SOA | awk '{print $3}')
assert_eq "$serial1" "$(tn_dig "$TN_DNS_PORT_dns_02" home.arpa SOA | awk '{print $3}')" "the secondary's serial after the recovery"

# the quorum check fails when it should: a record of a cluster without quorum, and
# one of etcd with a fourth member
printf '%s\n' '{"node": "pve1", "method": "GET", "path": "/x", "time": 1, "quorum": {"cluster": "lab", "members": 3, "online": 1, "quorate": false}}' \
	>"$TESTTMP/bad-pve.rec"
printf '%s\n' '{"method": "GET", "path": "/y", "time": 1, "etcd": {"members": 4, "voting": 3, "up": 3, "quorate": true, "cluster": true}}' \
	>"$TESTTMP/bad-k8s.rec"
expect_exit 1 "$PY" "$SIM/quorum_check.py" "$TESTTMP/bad-pve.rec"
assert_contains "$OUT" "had 1 of 3 members online"
expect_exit 1 "$PY" "$SIM/quorum_check.py" --max-etcd 3 "$TESTTMP/bad-k8s.rec"
assert_contains "$OUT" "etcd had 4 members"

converged pve2 "$TESTTMP/journal-pve2-rebuilt"

# ---- pve2 dies again, and its backups are gone too -----------------------------------
# Before, a record made by hand on the primary reaches the secondary (the
# zone's serial moves past what the provisioner's zone ever has): the
# rebuilt primary starts lower, which a refresh would never transfer.
tn_vm dns-01 10.0.0.41
tn_login "$(cat "$TESTTMP/dns.pw")"
tn_ok /api/zones/records/add zone=home.arpa domain=handmade.home.arpa type=A ipAddress=10.0.0.99 ttl=300 >/dev/null
TN_CURL_OPTS=()
for _ in $(seq 100); do
	[ "$(tn_dig "$TN_DNS_PORT_dns_02" handmade.home.arpa A)" = 10.0.0.99 ] && break
	sleep 0.1
done
assert_eq 10.0.0.99 "$(tn_dig "$TN_DNS_PORT_dns_02" handmade.home.arpa A)" "the hand-made record on the secondary"
serial_hand=$(tn_dig "$TN_DNS_PORT_dns_02" home.arpa SOA | awk '{print $3}')
power_off pve2
tn_down dns-01
sim_edit "
nas = s['guest']['vols']['@shared']['nas']
for k in [k for k, v in nas.items() if v.get('vmid') in (501, 212)]:
    del nas[k]
"
sim_start pve2 --fresh --guest-boot-ms 100 --technitium-dir "$INST" --storage-preset installer-nas
# dns-01 is made anew: an empty disk, Technitium to install
rm -rf "$TESTTMP/technitium-dns-01" "$INST/dns-01"
tn_up dns-01
recover pve2 "$TESTTMP/journal-pve2-again" again "dns-01 (VMID 501): no backup of it on nas" \
	"k3s-worker-02 (VMID 212): no backup of it on nas" "dns-01: installing" "dns-01: creating the primary zone home.arpa" \
	"dns-02: zone home.arpa serial $serial_hand, the primary's" "dns-02: re-synchronising zone home.arpa from the primary" \
	"answered as planned"
serial2=$(tn_dig "$TN_DNS_PORT_dns_01" home.arpa SOA | awk '{print $3}')
assert_eq "$serial2" "$(tn_dig "$TN_DNS_PORT_dns_02" home.arpa SOA | awk '{print $3}')" "the secondary's serial after the second recovery"
# re-synchronised: the hand-made record is gone there too (the wildcard answers)
assert_eq 10.0.0.30 "$(tn_dig "$TN_DNS_PORT_dns_02" handmade.home.arpa A)" "the secondary's answer for the hand-made name"
[ "$serial2" -lt "$serial_hand" ] || fail "the re-created primary's serial $serial2 is not below the secondary's $serial_hand"
echo "dr: serials $serial0 (before), $serial1 (restored), $serial_hand (a record by hand), $serial2 (re-created)"

# ---- the first node dies ---------------------------------------------------------------
# pve1 created the cluster and initialised K3s: rebuilt, it must join both
# instead (never a second cluster, never a second cluster-init), restore
# its agent from the backup and make its etcd member anew.
power_off pve1
sim_start pve1 --fresh --guest-boot-ms 100 --technitium-dir "$INST" --storage-preset installer-nas
recover pve1 "$TESTTMP/journal-pve1-rebuilt" first "this first node was reinstalled, joining it again" \
	"installing a certificate signed by the cluster CA on 'pve1'" "restoring k3s-worker-01 (VMID 211)" \
	"k3s-server-01 (VMID 201): no backup of it" \
	"this first server was rebuilt; it joins the running cluster through https://10.0.0.5:6443" "answered as planned"
assert_eq 1 "$(sim_query 'len(s["clusters"])')" "clusters after the first node's rebuild"
converged pve1 "$TESTTMP/journal-pve1-rebuilt"

sim_schema_check || fail "schema check"
