#!/bin/bash
# Three firstboot processes against three simulated Proxmox nodes form one
# cluster; running them all again makes zero mutating calls; every request
# passes the API schema check.
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"

sim_init 3
sim_start_all
form_all
assert_one_cluster 3
assert_joins 2
assert_eq 0 "$(sim_query 'len([t for t in s["tasks"].values() if t["exitstatus"] not in ("OK",)])')" "failed tasks"
first_mut=$(mutations)
# create (1) + joins (2); nothing else mutates.
assert_eq 3 "$first_mut" "mutating requests of the first run"

# Again: already converged, nothing to change.
form_all
assert_eq "$first_mut" "$(mutations)" "mutating requests after the second run"
assert_contains "$OUT" "already done"
assert_one_cluster 3

# With a journal: the second run skips through the journal and still checks.
fb pve2 --journal "$TESTTMP/journal"
assert_eq 0 "$RC" "firstboot with journal"
fb pve2 --journal "$TESTTMP/journal"
assert_eq 0 "$RC" "firstboot with journal, again"
assert_eq "$first_mut" "$(mutations)" "mutating requests after journal runs"

# Secrets never reach the output, even at debug level.
fb_cmd pve3
set +e; dbg=$("$DEVOPSLAB" --verbose "${FB[@]:1}" 2>&1); set -e
case $dbg in *"correct horse"*|*PVEAuthCookie=*|*"PVE:root@pam"*) fail "a secret was printed" ;; esac
assert_contains "$dbg" "debug: "

# The simulator, like pve-http-server, refuses a write without the CSRF token.
"$PY" - "${SIM_PORT[pve1]}" "$TESTTMP/root.pw" <<'PYEOF' || fail "a write without CSRF token was not refused"
import http.client, json, ssl, sys, urllib.parse
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # the simulator's own test, no client code
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx)
pw = open(sys.argv[2]).read().strip()
c.request("POST", "/api2/json/access/ticket", urllib.parse.urlencode({"username": "root@pam", "password": pw}),
          {"Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse(); t = json.loads(r.read())["data"]["ticket"]
c.request("POST", "/api2/json/cluster/config", "clustername=x", {"Cookie": "PVEAuthCookie=" + t,
          "Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse(); r.read()
assert (r.status, r.reason) == (401, "Permission denied - invalid csrf token"), (r.status, r.reason)
PYEOF

sim_schema_check || fail "schema check"
echo "requests: $(requests)"
