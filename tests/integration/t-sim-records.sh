#!/bin/bash
# Records for outside checks (tests/README.md, "SIM_RECORD_DIR"): with
# SIM_RECORD_DIR set, a cluster test run by tests/run.sh leaves one file per
# simulator and node under SIM_RECORD_DIR/TESTDIR, every line a request that
# pve_schema_check.py accepts (and a bad line is refused: the check can fail);
# a simulator writes the same lines to the test's own PVE_SIM_RECORD_DIR; a
# LABEL other than plain keeps its records apart; many processes appending
# to one file never tear a line.
# sanitizer: skip
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

schema=$SHARED/reference/pve-api-schema-9.1.json
label=${LABEL:-plain} own_name=$TEST_NAME
# Records go where each step says; the caller's directory (if any) gets this
# test's traffic at the end.
outer_records=${SIM_RECORD_DIR:-}
unset SIM_RECORD_DIR

# check_records DIR TESTDIR NODE... — DIR holds exactly TESTDIR/, which holds
# exactly pve-NODE.jsonl for each NODE; every line is one JSON object with
# the record's keys, filed under its own node; prints the number of lines.
check_records() {
	"$PY" - "$@" <<'PYEOF' || fail "records under $1"
import json, os, sys
top, testdir, nodes = sys.argv[1], sys.argv[2], sys.argv[3:]
keys = "auth,login,method,node,params,path,quorum,redacted,status,time".split(",")
if sorted(os.listdir(top)) != [testdir]:
    sys.exit("FAIL: %s holds %s, expected ['%s']" % (top, sorted(os.listdir(top)), testdir))
d = os.path.join(top, testdir)
want = sorted("pve-%s.jsonl" % n for n in nodes)
if sorted(os.listdir(d)) != want:
    sys.exit("FAIL: %s holds %s, expected %s" % (d, sorted(os.listdir(d)), want))
total = 0
for n in nodes:
    lines = open(os.path.join(d, "pve-%s.jsonl" % n), encoding="utf-8").read().split("\n")
    if lines[-1] != "" or len(lines) < 2:
        sys.exit("FAIL: pve-%s.jsonl is empty or does not end in a newline" % n)
    for i, line in enumerate(lines[:-1], 1):
        r = json.loads(line)
        if sorted(r) != keys:
            sys.exit("FAIL: pve-%s.jsonl:%d: keys %s, expected %s" % (n, i, sorted(r), keys))
        if r["node"] != n:
            sys.exit("FAIL: pve-%s.jsonl:%d: a request to %s" % (n, i, r["node"]))
        total += 1
print(total)
PYEOF
}

# count DIR EXPR — records in DIR/*/*.jsonl for which EXPR (over r) holds.
count() {
	"$PY" - "$1" "$2" <<'PYEOF'
import glob, json, sys
print(sum(bool(eval(sys.argv[2])) for f in glob.glob(sys.argv[1] + "/*/*.jsonl")
          for r in map(json.loads, open(f, encoding="utf-8"))))
PYEOF
}

# 1. One simulator, both destinations, a label: same bytes in both files. ---------
sim_init 1
direct=$TESTTMP/direct
export SIM_RECORD_DIR=$direct TEST_NAME=t-example LABEL=asan
sim_start pve1
export TEST_NAME=$own_name LABEL=$label
unset SIM_RECORD_DIR
fb pve1
fb_formed pve1
sim_stop pve1
n=$(check_records "$direct" asan-t-example pve1)
[ "$n" -gt 0 ] || fail "no request recorded"
cmp "$PVE_SIM_RECORD_DIR/pve1.jsonl" "$direct/asan-t-example/pve-pve1.jsonl" ||
	fail "SIM_RECORD_DIR and PVE_SIM_RECORD_DIR records differ"
assert_eq 1 "$(count "$direct" 'r["method"] == "POST" and r["path"] == "/api2/json/cluster/config" and r["status"] == 200')" \
	"cluster creates recorded"
assert_eq "$n" "$(count "$direct" 'r["path"] != "/api2/json/access/ticket" or r["params"].get("password") == "<redacted>"')" \
	"records with the password redacted or none"

# 2. Four processes append 2000 records each to one file at once: no torn line. --
conc=$TESTTMP/conc
cat >"$TESTTMP/append.py" <<'PYEOF'
import os, sys, time
sys.path.insert(0, sys.argv[1])
import sim_record
rec = sim_record.Recorder("pve", "pve1")
while not os.path.exists(sys.argv[3]):  # all start together
    time.sleep(0.01)
for i in range(2000):
    rec.record({"writer": int(sys.argv[2]), "seq": i, "pad": "x" * (4000 + i)})
PYEOF
pids=()
for w in 1 2 3 4; do
	bg_start env SIM_RECORD_DIR="$conc" TEST_NAME=t-conc LABEL=plain "$PY" "$TESTTMP/append.py" "$TOP/tests/sim" "$w" "$TESTTMP/go"
	pids+=($!)
done
sleep 0.5
touch "$TESTTMP/go"
for p in "${pids[@]}"; do wait "$p" || fail "an appending process failed"; done
"$PY" - "$conc/t-conc/pve-pve1.jsonl" <<'PYEOF' || fail "concurrent appends"
import json, sys
seen = sorted((r["writer"], r["seq"]) for r in map(json.loads, open(sys.argv[1], encoding="utf-8")))
if seen != sorted((w, i) for w in range(1, 5) for i in range(2000)):
    sys.exit("FAIL: %d records, not each of 4 x 2000 exactly once" % len(seen))
PYEOF
rm -rf "$conc"

# 3. A cluster test through tests/run.sh, as make check runs it. ------------------
suite=$TESTTMP/suite
testdir=t-cluster-form
[ "$label" = plain ] || testdir=$label-t-cluster-form
mkdir -p "$suite/$testdir"
echo '{"stale": true}' >"$suite/$testdir/pve-pve9.jsonl" # an earlier run's: removed
SIM_RECORD_DIR=$suite TALLY='' TEST_LOGDIR=$TESTTMP/logs \
	"$TOP/tests/run.sh" --integration "$TOP/tests/integration/t-cluster-form.sh" ||
	fail "t-cluster-form failed with SIM_RECORD_DIR set"
n=$(check_records "$suite" "$testdir" pve1 pve2 pve3)
assert_eq 1 "$(count "$suite" 'r["node"] == "pve1" and r["method"] == "POST" and r["path"] == "/api2/json/cluster/config" and r["status"] == 200')" \
	"cluster creates recorded on pve1"
assert_eq 2 "$(count "$suite" 'r["method"] == "POST" and r["path"] == "/api2/json/cluster/config/join" and r["status"] == 200')" \
	"joins recorded"

# Every line passes the schema check, as anyone can re-run it on a suite's records.
mapfile -t files < <(find "$suite" -name '*.jsonl' | sort)
expect_exit 0 "$PY" "$TOP/tests/sim/pve_schema_check.py" --schema "$schema" "${files[@]}"
assert_contains "$OUT" "pve_schema_check: $n requests, 0 violations"

# ... and the check is not blind: one request with a parameter Proxmox does
# not know is refused.
bad=$TESTTMP/bad-records.txt
cp "${files[0]}" "$bad"
"$PY" - "$bad" <<'PYEOF'
import json, sys
r = json.loads(open(sys.argv[1], encoding="utf-8").readline())
r.update(method="POST", path="/api2/json/cluster/config", params={"clustername": "lab", "bogus": "1"}, redacted=[])
open(sys.argv[1], "a", encoding="utf-8").write(json.dumps(r, sort_keys=True) + "\n")
PYEOF
expect_exit 1 "$PY" "$TOP/tests/sim/pve_schema_check.py" --schema "$schema" "$bad"
assert_contains "$OUT" "pve_schema_check: $(wc -l <"$bad") requests, 1 violations"
assert_contains "$OUT" '"bogus": "property is not defined in schema'
rm -f "$bad"

sim_schema_check || fail "schema check"

# When this test itself runs with SIM_RECORD_DIR set, the traffic of the
# simulators it started is the suite's too: file it under this test.
if [ -n "$outer_records" ]; then
	out=$outer_records/$TEST_NAME
	[ "$label" = plain ] || out=$outer_records/$label-$TEST_NAME
	mkdir -p "$out"
	for f in "$direct"/*/*.jsonl "$suite"/*/*.jsonl; do cat "$f" >>"$out/$(basename "$f")"; done
fi
