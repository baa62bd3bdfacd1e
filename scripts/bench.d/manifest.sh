#!/bin/bash
# manifest: `devopslab validate` of a 500-node manifest (examples/homelab.yaml
# with its nodes replaced by 500 generated ones on a /16), timed by hyperfine
# over repeated runs. Target: well under a second.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
$PY - "$TOP/examples/homelab.yaml" "$BENCHTMP/500.yaml" <<'PYEOF'
import re, sys
s = open(sys.argv[1]).read()
s = s.replace("subnet: 10.0.10.0/24", "subnet: 10.0.0.0/16").replace("/24,gw=", "/16,gw=")
head, rest = s.split("\nnodes:\n", 1)
# the node list ends at the next top-level key
m = re.search(r"^\S", rest, re.M)
tail = rest[m.start():]
nodes = []
for i in range(500):
    nodes.append(
        "  - name: node-%03d\n    role: %s\n    mac: \"52:54:01:00:%02x:%02x\"\n    ip: 10.0.%d.%d\n"
        "    nic: \"52:54:01:00:%02x:%02x\"\n    disk:\n      transport: nvme\n      min_size: 16G\n"
        % (i + 1, "first" if i == 0 else "member", i >> 8, i & 255, 100 + i // 200, 10 + i % 200,
           i >> 8, i & 255))
s = head + "\nnodes:\n" + "".join(nodes) + tail
s = re.sub(r"devops-node-0([123])", lambda m: "node-%03d" % int(m.group(1)), s)
open(sys.argv[2], "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$BENCHTMP/500.yaml" 2>&1 | tail -1
nodes=$(grep -c '^  - name: node-' "$BENCHTMP/500.yaml")
echo "manifest: $nodes nodes, $(wc -c <"$BENCHTMP/500.yaml") bytes"
hyperfine --warmup 3 --runs 30 --style basic --export-json "$BENCHTMP/h.json" \
	"$DEVOPSLAB --quiet validate $BENCHTMP/500.yaml" >/dev/null 2>&1
$PY -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("manifest: validate of a 500-node manifest = %.1f ms mean (± %.1f ms, %d runs; target < 1000 ms)" % (r["mean"]*1e3, r["stddev"]*1e3, len(r["times"])))' "$BENCHTMP/h.json"
