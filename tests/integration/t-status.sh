#!/bin/bash
# `devopslab status`: a journal written in the documented format (docs/plan.md)
# against the plan: done (same params hash), changed (other hash), pending;
# a torn last record is ignored with a warning; a corrupt journal is an error.
. "$TOP/tests/lib.sh"

ex=$TOP/examples/homelab.yaml
j=$TESTTMP/journal

expect_exit 0 "$DEVOPSLAB" status --manifest "$ex" --journal "$j" --node devops-node-02
assert_contains "$OUT" "No journal at $j yet."
assert_contains "$OUT" "devops-node-02: 0 of 19 steps done, 0 changed, 19 pending"

# Five steps done, the sixth done with parameters that have since changed,
# then a power cut in the middle of the seventh record.
"$DEVOPSLAB" plan --manifest "$ex" --node devops-node-02 --json >"$TESTTMP/plan.json" 2>/dev/null
$PY - "$TESTTMP/plan.json" "$j" <<'PYEOF'
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
with open(sys.argv[2], "w") as f:
    for i, s in enumerate(steps[:6]):
        rec = {"v": 1, "id": s["id"], "phase": s["phase"], "node": s["node"],
               "time": "2026-11-25T05:%02d:00Z" % i, "status": "found" if i == 0 else "applied",
               "hash": s["params_hash"] if i < 5 else "0" * 64, "elapsed_ms": 10}
        f.write(json.dumps(rec, separators=(",", ":")) + "\n")
    f.write('{"v":1,"id":"%s","pha' % steps[6]["id"])
PYEOF
expect_exit 0 "$DEVOPSLAB" status --manifest "$ex" --journal "$j" --node devops-node-02
assert_contains "$OUT" "devops-node-02: 5 of 19 steps done, 1 changed, 13 pending"
assert_contains "$OUT" "warning: journal '$j' ends in an incomplete record"
assert_contains "$OUT" "   1. done     Verifying the bundle signature [node/devops-node-02/bundle/verify] found 2026-11-25T05:00:00Z"
assert_contains "$OUT" "   6. changed  Creating LVM volume group pve [node/devops-node-02/disk/lvm]"
assert_contains "$OUT" "   7. pending  Creating filesystems [node/devops-node-02/disk/filesystems]"
"$DEVOPSLAB" status --manifest "$ex" --journal "$j" --node devops-node-02 --json >"$TESTTMP/status.json" 2>/dev/null
$PY - "$TESTTMP/status.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
if (s["total"], s["done"], s["changed"], s["pending"]) != (19, 5, 1, 13): sys.exit("FAIL: counts %s" % s)
states = [x["state"] for x in s["steps"]]
if states != ["done"] * 5 + ["changed"] + ["pending"] * 13: sys.exit("FAIL: states %s" % states)
if s["steps"][1]["status"] != "applied" or s["steps"][1]["time"] != "2026-11-25T05:01:00Z": sys.exit("FAIL: record")
if s["steps"][10]["time"] is not None or not s["journal_exists"]: sys.exit("FAIL: pending step")
PYEOF
# Reading does not repair: the torn tail is still there (only a writer cuts it).
tail -c 5 "$j" | grep -q '"pha' || fail "status modified the journal"

# The same journal seen from another node's plan: none of its ids match.
expect_exit 0 "$DEVOPSLAB" status --manifest "$ex" --journal "$j" --node devops-node-03
assert_contains "$OUT" "devops-node-03: 0 of 19 steps done, 0 changed, 19 pending"

# A corrupt record in the middle is not guessed at.
{ head -n 2 "$j"; echo 'not json'; tail -n +3 "$j"; } >"$TESTTMP/corrupt"
expect_exit 1 "$DEVOPSLAB" status --manifest "$ex" --journal "$TESTTMP/corrupt" --node devops-node-02
assert_contains "$OUT" "$TESTTMP/corrupt: line 3: not valid JSON"

expect_exit 2 "$DEVOPSLAB" status --manifest "$ex" --journal "$j" --node nope
expect_exit 2 "$DEVOPSLAB" status --journal "$j"

expect_exit 0 "$DEVOPSLAB" --help
assert_contains "$OUT" "  status "
