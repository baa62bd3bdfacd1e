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
"""
import re
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


def register():
    """Route the endpoints through pve_sim_guests.py's table."""
    for method, pattern, fn in (("GET", r"/cluster/backup", api_backup_index),
                                ("POST", r"/cluster/backup", api_backup_create),
                                ("GET", r"/cluster/backup/([^/]+)", api_backup_read),
                                ("PUT", r"/cluster/backup/([^/]+)", api_backup_update),
                                ("DELETE", r"/cluster/backup/([^/]+)", api_backup_delete)):
        g.route(method, pattern)(fn)
