#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""quorum_check.py — was quorum kept after every request? Reads the request
records of the Proxmox VE simulator (pve_sim.py: each record's "quorum",
the cluster as the answering node saw it after the request) and of the
Kubernetes simulator (k8s_sim.py: each record's "etcd", the etcd members,
voters and running voters after the request).

  quorum_check.py [--max-etcd N] [--since EPOCH] RECORDS.jsonl...

(--since-time is the same as --since.)

Fails (exit 1, naming the first offending record) when
  * a Proxmox node that is in a cluster answered while that cluster was not
    quorate (fewer than a majority of its members online);
  * the Kubernetes API answered while etcd had no quorum (fewer than a
    majority of its voters running), once there is a cluster;
  * etcd had more than N members (--max-etcd: the manifest's servers; a new
    server joining before the dead one is removed makes N + 1: the 2-of-4
    moment a recovery must never have).
Prints how many records of each it checked; a file of neither kind, or
records without the fields, are an error (the check would prove nothing).
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-etcd", type=int, default=0, help="most etcd members allowed (0: no limit)")
    ap.add_argument("--since", "--since-time", dest="since", type=float, default=0.0,
                    help="only records from this time (epoch seconds) on")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    n_pve = n_k8s = 0
    most = 0
    for path in a.files:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                r = json.loads(line)
                if r.get("time", 0) < a.since:
                    continue
                where = "%s:%d (%s %s)" % (path, i, r.get("method"), r.get("path"))
                if "quorum" in r:
                    n_pve += 1
                    q = r["quorum"]
                    if q["cluster"] is not None and not q["quorate"]:
                        print("FAIL: %s: node %s answered while cluster %s had %d of %d members online"
                              % (where, r.get("node"), q["cluster"], q["online"], q["members"]))
                        return 1
                elif "etcd" in r:
                    n_k8s += 1
                    e = r["etcd"]
                    most = max(most, e["members"])
                    if e["cluster"] and not e["quorate"]:
                        print("FAIL: %s: the API answered while etcd had %d of %d voters running"
                              % (where, e["up"], e["voting"]))
                        return 1
                    if a.max_etcd and e["members"] > a.max_etcd:
                        print("FAIL: %s: etcd had %d members, more than the %d servers" % (where, e["members"],
                                                                                          a.max_etcd))
                        return 1
                else:
                    print("FAIL: %s: a record without quorum or etcd fields" % where)
                    return 1
    if not n_pve and not n_k8s:
        print("FAIL: no records to check")
        return 1
    print("quorum kept after every request: %d Proxmox VE records, %d Kubernetes records (at most %d etcd members)"
          % (n_pve, n_k8s, most))
    return 0


if __name__ == "__main__":
    sys.exit(main())
