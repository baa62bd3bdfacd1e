# SPDX-License-Identifier: MIT
"""pve_sim_jobs.py — the cluster's vzdump backup jobs in the Proxmox VE
simulator (pve_sim.py): GET/POST /cluster/backup, GET/PUT/DELETE
/cluster/backup/{id}, routed through pve_sim_guests.py's table.

Model: Proxmox keeps the jobs in /etc/pve/jobs.cfg (pmxcfs, so every node
sees the same), section type "vzdump"; here s["guest"]["jobs"][ID] in the
shared state, as the storage configuration is. What each call checks and
says follows pve-manager's PVE/API2/Backup.pm (create_job, update_job,
read_job, delete_job) and PVE/VZDump.pm (verify_vzdump_parameters), and
pve-storage's Storage.pm storage_config and PVE::JSONSchema's
prune-backups and pve-vmid-list formats, as read for docs/pve.md's
fidelity ledger; where the sources were not at hand the messages are the
closest we know, and the tests assert only on their gist.

A job's schedule is checked for the form of a systemd calendar event (the
subset Proxmox's PVE::CalendarEvent parses: weekdays, dates, times with
ranges, lists and repetitions, and the keywords); next-run is the next full
minute with the schedule's HH:MM (enough for a report, not a scheduler).

Running a job is the test's to say, as pvescheduler would at the job's time:

  pve_sim_jobs.py --state DIR --run-job ID [--time EPOCH]

backs up every VM the job selects on each node whose simulator runs (a
node that is down backs up nothing, as its vzdump never starts): a backup
volume on the job's storage, backup/vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma.zst,
holding the VM's configuration and its disks' sizes (pve_sim_storage.py);
then the job's retention prunes that VM's backups on the storage (PBS's
and vzdump's prune: keep-last, then keep-hourly ... keep-yearly, newest
first, a period already covered by a kept backup not counted again). It
prints one line per backup made and per backup pruned.
"""
import argparse
import fcntl
import json
import os
import re
import sys
import time
import uuid

import pve_sim_guests as g
import pve_sim_storage as st

OPTIONS = ("schedule", "storage", "mode", "compress", "vmid", "all", "exclude", "pool", "prune-backups", "enabled",
           "comment", "notes-template", "mailto", "mailnotification", "node", "bwlimit", "zstd", "protected",
           "repeat-missed", "starttime", "dow", "remove", "stdexcludes", "stop", "stopwait", "tmpdir", "dumpdir",
           "lockwait", "ionice", "pigz", "quiet", "script", "maxfiles", "notification-mode", "fleecing",
           "performance", "pbs-change-detection-mode", "exclude-path")
KEEP = ("keep-all", "keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")
WEEKDAY = r"(mon|tue|wed|thu|fri|sat|sun)"
CAL_KEYWORDS = ("minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually", "quarterly",
                "semiannually")
CAL_WEEKDAYS = re.compile(r"%s(\.\.%s)?(,%s(\.\.%s)?)*" % ((WEEKDAY,) * 4))
CAL_NUM = r"(\*|\d{1,4}(\.\.\d{1,4})?(/\d{1,4})?)(,(\d{1,4}(\.\.\d{1,4})?(/\d{1,4})?))*"
CAL_DATE = re.compile(r"(%s-)?%s-%s" % (CAL_NUM, CAL_NUM, CAL_NUM))
CAL_TIME = re.compile(r"%s(:%s){1,2}" % (CAL_NUM, CAL_NUM))
VMID_LIST = re.compile(r"\d+([,; ]\s*\d+)*")
CONFIGID = re.compile(r"[a-z][a-z0-9_-]+", re.I)


def jobs(s):
    return s["guest"].setdefault("jobs", {})


def fail(status, msg, errors=None):
    return g.Fail(status, msg, errors)


def param_error(key, msg):
    """PVE::JSONSchema's answer to a bad parameter."""
    return fail(400, "Parameter verification failed.", {key: msg})


def check_schedule(v):
    """PVE::CalendarEvent::parse_calendar_event, as far as its form goes."""
    t = v.strip().lower()
    parts = t.split()
    ok = 0 < len(parts) <= 3 and len(v) <= 128
    if ok and len(parts) == 1 and parts[0] in CAL_KEYWORDS:
        return
    i = 0
    if ok and i < len(parts) and CAL_WEEKDAYS.fullmatch(parts[i]):
        i += 1
    if ok and i < len(parts) and CAL_DATE.fullmatch(parts[i]):
        i += 1
    if ok and i < len(parts) and CAL_TIME.fullmatch(parts[i]):
        i += 1
    if not ok or i != len(parts) or i == 0:
        raise param_error("schedule", "invalid format - unable to parse calendar event '%s'" % v)


def parse_prune(v):
    """The prune-backups format: keep-X=N, comma-separated; keep-all
    conflicts with the others (PVE::JSONSchema validate_prune_backups)."""
    out = {}
    for item in filter(None, (x.strip() for x in v.split(","))):
        k, _, n = item.partition("=")
        if k not in KEEP or not re.fullmatch(r"\d+", n):
            raise param_error("prune-backups", "invalid format - format error\nprune-backups.%s: property is not "
                              "defined in schema and the schema does not allow additional properties" % k
                              if k not in KEEP else "invalid format - %s: type check ('integer') failed" % k)
        out[k] = int(n)
    if out.get("keep-all") and any(out.get(k) for k in KEEP if k != "keep-all"):
        raise param_error("prune-backups", "invalid format - keep-all cannot be set together with other options.")
    return out


def check(s, p):
    """create_job/update_job's checks of the options (VZDump.pm
    verify_vzdump_parameters, Storage.pm storage_config)."""
    if "schedule" in p:
        check_schedule(p["schedule"])
    if "vmid" in p and not VMID_LIST.fullmatch(p["vmid"].strip()):
        raise param_error("vmid", "value does not look like a valid VM ID list")
    if "prune-backups" in p:
        parse_prune(p["prune-backups"])
    if p.get("mode") and p["mode"] not in ("snapshot", "suspend", "stop"):
        raise param_error("mode", "value '%s' does not have a value in the enumeration 'snapshot, suspend, stop'"
                          % p["mode"])
    if "storage" in p:
        sc = st.cfg(s).get(p["storage"])
        if sc is None:
            raise fail(500, "storage '%s' does not exist" % p["storage"])
        if "backup" not in sc.get("content", []):
            raise fail(500, "storage '%s' does not support backups" % p["storage"])


def check_selection(job):
    """verify_vzdump_parameters: exactly one of all, vmid, pool; exclude
    only with all."""
    chosen = [k for k in ("all", "vmid", "pool") if job.get(k) not in (None, "", "0", 0)]
    if len(chosen) > 1:
        raise fail(400, "only one of the parameters 'all', 'vmid' and 'pool' may be set")
    if not chosen:
        raise fail(400, "either 'all', 'vmid' or 'pool' must be set")
    if job.get("exclude") and "all" not in chosen:
        raise fail(400, "option 'exclude' is only allowed with 'all'")


def stored(p):
    return {k: v for k, v in p.items() if k in OPTIONS and k != "delete"}


def answer(jid, job):
    """read_job / index: the section as the API returns it."""
    d = {"id": jid, "type": "vzdump"}
    for k, v in job.items():
        if k == "prune-backups":
            d[k] = parse_prune(v)
        elif k in ("enabled", "all", "remove", "quiet", "stop", "pigz", "protected", "repeat-missed", "stdexcludes"):
            d[k] = int(v)
        elif k in ("bwlimit", "zstd", "lockwait", "stopwait", "ionice", "maxfiles"):
            d[k] = int(v)
        else:
            d[k] = v
    if int(job.get("enabled", 1)) and job.get("schedule"):
        now = int(time.time())
        d["next-run"] = now - now % 60 + 60
    return d


def api_backup_index(c):
    return [answer(jid, job) for jid, job in sorted(jobs(c.s).items())]


def api_backup_create(c):
    p = dict(c.p)
    jid = p.pop("id", None) or "backup-%s" % str(uuid.uuid4())[:13]
    if not CONFIGID.fullmatch(jid):
        raise param_error("id", "invalid format - invalid configuration ID '%s'" % jid)
    if jid in jobs(c.s):
        raise fail(500, "Job '%s' already exists" % jid)
    if not p.get("schedule") and not p.get("starttime"):
        raise param_error("schedule", "property is missing and it is not optional")
    check(c.s, p)
    job = stored(p)
    job.setdefault("enabled", "1")
    check_selection(job)
    jobs(c.s)[jid] = job
    return None


def existing(c, jid):
    job = jobs(c.s).get(jid)
    if job is None:
        raise fail(404, "Job '%s' does not exist" % jid)
    return job


def api_backup_read(c, jid):
    return answer(jid, existing(c, jid))


def api_backup_update(c, jid):
    job = dict(existing(c, jid))
    p = dict(c.p)
    check(c.s, p)
    for k in filter(None, (x.strip() for x in re.split(r"[,; ]", p.pop("delete", "")))):
        if k not in OPTIONS:
            raise param_error("delete", "invalid format - value '%s' does not look like a valid option" % k)
        job.pop(k, None)
    job.update(stored(p))
    check_selection(job)
    jobs(c.s)[jid] = job
    return None


def api_backup_delete(c, jid):
    existing(c, jid)
    del jobs(c.s)[jid]
    return None


# ---- running a job (pvescheduler's part) ---------------------------------------

PERIODS = (("keep-last", None), ("keep-hourly", "%Y-%m-%d %H"), ("keep-daily", "%Y-%m-%d"),
           ("keep-weekly", "%G-%V"), ("keep-monthly", "%Y-%m"), ("keep-yearly", "%Y"))


def prune_marks(backups, keep):
    """PBS's prune selection (pbs-datastore prune.rs mark_selections) over
    [(volname, ctime)]: the set to keep."""
    if keep.get("keep-all") or not any(keep.values()):
        return {v for v, _ in backups}
    kept = set()
    ordered = sorted(backups, key=lambda b: -b[1])
    for opt, fmt in PERIODS:
        n = keep.get(opt, 0)
        if not n:
            continue
        seen = set()
        for v, ctime in ordered:
            key = v if fmt is None else time.strftime(fmt, time.gmtime(ctime))
            if v in kept:
                seen.add(key)
                continue
            if key in seen:
                continue
            if len(seen) >= n:
                break
            kept.add(v)
            seen.add(key)
    return kept


def selected(s, job):
    """The VMIDs a job backs up, with their nodes (vmid, all + exclude)."""
    out = []
    ids = {int(x) for x in re.split(r"[,; ]\s*", job.get("vmid", "")) if x.strip()}
    excl = {int(x) for x in re.split(r"[,; ]\s*", job.get("exclude", "")) if x.strip()}
    for node, vs in s["guest"]["vms"].items():
        for vmid, vm in vs.items():
            vmid = int(vmid)
            if vm["conf"].get("template") == "1":
                continue
            if (job.get("all") in ("1", 1) and vmid not in excl) or vmid in ids:
                out.append((node, vmid, vm))
    return sorted(out, key=lambda x: x[1])


def run_job(s, jid, when, out):
    job = jobs(s).get(jid)
    if job is None:
        raise SystemExit("pve_sim_jobs: no job '%s'" % jid)
    sid = job.get("storage", "local")
    keep = parse_prune(job.get("prune-backups", "")) if job.get("prune-backups") else \
        parse_prune(st.cfg(s)[sid].get("prune-backups", "keep-all=1"))
    for node, vmid, vm in selected(s, job):
        n = s["nodes"].get(node)
        if not n or time.time() - n["heartbeat"] >= 1.0 or vm.get("lost_disks"):
            out.append("skipped %d on %s: %s" % (vmid, node, "its node is down" if not vm.get("lost_disks")
                                                 else "its disks are gone"))
            continue
        conf = {k: v for k, v in g.merged(vm).items() if k != "lock"}
        disks = {}
        for key, d in g.drives(conf):
            vsid, _ = g.split_volid(d.get("file"))
            if vsid and not g.is_cdrom(d):
                vol = st.volume(s, node, d["file"])
                disks[key] = vol["size"] if vol else 0
        volname = "backup/vzdump-qemu-%d-%s.vma.zst" % (vmid, time.strftime("%Y_%m_%d-%H_%M_%S", time.gmtime(when)))
        st.vols(s, node, sid)[volname] = {"size": max(1, sum(disks.values()) // 8), "ctime": int(when),
                                          "format": "vma.zst", "content": "backup", "vmid": vmid,
                                          "conf": conf, "disks": disks}
        out.append("backup %s:%s" % (sid, volname))
        mine = [(v, b["ctime"]) for v, b in st.vols(s, node, sid).items()
                if b["content"] == "backup" and b.get("vmid") == vmid]
        kept = prune_marks(mine, keep)
        for v, _ in mine:
            if v not in kept:
                del st.vols(s, node, sid)[v]
                out.append("pruned %s:%s" % (sid, v))


def main():
    ap = argparse.ArgumentParser(description="run a backup job of the simulated cluster, as pvescheduler would")
    ap.add_argument("--state", required=True, help="the simulators' state directory")
    ap.add_argument("--run-job", required=True, metavar="ID")
    ap.add_argument("--time", type=float, help="the backup's time (default: now)")
    a = ap.parse_args()

    class JobFail(Exception):
        def __init__(self, status, reason, errors=None):
            super().__init__(reason)
            self.status, self.reason = status, reason
    g.bind(JobFail)
    out = []
    with open(os.path.join(a.state, "lock"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        path = os.path.join(a.state, "state.json")
        s = json.load(open(path))
        try:
            run_job(s, a.run_job, a.time or time.time(), out)
        except JobFail as e:
            raise SystemExit("pve_sim_jobs: %s" % e.reason)
        with open(path + ".tmp", "w") as f:
            json.dump(s, f)
        os.rename(path + ".tmp", path)
    print("\n".join(out))


def register():
    """Route the endpoints through pve_sim_guests.py's table."""
    for method, pattern, fn in (("GET", r"/cluster/backup", api_backup_index),
                                ("POST", r"/cluster/backup", api_backup_create),
                                ("GET", r"/cluster/backup/([^/]+)", api_backup_read),
                                ("PUT", r"/cluster/backup/([^/]+)", api_backup_update),
                                ("DELETE", r"/cluster/backup/([^/]+)", api_backup_delete)):
        g.route(method, pattern)(fn)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
