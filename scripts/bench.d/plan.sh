#!/bin/bash
# plan: build and print the plan of a large cluster (4000 worker VMs, so
# ~8000 steps: a VM and a K3s agent each) from examples/homelab.yaml.
# Targets: under 1 s and under 100 MiB resident for text and for JSON.
set -eu
: "${BENCHTMP:=$(mktemp -d)}"
$PY - "$TOP/examples/homelab.yaml" "$BENCHTMP/big.yaml" <<'PYEOF'
import sys
s = open(sys.argv[1]).read()
s = s.replace("subnet: 10.0.10.0/24", "subnet: 10.0.0.0/16").replace("/24,gw=", "/16,gw=")
s = s.replace("    count: 2\n    vmid: 201", "    count: 4000\n    vmid: 1000")
s = s.replace("ip=10.0.10.21/16", "ip=10.0.20.21/16")
open(sys.argv[2], "w").write(s)
PYEOF
$PY - "$DEVOPSLAB" "$BENCHTMP/big.yaml" <<'PYEOF'
import resource, subprocess, sys, time
binary, manifest = sys.argv[1], sys.argv[2]
for args, label in (([], "text"), (["--json"], "json")):
    t0 = time.monotonic()
    out = subprocess.run([binary, "plan", "--manifest", manifest] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True).stdout
    secs = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("plan: %s plan of 4000-VM cluster = %.3f s (target < 1 s), %d bytes" % (label, secs, len(out)))
    print("plan: max resident = %.1f MiB so far (target < 100 MiB)" % rss)
PYEOF
