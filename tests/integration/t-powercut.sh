#!/bin/bash
# Power cuts in the first-boot phase (docs/plan.md, "Power cuts"): the
# first node's firstboot of the example's topology against the simulators
# — three Proxmox VE nodes, a template on each, K3s (three servers behind
# kube-vip, two agents), Technitium DNS, the Traefik edge, the backup job,
# the verification — is killed with SIGKILL right after each of its journal
# checkpoints in turn (DEVOPSLAB_KILL_AFTER_RECORDS=k: the process kills
# itself once the k-th record is on disk), each run resuming the last.
# After every cut: nothing twice (each VM once on its node, K3s started at most once
# per guest, each backup job and Kubernetes object once, the zone's records
# each once). Then a run to the end passes the verification; its state
# equals that of an uninterrupted run of the same plan in a fresh world; a
# further run changes nothing. The count of kill points covered is printed.
# sanitizer: skip
# timeout: 1200
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

dns_edge_init
cat >>"$TESTTMP/cluster.yaml" <<'YAML'
backup:
  schedule: "02:30"
  storage: local
  keep: {daily: 7, weekly: 4}
YAML
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
FB_PIN=local

# A world: the three simulated nodes, the Kubernetes API, Technitium in
# dns-01, and the edge's stand-in, which serves the certificate the
# provisioner puts into the cluster once it is there.
world() { # NAME
	local inst=$TESTTMP/tn-$1 p
	# the last world's Kubernetes API and Technitium (with its knotd) go
	for p in ${K8S_PID:-} ${TN_PID_dns_01:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$TESTTMP/technitium-dns-01"
	mkdir -p "$inst" "$TESTTMP/edge-$1"
	sim_fresh "$1"
	SIM_TASK_MS=50 sim_start_all --guest-boot-ms 100 --technitium-dir "$inst"
	k8s_start --promote-ms 200 --ready-ms 100 --helm-ms 200 --traefik-chart 34.2.0
	technitium_start_installed dns-01 "$inst/dns-01"
	EDGE_PORT=$(free_port)
	bg_start "$PY" "$SIM/edge_https.py" --port "$EDGE_PORT" --cert "$TESTTMP/edge-$1/tls.crt" \
		--key "$TESTTMP/edge-$1/tls.key" --reload --route pve.home.arpa=200 --route dns.home.arpa=200 \
		--route traefik.home.arpa=401 >>"$TESTTMP/edge-$1.log" 2>&1
	bg_start "$PY" "$SIM/edge_secret_watch.py" "$SIM_STATE/k8s.json" "$TESTTMP/edge-$1"
	k3s_args
	ARGS=("${K3S[@]}" --k3s-timeout 60 --dns-password-file "$TESTTMP/dns.pw" --dns-timeout 60
		--dns-connect "dns-01=127.0.0.1:${TN_URL_dns_01##*:}" --dns-query "dns-01=127.0.0.1:$TN_DNS_PORT_dns_01"
		--edge-password-file "$TESTTMP/dash.pw" --edge-timeout 60 --edge-connect "127.0.0.1:$EDGE_PORT"
		--verify-timeout 60 --status-listen off)
}

# What the world holds, without what differs from run to run (UPIDs,
# times, generated identifiers): the VMs with their settings, the backup
# jobs, the Kubernetes objects' names, the zone's records, K3s's starts.
state_digest() { # NAME -> TESTTMP/digest-NAME.json
	"$PY" - "$SIM_STATE" "$TESTTMP/technitium-dns-01/technitium.json" "$TESTTMP/digest-$1.json" <<'PYEOF'
import json, re, sys
d, tn, out = sys.argv[1:4]
s = json.load(open(d + "/state.json"))
k = json.load(open(d + "/k8s.json"))
z = json.load(open(tn))
VOLATILE = {"vmgenid", "smbios1", "meta", "digest", "lock"}
def setting(key, val):  # a MAC Proxmox made up (its OUI BC:24:11: a template's NIC) differs each time
    return re.sub(r"=BC:24:11:[0-9A-F:]{8},", "=BC:24:11:*,", val) if key.startswith("net") else val
vms = {"%s/%s" % (n, v): {key: setting(key, val) for key, val in c["conf"].items() if key not in VOLATILE}
       for n, dd in s["guest"]["vms"].items() for v, c in dd.items()}
jobs = {i: {key: val for key, val in j.items() if key not in ("next-run",)} for i, j in s["guest"].get("jobs", {}).items()}
records = sorted((zn, name, r["type"], json.dumps(r.get("rData"), sort_keys=True))
                 for zn, zz in z["zones"].items() for name, rs in zz["records"].items() for r in rs if r["type"] != "SOA")
starts = sorted(o["vm"] for o in k["starts"].values())
# pods and events are the simulated controllers' own, with generated names
objects = sorted(o for o in k["objects"] if not o.startswith(("core/pods/", "core/events/")))
json.dump({"vms": vms, "jobs": jobs, "objects": objects, "records": records, "k3s_starts": starts,
           "nodes": sorted(k["nodes"])}, open(out, "w"), indent=1, sort_keys=True)
PYEOF
}

# Nothing twice, after any cut: each VM name once in the cluster, K3s
# started at most once per guest, the zone's records each once.
no_duplicates() { # WHEN
	local out
	out=$("$PY" - "$SIM_STATE" "$TESTTMP/technitium-dns-01/technitium.json" <<'PYEOF'
import json, os, sys
from collections import Counter
d, tn = sys.argv[1:3]
s = json.load(open(d + "/state.json"))
# a template has one copy per node under the same name
names = Counter((n, c["conf"].get("name")) for n, dd in s["guest"]["vms"].items() for c in dd.values())
bad = ["VM %s on %s %d times" % (n[1], n[0], c) for n, c in names.items() if c > 1]
if os.path.exists(d + "/k8s.json"):
    k = json.load(open(d + "/k8s.json"))
    bad += ["K3s started %d times in %s" % (c, v) for v, c in Counter(o["vm"] for o in k["starts"].values()).items() if c > 1]
if os.path.exists(tn):
    z = json.load(open(tn))
    recs = Counter((zn, name, r["type"], json.dumps(r.get("rData"), sort_keys=True))
                   for zn, zz in z["zones"].items() for name, rs in zz["records"].items() for r in rs)
    bad += ["record %s %d times" % (r[:3], c) for r, c in recs.items() if c > 1]
print("; ".join(bad) or "ok")
PYEOF
)
	[ "$out" = ok ] || fail "after $1: $out"
}

world cut
fb_bg pve2 "${ARGS[@]}"
fb_bg pve3 "${ARGS[@]}"
J=$TESTTMP/journal-pve1
k=0 runs=0 t0=$(date +%s)
while :; do
	k=$((k + 1))
	fb_cmd pve1 --journal "$J" "${ARGS[@]}"
	RC=0
	# through sh, which tells of the kill in the run's own output
	DEVOPSLAB_KILL_AFTER_RECORDS=$k sh -c '"$@"' sh "${FB[@]}" >"$TESTTMP/cut-$k.out" 2>&1 || RC=$?
	runs=$((runs + 1))
	n=$(grep -c . "$J" 2>/dev/null || echo 0)
	if [ "$RC" = 137 ]; then
		[ "$n" = "$k" ] || { cat "$TESTTMP/cut-$k.out" >&2; fail "killed at checkpoint $k with $n records"; }
		no_duplicates "the cut at checkpoint $k"
		continue
	fi
	[ "$RC" = 0 ] || { cat "$TESTTMP/cut-$k.out" >&2; fail "run $runs (cut at $k) exited $RC"; }
	break
done
points=$((k - 1))
echo "powercut: $points kill points covered (every checkpoint of pve1's plan, $n records), $runs runs, $(( $(date +%s) - t0 )) s"
grep -q "answered as planned" "$TESTTMP/cut-$k.out" || fail "the last run did not verify"
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
no_duplicates "the last run"
[ "$points" -ge 30 ] || fail "only $points kill points: the plan was not covered"
state_digest cut
cp "$TESTTMP/technitium-dns-01/technitium.json" "$TESTTMP/technitium-cut.json"

# Converged: a further run changes nothing.
before=$(mutations) kbefore=$(k8s_mutations)
fb pve1 --journal "$J" "${ARGS[@]}"
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run after the cuts exited $RC"; }
assert_eq "$before" "$(mutations)" "mutating Proxmox requests of the run after the cuts"
assert_eq "$kbefore" "$(k8s_mutations)" "mutating Kubernetes requests of the run after the cuts"

# The same plan without a cut, in a fresh world: the same state.
world whole
fb_bg pve2 "${ARGS[@]}"
fb_bg pve3 "${ARGS[@]}"
fb pve1 --journal "$TESTTMP/journal-whole" "${ARGS[@]}"
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the uninterrupted run exited $RC"; }
fb_wait pve2; fb_formed pve2
fb_wait pve3; fb_formed pve3
state_digest whole
"$PY" - "$TESTTMP/digest-cut.json" "$TESTTMP/digest-whole.json" <<'PYEOF' || fail "the state after the cuts differs from an uninterrupted run's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for key in sorted(set(a) | set(b)):
    if a.get(key) != b.get(key):
        if isinstance(a.get(key), dict):
            for x in sorted(set(a[key]) | set(b.get(key, {}))):
                if a[key].get(x) != b.get(key, {}).get(x):
                    print("%s %s: after cuts %s, uninterrupted %s" % (key, x, a[key].get(x), b.get(key, {}).get(x)))
        else:
            print("%s: after cuts %s, uninterrupted %s" % (key, a.get(key), b.get(key)))
        sys.exit(1)
PYEOF
sim_schema_check || fail "schema check"
