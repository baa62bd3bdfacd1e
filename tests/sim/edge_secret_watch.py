#!/usr/bin/env python3
"""edge_secret_watch.py K8S_STATE DIR — hands the edge's stand-in
(edge_https.py --reload) the certificate the provisioner put into the
simulated cluster: waits until the Kubernetes simulator's state (k8s.json)
holds Secret kube-system/devopslab-edge-tls, then writes its tls.crt and
tls.key into DIR (each replaced atomically) and exits. Used by the demo
(scripts/demo-sim.sh) and tests/integration/t-powercut.sh."""
import base64
import json
import os
import sys
import time

KEY = "core/secrets/kube-system/devopslab-edge-tls"


def main():
    state, out = sys.argv[1], sys.argv[2]
    while True:
        try:
            data = json.load(open(state))["objects"][KEY]["data"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
            continue
        for k in ("tls.key", "tls.crt"):
            with open(os.path.join(out, k + ".new"), "wb") as f:
                f.write(base64.b64decode(data[k]))
            os.rename(os.path.join(out, k + ".new"), os.path.join(out, k))
        return


if __name__ == "__main__":
    main()
