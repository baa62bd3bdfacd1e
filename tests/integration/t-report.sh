#!/bin/bash
# The final report (docs/operations.md, "The report"): three firstboot runs
# from a signed bundle against three simulated Proxmox VE nodes, then
# checked from the outside:
#   - report.json passes docs/report.schema.json; outcome, every step of the
#     plan with its journal state and timing, the consoles of every node,
#     where the root password lives (its name, never its value), the
#     bundle's digest equal to sha256sum of the bundle's own SHA256SUMS;
#   - inventory.yml is read by Ansible itself (ansible-inventory --list):
#     the nodes in proxmox_nodes with their addresses;
#   - `devopslab report` prints it again (text, --json identical to the file);
#     no report, or a corrupt one, is an error that says so;
#   - a failing run still writes its report: outcome failed, the step and
#     the error; the re-run that converges writes outcome complete;
#   - no secret value in any file of the report directory.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

command -v ansible-inventory >/dev/null || fail "ansible-inventory missing (scripts/install-deps.sh installs ansible-core)"

sim_init 3
sim_bundle
# the digest the report must name: SHA-256 of the bundle's signed SHA256SUMS, by tar and sha256sum
sums=$(tar --zstd -xOf "$TESTTMP/cluster.bundle" SHA256SUMS | sha256sum | cut -d' ' -f1)

# No report yet: an error that says so.
expect_exit 1 "$DEVOPSLAB" report --report-dir "$TESTTMP/report-pve1"
assert_contains "$OUT" "no report in '$TESTTMP/report-pve1' yet"

# A failing join: pve3's run fails and still reports.
sim_start_all
faults '[{"node": "pve3", "method": "POST", "path": "^/cluster/config/join$", "action": "task-fail",
  "message": "simulated: corosync failed to start", "times": 1}]'
fb_bg pve1 --journal "$TESTTMP/j1"; fb_bg pve2 --journal "$TESTTMP/j2"; fb_bg pve3 --journal "$TESTTMP/j3"
fb_wait pve3
assert_eq 1 "$RC" "firstboot pve3 with a failing join task"
assert_contains "$OUT" "Outcome: FAILED: "
assert_contains "$OUT" "failed at node/pve3/cluster/join: task clusterjoin on 'pve3' failed: simulated: corosync failed to start"
"$PY" - "$TESTTMP/report-pve3/report.json" <<'PYEOF' || fail "the failed run's report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "failed", r["outcome"]
assert r["stopped_at"]["step"] == "node/pve3/cluster/join", r["stopped_at"]
assert "corosync failed to start" in r["stopped_at"]["message"], r["stopped_at"]
st = {s["id"]: s["state"] for s in r["steps"]}
assert st["node/pve3/cluster/join"] == "failed", st
fb = [s for s in r["steps"] if s["phase"] == "firstboot"]
assert r["totals"]["done"] + r["totals"]["not_done"] == r["totals"]["steps"] == len(fb), r["totals"]
PYEOF
fb pve3 --journal "$TESTTMP/j3"
assert_eq 0 "$RC" "firstboot pve3 re-run"
assert_contains "$OUT" "Outcome: complete: "
fb_wait pve1; fb_formed pve1
fb_wait pve2; assert_eq 0 "$RC" "firstboot pve2"

# The first node's report, judged from outside.
R=$TESTTMP/report-pve1
for f in report.json report.txt inventory.yml; do [ -s "$R/$f" ] || fail "no $f in the report directory"; done
"$PY" - "$R/report.json" "$TOP/docs/report.schema.json" "$sums" "$TESTTMP/j1" <<'PYEOF' || fail "the report"
import json, sys, jsonschema
r = json.load(open(sys.argv[1]))
jsonschema.validate(r, json.load(open(sys.argv[2])))
assert r["cluster"] == "lab" and r["node"] == "pve1" and r["domain"] == "home.arpa", r
assert r["outcome"] in ("complete", "incomplete"), r["outcome"]
assert r["bundle"] == {"sha256sums_sha256": sys.argv[3]}, (r["bundle"], sys.argv[3])
urls = {c["url"] for c in r["consoles"]}
assert urls == {"https://10.0.0.1%d:8006/" % i for i in (1, 2, 3)}, urls
creds = r["credentials"]
assert creds == [{"what": "Proxmox VE web console and SSH of every node", "user": "root@pam", "secret": "pw",
                  "file": None, "kubernetes_secret": None, "key": None}], creds
assert r["kubeconfig"] is None and r["dns"] is None, r
# the verification step's table, as it printed it
assert r["verification"] == [{"check": "quorum", "target": "lab", "ok": True,
                              "answer": "quorate, 3 of 3 nodes online"}], r["verification"]
# the steps: the plan's, in its order, each with the journal's state and timing
journal = {}
for line in open(sys.argv[4]):
    rec = json.loads(line)
    journal[rec["id"]] = rec
ids = [s["id"] for s in r["steps"]]
assert ids[:2] == ["node/pve1/bundle/verify", "node/pve1/identify"] and ids[-1] == "cluster/verify", ids
for s in r["steps"]:
    rec = journal.get(s["id"])
    if rec is None:
        assert s["state"] in ("pending", "not-run") and s["elapsed_ms"] is None, s
    else:
        # this run's step: its own timing (taken after the journal's record was written)
        assert s["state"] == "done" and s["elapsed_ms"] >= rec["elapsed_ms"] and s["time"] == rec["time"], (s, rec)
        assert s["status"] == rec["status"], (s, rec)
assert "node/pve1/cluster/create" in journal and r["totals"]["done"] == len(journal), (r["totals"], len(journal))
assert r["inventory_file"] == sys.argv[1].rsplit("/", 1)[0] + "/inventory.yml", r["inventory_file"]
PYEOF

# Ansible reads the inventory.
ansible-inventory -i "$R/inventory.yml" --list >"$TESTTMP/inv.json" 2>"$TESTTMP/inv.err" ||
	{ cat "$TESTTMP/inv.err" >&2; fail "ansible-inventory refused the inventory"; }
grep -qi "warning" "$TESTTMP/inv.err" && { cat "$TESTTMP/inv.err" >&2; fail "ansible-inventory warned"; }
"$PY" - "$TESTTMP/inv.json" <<'PYEOF' || fail "the inventory as Ansible reads it"
import json, sys
inv = json.load(open(sys.argv[1]))
assert sorted(inv["proxmox_nodes"]["hosts"]) == ["pve1", "pve2", "pve3"], inv["proxmox_nodes"]
hv = inv["_meta"]["hostvars"]
for i in (1, 2, 3):
    h = hv["pve%d" % i]
    assert h["ansible_host"] == "10.0.0.1%d" % i and h["ansible_user"] == "root", h
    assert h["devopslab_cluster"] == "lab" and h["devopslab_domain"] == "home.arpa", h
PYEOF

# `devopslab report` prints it again.
expect_exit 0 "$DEVOPSLAB" report --report-dir "$R"
assert_contains "$OUT" "DevOpsLab report: cluster lab (home.arpa), run on pve1"
assert_contains "$OUT" "https://10.0.0.12:8006/"
assert_contains "$OUT" "secret 'pw' of the bundle's sealed secrets"
assert_contains "$OUT" "Bundle: SHA256SUMS sha256 $sums"
assert_contains "$OUT" "The plan as executed"
assert_contains "$OUT" "Verification: 1 of 1 checks answered as planned"
grep -qE "^ +17\. done +applied +[0-9.]+s +Creating Proxmox cluster lab \[node/pve1/cluster/create\]$" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the cluster-create line"; }
[ "$OUT" = "$(cat "$R/report.txt")" ] || fail "devopslab report differs from report.txt"
"$DEVOPSLAB" report --report-dir "$R" --json >"$TESTTMP/again.json"
"$PY" -c 'import json, sys; assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))' \
	"$TESTTMP/again.json" "$R/report.json" || fail "report --json differs from report.json"

# A corrupt report is an error, not a guess.
mkdir -p "$TESTTMP/bad"
printf '{"version": 1, "cluster": ' >"$TESTTMP/bad/report.json"
expect_exit 1 "$DEVOPSLAB" report --report-dir "$TESTTMP/bad"
assert_contains "$OUT" "is not a report of this version"
expect_exit 2 "$DEVOPSLAB" report --report-dir "$R" extra

# No secret value anywhere in the report directories.
pw=$(cat "$TESTTMP/root.pw")
grep -rqF "$pw" "$TESTTMP"/report-pve* && fail "the root password is in a report"
grep -rqF "$(cat "$TESTTMP/in/secret.key")" "$TESTTMP"/report-pve* && fail "the secret key is in a report"
sim_schema_check || fail "schema check"
