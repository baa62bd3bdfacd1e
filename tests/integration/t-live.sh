#!/bin/bash
# The live status page of a firstboot run (docs/operations.md, "Live
# status"), asked from outside while the run goes on and after it failed:
#   - /status.json passes docs/status.schema.json; while the cluster is being
#     created (a slow task) that step is "running" and named as the current
#     one; after the quorum wait fails, the run's state is failed, the step
#     failed with its error, the last log lines hold the error line;
#   - the HTML page shows the same (the failed step's row marked failed);
#   - read-only: POST is 405, another path 404; bound to the address given
#     (loopback) and nothing else;
#   - the root password is not on the page.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start_all
faults '[{"node": "pve1", "method": "POST", "path": "^/cluster/config$", "action": "task-slow", "delay_ms": 4000, "times": 1}]'
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# pve1 alone: the members never join, so the quorum wait fails after 3 s
fb_bg pve1 --status-listen "127.0.0.1:$PORT" --status-linger 60 --wait-quorum 3
on_exit 'kill ${FB_PID[pve1]} 2>/dev/null'

# While the create task runs: that step is running and current.
running=
for _ in $(seq 600); do
	if curl -sf "$URL/status.json" -o "$TESTTMP/running.json" &&
		"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if (d.get("current") or {}).get("id") == "node/pve1/cluster/create" else 1)' \
			"$TESTTMP/running.json"; then
		running=1
		break
	fi
	sleep 0.1
done
[ -n "$running" ] || { cat "$TESTTMP/fb-pve1.out" >&2; fail "never saw the create step running"; }
"$PY" - "$TESTTMP/running.json" "$TOP/docs/status.schema.json" <<'PYEOF' || fail "the running status"
import json, sys, jsonschema
d = json.load(open(sys.argv[1]))
jsonschema.validate(d, json.load(open(sys.argv[2])))
assert d["state"] == "running" and d["node"] == "pve1" and d["phase"] == "firstboot", d
st = {s["id"]: s["state"] for s in d["steps"]}
assert st["node/pve1/cluster/create"] == "running" and st["cluster/verify"] == "pending", st
PYEOF

# After the failure the page stays (--status-linger) with the outcome.
failed=
for _ in $(seq 900); do
	curl -sf "$URL/status.json" -o "$TESTTMP/failed.json" && grep -q '"state":"failed"' "$TESTTMP/failed.json" &&
		{ failed=1; break; }
	sleep 0.1
done
[ -n "$failed" ] || { cat "$TESTTMP/fb-pve1.out" >&2; fail "the status never said failed"; }
"$PY" - "$TESTTMP/failed.json" "$TOP/docs/status.schema.json" <<'PYEOF' || fail "the failed status"
import json, sys, jsonschema
d = json.load(open(sys.argv[1]))
jsonschema.validate(d, json.load(open(sys.argv[2])))
assert d["current"] is None, d["current"]
assert d["stopped_at"]["step"] == "node/pve1/cluster/quorum", d["stopped_at"]
assert "no quorum with all 3 nodes" in d["stopped_at"]["message"], d["stopped_at"]
st = {s["id"]: (s["state"], s["status"]) for s in d["steps"]}
assert st["node/pve1/cluster/create"] == ("done", "applied"), st
assert st["node/pve1/cluster/quorum"] == ("failed", None) and st["cluster/verify"] == ("pending", None), st
assert (d["done"], d["failed"], d["total"]) == (1, 1, len(d["steps"])), d
assert any(l["level"] == "error" and "no quorum" in l["line"] for l in d["log"]), d["log"]
PYEOF
curl -sf "$URL/" -o "$TESTTMP/page.html" || fail "no page"
grep -q '<tr class="failed"><td>2</td><td class="state">FAILED</td><td>Waiting for quorum (3 votes)</td>' \
	"$TESTTMP/page.html" || { cat "$TESTTMP/page.html" >&2; fail "the page does not show the failed step"; }
grep -q 'id="error">Failed at node/pve1/cluster/quorum: no quorum' "$TESTTMP/page.html" ||
	fail "the page does not show the error"
grep -q 'http-equiv="refresh"' "$TESTTMP/page.html" && fail "a finished run's page still refreshes"
grep -qF "$(cat "$TESTTMP/root.pw")" "$TESTTMP/page.html" "$TESTTMP/failed.json" && fail "the root password is served"

# Read-only, and only the two documents.
assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$URL/status.json")" "POST"
assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/etc/passwd")" "another path"
curl -sI "$URL/status.json" | grep -qi '^content-type: application/json' || fail "status.json's type"
# Bound to loopback only.
listeners=$(ss -Hltn "sport = :$PORT" | awk '{print $4}')
assert_eq "127.0.0.1:$PORT" "$listeners" "the listening sockets"
kill "${FB_PID[pve1]}" 2>/dev/null || true
wait "${FB_PID[pve1]}" 2>/dev/null || true
