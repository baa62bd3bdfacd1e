# SPDX-License-Identifier: MIT
"""pve_sim_jobs.py — the cluster's vzdump backup jobs in the Proxmox VE
simulator (pve_sim.py): GET/POST /cluster/backup, GET/PUT/DELETE
/cluster/backup/{id}, POST /nodes/{node}/vzdump, routed through
pve_sim_guests.py's table; and running a job (below).

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

Running a job is the test's to say, as pvescheduler would at the job's time
(pve-manager PVE/Jobs/VZDump.pm runs vzdump on every node):

  pve_sim_jobs.py --state DIR --run-job ID [--time EPOCH]

takes the simulators' state lock, as pve_sim.py's State does, and backs up
every VM the job selects (vmid, or all less exclude; 'node' limits it;
templates too, as vzdump does) on each node whose simulator runs (a node
that is down backs up nothing: its vzdump never starts). A locked VM, or
one whose disk is gone, fails alone (the others go on). Each backup is a
volume on the job's storage, backup/vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.EXT
(local time, EXT by 'compress': vma, vma.zst, vma.gz, vma.lzo), holding a
copy of the VM's configuration and its disks' sizes — what a restore needs
(pve_sim_guests.py restore) — and the notes of 'notes-template'
({{guestname}}, {{node}}, {{vmid}}, {{cluster}}); where it lives is the
storage's business (pve_sim_storage.py: a shared one's volumes are the
cluster's, a node-local one's that node's). Then, unless remove=0, the
retention (the job's prune-backups, else the storage's, else keep-all)
prunes that VM's backups on the storage (PBS's and vzdump's prune:
keep-last, then keep-hourly ... keep-yearly, newest first, a period
already covered by a kept backup not counted again; protected backups
neither count nor go). It prints one line per backup made ("backup
VOLID"), skipped, failed and pruned ("pruned VOLID"), and exits 0 unless
the job does not exist.

POST /nodes/{node}/vzdump (pve-manager PVE/API2/VZDump.pm) does the same for
the VMs of that node it names, as a 'vzdump' task: "INFO: ..." lines in its
log, "job errors" if a VM's backup failed; 'OK' at once, without a task,
when none of the VMs named is on the node.
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


# VZDump.pm: the archive's extension by 'compress' (vma for VMs).
EXT = {"0": "vma", "1": "vma.lzo", "lzo": "vma.lzo", "gzip": "vma.gz", "zstd": "vma.zst"}


def vmids(v):
    return {int(x) for x in re.split(r"[,; ]\s*", v or "") if x.strip()}


def selected(s, job, only_node=None):
    """VZDump.pm get_included_guests: (node, vmid, vm) of the VMs a job or a
    vzdump call names (vmid, or all less exclude; 'node' limits it to
    that node's); templates are backed up too, as vzdump does."""
    out = []
    ids, excl = vmids(job.get("vmid")), vmids(job.get("exclude"))
    for node, vs in s["guest"]["vms"].items():
        if (job.get("node") and node != job["node"]) or (only_node and node != only_node):
            continue
        for vmid, vm in vs.items():
            vmid = int(vmid)
            if (job.get("all") in ("1", 1) and vmid not in excl) or vmid in ids:
                out.append((node, vmid, vm))
    return sorted(out, key=lambda x: x[1])


def notes(template, s, node, vmid, conf):
    """VZDump.pm generate_notes: {{cluster}}, {{guestname}}, {{node}}, {{vmid}}."""
    if not template:
        return None
    cid = s["nodes"][node].get("cluster")
    cluster = s["clusters"][cid]["name"] if cid is not None and cid in s.get("clusters", {}) else ""
    vals = {"cluster": cluster, "guestname": conf.get("name", "VM %d" % vmid), "node": node, "vmid": str(vmid)}
    return re.sub(r"\{\{(cluster|guestname|node|vmid)\}\}", lambda m: vals[m.group(1)], template.replace("\\n", "\n"))


def backup_vm(s, node, vmid, vm, sid, when, opts, log):
    """One VM's backup (VZDump.pm exec_backup_task with the QemuServer
    VZDump plugin): the config must not be locked; every disk the backup
    includes must be there (a missing one fails as vm_start would); the
    archive backup/vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.EXT holds a copy of
    the configuration (and its pending section) and the sizes of the disks
    it includes (not cloud-init drives, CD-ROMs or backup=0 disks), which is
    what a restore needs; its size is a guess (an eighth of the disks).
    Returns the volume ID."""
    if vm["conf"].get("lock"):
        raise g.Fail(500, "VM is locked (%s)" % vm["conf"]["lock"])
    conf = {k: v for k, v in vm["conf"].items() if k != "lock"}
    disks = {}
    for key, d in g.drives(conf):
        vsid, _ = g.split_volid(d.get("file") if d else None)
        if not vsid or g.is_cdrom(d) or d.get("backup") == "0":
            continue
        gone = g.missing_volume(s, node, {key: conf[key]})
        if gone:
            raise g.Fail(500, gone[1])
        disks[key] = st.volume(s, node, d["file"])["size"]
    ext = EXT[str(opts.get("compress") or "0")]
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(when))
    volname = "backup/vzdump-qemu-%d-%s.%s" % (vmid, stamp, ext)
    log.append("INFO: Starting Backup of VM %d (qemu)" % vmid)
    log.append("INFO: Backup started at %s" % time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)))
    log.append("INFO: status = %s" % ("running" if vm["running"] else "stopped"))
    log.append("INFO: creating vzdump archive '%s'" % st.real_path(s, sid, "backup", volname.split("/", 1)[1]))
    b = {"size": max(1, sum(disks.values()) // 8), "ctime": int(when), "format": ext, "content": "backup",
         "vmid": vmid, "conf": conf, "pending": dict(vm.get("pending") or {}), "pdel": dict(vm.get("pdel") or {}),
         "disks": disks, "node": node}
    text = notes(opts.get("notes-template"), s, node, vmid, conf)
    if text:
        b["notes"] = text
    if opts.get("protected") in ("1", 1):
        b["protected"] = 1
    st.vols(s, node, sid)[volname] = b
    log.append("INFO: Finished Backup of VM %d (00:00:01)" % vmid)
    return "%s:%s" % (sid, volname)


def retention(s, sid, opts):
    """The prune-backups that apply: the call's or job's own, else the
    storage's, else keep-all (PVE::Storage prune_mark_backup_group)."""
    return parse_prune(opts.get("prune-backups") or st.cfg(s)[sid].get("prune-backups") or "keep-all=1")


def prune(s, node, sid, vmid, keep, log):
    """VZDump.pm's prune after a backup ('remove', the default): this VM's
    backups on the storage, protected ones never removed nor counted.
    Returns the volume IDs removed."""
    mine = [(v, b["ctime"]) for v, b in st.vols(s, node, sid).items()
            if b["content"] == "backup" and b.get("vmid") == vmid and not b.get("protected")]
    kept, gone = prune_marks(mine, keep), []
    for v, _ in sorted(mine, key=lambda x: x[1]):
        if v not in kept:
            del st.vols(s, node, sid)[v]
            gone.append("%s:%s" % (sid, v))
            log.append("INFO: prune older backups with retention: %s" % ", ".join(
                "%s=%d" % kv for kv in sorted(keep.items())))
            log.append("INFO: removing backup '%s:%s'" % (sid, v))
    return gone


def backup_storage(s, opts):
    """The backup target: 'storage', else 'local' (vzdump.conf's default);
    it must hold backups (Storage.pm / VZDump.pm: "does not support backups")."""
    sid = opts.get("storage") or "local"
    scfg = st.storage_config(s, sid)
    if "backup" not in (scfg.get("content") or []):
        raise g.Fail(500, "storage '%s' does not support backups" % sid)
    return sid


def run_job(d, s, jid, when, out):
    """pvescheduler's run of job JID at WHEN (pve-manager PVE/Jobs/VZDump.pm:
    'vzdump' on every node with the job's options): each node whose
    simulator runs backs up its selected VMs; a node that is down backs up
    nothing (its vzdump never starts); a VM whose backup fails (locked, a
    disk gone) is reported and the others go on. OUT gets one line per
    backup made, skipped, failed and pruned. D is the state directory,
    where the heartbeats are."""
    job = jobs(s).get(jid)
    if job is None:
        raise SystemExit("pve_sim_jobs: no job '%s'" % jid)
    if str(job.get("enabled", "1")) == "0":
        out.append("job '%s' is disabled: nothing run" % jid)
        return
    sid = backup_storage(s, job)
    keep = retention(s, sid, job)
    for node, vmid, vm in selected(s, job):
        if not g.node_alive(d, s, node):
            out.append("skipped %d on %s: its node is down" % (vmid, node))
            continue
        try:
            st.check_enabled(s, sid, node)
            volid = backup_vm(s, node, vmid, vm, sid, when, job, [])
        except g.Fail as e:
            out.append("failed %d on %s: %s" % (vmid, node, e.reason))
            continue
        out.append("backup %s" % volid)
        if str(job.get("remove", "1")) != "0":
            for v in prune(s, node, sid, vmid, keep, []):
                out.append("pruned %s" % v)


def api_vzdump(c, node):
    """VZDump.pm's API (pve-manager PVE/API2/VZDump.pm vzdump): the VMs of
    this node that vmid or all/exclude select (a VMID on another node is
    that node's business; none here and no 'all': 'OK' at once, no task);
    checks as verify_vzdump_parameters; then a 'vzdump' task (its ID the
    VMID when there is one) that backs each up in turn (finish_vzdump)."""
    p = dict(c.p)
    p.pop("node", None)
    if p.get("stdout") == "1":
        raise fail(501, "vzdump to stdout is not modelled in the simulator")
    check(c.s, {k: v for k, v in p.items() if k in ("vmid", "prune-backups", "mode", "storage")})
    check_selection(p)
    if p.get("pool"):
        raise fail(501, "backing up a pool is not modelled in the simulator")
    sid = backup_storage(c.s, p)
    st.check_enabled(c.s, sid, node)
    mine = [vmid for _, vmid, _ in selected(c.s, dict(p, node=None), only_node=node)]
    for vmid in vmids(p.get("vmid")):
        if not any(vmid in g.vms(c.s, n) or str(vmid) in g.vms(c.s, n) for n in c.s["guest"]["vms"]):
            raise fail(500, "unable to find configuration file for VM %d on node '%s'" % (vmid, node))
    if not mine and p.get("all") not in ("1", 1):
        return "OK"
    tid = str(mine[0]) if len(mine) == 1 and not p.get("all") else ""
    upid, t = g.new_task(c, node, "vzdump", tid, {"node": node, "vmids": mine, "opts": p, "storage": sid})
    return upid


def finish_vzdump(sim, s, act, log):
    node, sid, opts = act["node"], act["storage"], act["opts"]
    log.append("INFO: starting new backup job: vzdump %s" % " ".join(
        [" ".join(str(v) for v in act["vmids"])] + ["--%s %s" % kv for kv in sorted(opts.items())
                                                     if kv[0] not in ("vmid",)]))
    keep, errors = retention(s, sid, opts), 0
    for vmid in act["vmids"]:
        vm = g.vms(s, node).get(str(vmid))
        if vm is None:
            continue
        try:
            backup_vm(s, node, vmid, vm, sid, time.time(), opts, log)
        except g.Fail as e:
            errors += 1
            log.append("ERROR: Backup of VM %d failed - %s" % (vmid, e.reason))
            continue
        if str(opts.get("remove", "1")) != "0":
            prune(s, node, sid, vmid, keep, log)
    if errors:
        raise g.Fail(500, "job errors")
    log.append("INFO: Backup job finished successfully")


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
            run_job(a.state, s, a.run_job, a.time or time.time(), out)
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
                                ("DELETE", r"/cluster/backup/([^/]+)", api_backup_delete),
                                ("POST", r"/nodes/([^/]+)/vzdump", api_vzdump)):
        g.route(method, pattern)(fn)
    g.FINISH["vzdump"] = finish_vzdump


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
