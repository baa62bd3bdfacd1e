#!/bin/bash
# The live status page of a firstboot run (docs/operations.md, "Live
# status"), asked from outside while the run goes on and after it failed:
#   - /status.json passes docs/status.schema.json; while the cluster is being
#     created (a slow task) that step is "running" and named as the current
#     one; after the quorum wait fails, the run's state is failed, the step
#     failed with its error, the last log lines hold the error line;
#   - the HTML page shows the same (the failed step's row marked failed),
#     and so does Chromium's rendering of it: a headless screenshot read back
#     with OCR (tesseract) and its colours (each step's line in its state's
#     colour);
#   - read-only: POST is 405, another path 404; bound to the address given
#     (loopback) and nothing else;
#   - the root password is not on the page;
#   - the first node's page gathers the others (their /status.json), and
#     says which one did not answer;
#   - the console: a summary line every --progress-every while a step runs
#     long, when output is not a terminal; on a terminal (script(1)), a
#     progress bar on a status line below the log lines.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start_all
faults '[{"node": "pve1", "method": "POST", "path": "^/cluster/config$", "action": "task-slow", "delay_ms": 4000, "times": 1}]'
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
# pve1 alone: the members never join, so the quorum wait fails after 3 s
fb_bg pve1 --status-listen "127.0.0.1:$PORT" --status-linger 60 --wait-quorum 3 --progress-every 1
on_exit 'kill ${FB_PID[pve1]} 2>/dev/null'

# While the create task runs: that step is running and current.
poll_json "$URL/status.json" "$TESTTMP/running.json" '(d["current"] or {}).get("id") == "node/pve1/cluster/create"' ||
	{ cat "$TESTTMP/fb-pve1.out" >&2; fail "never saw the create step running"; }
"$PY" - "$TESTTMP/running.json" "$TOP/docs/status.schema.json" <<'PYEOF' || fail "the running status"
import json, sys, jsonschema
d = json.load(open(sys.argv[1]))
jsonschema.validate(d, json.load(open(sys.argv[2])))
assert d["state"] == "running" and d["node"] == "pve1" and d["phase"] == "firstboot", d
st = {s["id"]: s["state"] for s in d["steps"]}
assert st["node/pve1/cluster/create"] == "running" and st["cluster/verify"] == "pending", st
PYEOF

# After the failure the page stays (--status-linger) with the outcome.
poll_json "$URL/status.json" "$TESTTMP/failed.json" 'd["state"] == "failed"' 90 ||
	{ cat "$TESTTMP/fb-pve1.out" >&2; fail "the status never said failed"; }
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

# In a real browser: headless Chromium renders the page, the screenshot is
# read back. Tesseract (OCR) finds the step titles; each title's line must
# carry its state's colour in the state column (docs/operations.md: done
# #2e7d32, failed #c62828, pending #ddd), one colour band per step.
command -v chromium >/dev/null || fail "chromium missing (scripts/install-deps.sh installs it)"
command -v tesseract >/dev/null || fail "tesseract missing (scripts/install-deps.sh installs tesseract-ocr)"
shot() { # the page as a PNG (Chromium's own profile in the test's directory)
	timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
		--disable-extensions --disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$TESTTMP/chromium" --force-device-scale-factor=2 --window-size=1000,900 \
		--screenshot="$TESTTMP/page.png" "$URL/" >"$TESTTMP/chromium.log" 2>&1
}
rm -f "$TESTTMP/page.png"
shot || shot || { cat "$TESTTMP/chromium.log" >&2; fail "chromium made no screenshot"; }
[ -s "$TESTTMP/page.png" ] || fail "an empty screenshot"
tesseract "$TESTTMP/page.png" "$TESTTMP/ocr" tsv >/dev/null 2>&1 || fail "tesseract could not read the screenshot"
"$PY" - "$TESTTMP/page.png" "$TESTTMP/ocr.tsv" "$TESTTMP/failed.json" <<'PYEOF' || fail "the page as Chromium rendered it"
import csv, json, sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
w, h = img.size
px = img.load()
colours = {"done": (0x2e, 0x7d, 0x32), "failed": (0xc6, 0x28, 0x28), "pending": (0xdd, 0xdd, 0xdd)}
def near(c, ref): return all(abs(a - b) <= 6 for a, b in zip(c, ref))
# the state column: where the failed step's cell is (the one solid block of its colour)
red = [(x, y) for y in range(0, h, 2) for x in range(0, w, 2) if near(px[x, y], colours["failed"])]
assert red, "no cell in the failed colour"
# its left padding (no text there): a strip every state cell fills with its colour
x0 = min(x for x, _ in red) + 3
def bands(ref):  # the y ranges where that strip has the colour
    xs = range(x0, x0 + 12)
    rows = [y for y in range(h) if all(near(px[x, y], ref) for x in xs)]
    out = []
    for y in rows:
        if out and y == out[-1][1] + 1: out[-1][1] = y
        else: out.append([y, y])
    return out
found = {k: bands(v) for k, v in colours.items()}
d = json.load(open(sys.argv[3]))
want = {k: sum(1 for s in d["steps"] if s["state"] == k) for k in colours}
got = {k: len(v) for k, v in found.items()}
assert got == want, ("colour bands", got, "steps", want)
words = [r for r in csv.DictReader(open(sys.argv[2]), delimiter="\t", quoting=csv.QUOTE_NONE) if (r.get("text") or "").strip()]
x_end = max(x for x, _ in red)  # the step column starts right after the state column
def line_of(word):  # the vertical middle of the OCR'd word that starts a step title
    for r in words:
        if r["text"].strip() == word and x_end < int(r["left"]) < x_end + 80:
            return int(r["top"]) + int(r["height"]) // 2
    sys.exit("OCR did not find the step title %r: %s" % (word, " ".join(r["text"] for r in words)))
def state_at(y):
    return [k for k, v in found.items() if any(a <= y <= b for a, b in v)]
assert state_at(line_of("Waiting")) == ["failed"], ("quorum", state_at(line_of("Waiting")))
assert state_at(line_of("Creating")) == ["done"], ("create", state_at(line_of("Creating")))
assert state_at(line_of("Verifying")) == ["pending"], ("verify", state_at(line_of("Verifying")))
text = " ".join(r["text"] for r in words)
assert "DevOpsLab:" in text and "FAILED," in text and "Verifying the cluster end to end" in text, text
PYEOF

# Read-only, and only the two documents.
assert_eq 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$URL/status.json")" "POST"
assert_eq 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/etc/passwd")" "another path"
# into a file first: grep -q on a pipe may close it before curl is done
curl -sI -o "$TESTTMP/status.head" "$URL/status.json" || fail "HEAD status.json"
grep -qi '^content-type: application/json' "$TESTTMP/status.head" || fail "status.json's type"
# Bound to loopback only.
listeners=$(ss -Hltn "sport = :$PORT" | awk '{print $4}')
assert_eq "127.0.0.1:$PORT" "$listeners" "the listening sockets"
kill "${FB_PID[pve1]}" 2>/dev/null || true
wait "${FB_PID[pve1]}" 2>/dev/null || true

# The console, not a terminal: a summary line while the slow step ran.
grep -qE "^devopslab: \[1/3\] Creating Proxmox cluster lab: running for [1-9][0-9]* s; 0 of 3 steps done$" \
	"$TESTTMP/fb-pve1.out" || { cat "$TESTTMP/fb-pve1.out" >&2; fail "no summary line during the long step"; }
# On a terminal (script(1) gives it one): a status line with the progress
# bar under the log lines, erased before each of them and at the end.
fb_cmd pve1 --status-listen off --wait-quorum 3
script -qefc "$(printf '%q ' "${FB[@]}")" "$TESTTMP/tty.out" >/dev/null 2>&1 || true
grep -aqF '[######..............] 1/3  Waiting for quorum (3 votes) (' "$TESTTMP/tty.out" ||
	{ cat -v "$TESTTMP/tty.out" >&2; fail "no progress bar on the terminal"; }
grep -aq $'\r\033\[Kdevopslab: error: node/pve1/cluster/quorum' "$TESTTMP/tty.out" ||
	{ cat -v "$TESTTMP/tty.out" >&2; fail "the status line was not erased before a log line"; }

# ---- the orchestrating node's page gathers the others ---------------------------------
# All three run, each with its page; pve1 asks pve2's page and, for pve3, an
# address where nothing listens (a node whose page is down).
sim_fresh gather
sim_start_all
P1=$(free_port) P2=$(free_port) P3=$(free_port) P4=$(free_port)
fb_bg pve2 --status-listen "127.0.0.1:$P2" --status-linger 60
fb_bg pve3 --status-listen "127.0.0.1:$P3" --status-linger 60
fb_bg pve1 --status-listen "127.0.0.1:$P1" --status-linger 60 \
	--status-peer "pve2=http://127.0.0.1:$P2/status.json" --status-peer "pve3=http://127.0.0.1:$P4/status.json"
on_exit 'kill ${FB_PID[pve2]} ${FB_PID[pve3]} ${FB_PID[pve1]} 2>/dev/null'
gathered='d["state"] == "complete" and {x["node"]: x for x in d["nodes"] or []}.get("pve2", {}).get("state") == "complete" and {x["node"]: x for x in d["nodes"]}["pve3"]["error"] not in (None, "not asked yet")'
poll_json "http://127.0.0.1:$P1/status.json" "$TESTTMP/gather.json" "$gathered" 90 ||
	{ cat "$TESTTMP/gather.json" "$TESTTMP/fb-pve1.out" >&2; fail "pve1's page never showed pve2 complete"; }
"$PY" - "$TESTTMP/gather.json" "$TOP/docs/status.schema.json" "$P2" <<'PYEOF' || fail "the gathered status"
import json, sys, jsonschema
d = json.load(open(sys.argv[1]))
jsonschema.validate(d, json.load(open(sys.argv[2])))
n = {x["node"]: x for x in d["nodes"]}
assert [x["node"] for x in d["nodes"]] == ["pve1", "pve2", "pve3"], d["nodes"]
assert n["pve1"]["url"] is None and n["pve1"]["state"] == "complete" and n["pve1"]["reachable"], n["pve1"]
p2 = n["pve2"]
assert p2["reachable"] and p2["url"] == "http://127.0.0.1:%s/status.json" % sys.argv[3], p2
assert p2["done"] == p2["total"] > 0 and p2["failed"] == 0, p2
p3 = n["pve3"]
assert not p3["reachable"] and p3["state"] is None and p3["error"].startswith("no answer"), p3
PYEOF
curl -sf "http://127.0.0.1:$P1/" -o "$TESTTMP/gather.html" || fail "no gathered page"
grep -q '<tr class="node-done"><td><a href="http://127.0.0.1:'"$P2"'/status.json">pve2</a></td><td class="state">complete</td>' \
	"$TESTTMP/gather.html" || { cat "$TESTTMP/gather.html" >&2; fail "the gathered page lacks pve2"; }
grep -q '<tr class="node-failed"><td><a href="[^"]*">pve3</a></td><td class="state">unreachable</td>' "$TESTTMP/gather.html" ||
	{ cat "$TESTTMP/gather.html" >&2; fail "the gathered page does not show pve3 unreachable"; }
