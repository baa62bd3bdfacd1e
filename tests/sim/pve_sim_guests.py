# SPDX-License-Identifier: MIT
"""pve_sim_guests.py — QEMU guests, storage and uploads for pve_sim.py (the
Proxmox VE API simulator). pve_sim.py imports it and hands it:

  * every request first (dispatch(); None means "not mine"),
  * multipart uploads before their body is read (read_upload()),
  * the tasks it created when they end (finish_task()),
  * its command-line options (add_arguments()) and each node's start (init_node()).

What is modelled, and from which Proxmox code, is in docs/pve.md ("The guest
model" and the fidelity ledger); each function names its source. Source
names are short: "Qemu.pm" is qemu-server's src/PVE/API2/Qemu.pm,
"QemuServer.pm" qemu-server's src/PVE/QemuServer.pm, "AbstractConfig.pm"
pve-guest-common's src/PVE/AbstractConfig.pm, "Content.pm"/"Status.pm"/
"Config.pm" pve-storage's src/PVE/API2/Storage/*.pm, "AnyEvent.pm"
pve-http-server's src/PVE/APIServer/AnyEvent.pm.
"""
import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import sys
import time
import traceback
import uuid

import pve_sim_payload as pp
import pve_sim_registry as reg
from envfile import env_file
import pve_sim_storage as st
import pve_sim_vmconf as vc
from pve_sim_storage import GIB, MIB
from pve_sim_vmconf import (CLOUDINIT_SIZE, DRIVE_RE, NEW_DISK_RE, UNUSED_RE, agent_enabled, drives,
                            is_cdrom, is_cloudinit, parse_drive, parse_net, print_drive, print_net, random_mac,
                            split_volid, validate_sshkeys)

Fail = None  # pve_sim.Fail, set by bind()

LOCKFILE = "/var/lock/qemu-server/lock-%s.conf"   # QemuConfig.pm config_file_lock


def bind(fail_cls):
    """pve_sim.py runs as __main__: importing it here would make a second
    Fail class, so it hands its own over."""
    global Fail
    Fail = st.Fail = vc.Fail = fail_cls


def param_exc(param, msg):
    """pve-common Exception.pm raise_param_exc: 400 with the parameter's error."""
    return Fail(400, "Parameter verification failed.", {param: msg})


class Busy(Exception):
    """A flock another task holds: the request waits (dispatch), then fails
    as pve-common Tools.pm lock_file_full does."""

    def __init__(self, timeout, vmid):
        super().__init__("can't lock file '%s' - got timeout" % (LOCKFILE % vmid))
        self.timeout = timeout


def add_arguments(ap):
    ap.add_argument("--storage-preset", choices=sorted(st.PRESETS), default="installer",
                    help="the storage.cfg the simulated world starts with (pve_sim_storage.py)")
    ap.add_argument("--local-gib", type=int, default=100, help="size of this node's 'local'")
    ap.add_argument("--lvm-gib", type=int, default=400, help="size of this node's 'local-lvm' thin pool")
    ap.add_argument("--guest-boot-ms", type=int, default=500,
                    help="a started guest's agent answers after this long")
    ap.add_argument("--copy-mb-per-s", type=float, default=1e6,
                    help="clone, import and upload copies add SIZE/RATE to their task's time")
    ap.add_argument("--exec-ms", type=int, default=300,
                    help="how long K3s's or Technitium's install script runs in a guest (agent/exec)")
    ap.add_argument("--technitium-dir",
                    help="publish each Technitium install (agent/exec) in a VM of this node for "
                         "technitium_sim.py --install-dir: DIR/VM-NAME/{admin.pw,web.pfx,technitium.env,installed}")
    ap.add_argument("--registry-dir",
                    help="the in-cluster registry the seed script (agent/exec) pushes to, shared with "
                         "k8s_sim.py: DIR/ready while it is available, DIR/pushed.json what was pushed")
    ap.add_argument("--lock-wait-ms", type=int, default=1000,
                    help="longest wait for a VM lock (Proxmox waits 1-10 s, by call)")


def init_node(sim, s, a, was_member=False):
    """A node's start. A reinstalled node (--fresh) starts with empty disks.
    Had it been a cluster member, the cluster file system (pmxcfs) keeps its
    guests' configurations in /etc/pve/nodes/NODE/qemu-server — `pvecm
    delnode` leaves that directory — so they stay, each a stopped VM whose
    node-local disks are gone ("lost_disks"; its guest-side state with them);
    they are the cluster's, not the new installation's own /etc/pve (the join
    pre-check does not count them, has_guests)."""
    st.init(s, sim.node, a)
    s["nodes"][sim.node]["gopts"]["technitium_dir"] = os.path.abspath(a.technitium_dir) if a.technitium_dir \
        else None
    s["nodes"][sim.node]["gopts"]["registry_dir"] = os.path.abspath(a.registry_dir) if a.registry_dir else None
    vms = s["guest"].setdefault("vms", {})
    s["guest"].setdefault("flocks", {})
    if a.fresh:  # the old installation's workers died with it, their task logs (/var/log/pve/tasks) too
        for upid in [u for u, t in s["tasks"].items() if t["node"] == sim.node and t["status"] == "running"]:
            release(s, upid)
            del s["tasks"][upid]
    if a.fresh and was_member and vms.get(sim.node):
        c = s["clusters"].get(was_member) if isinstance(was_member, str) else None
        if c is not None and sim.node not in c.setdefault("nodedirs", []):
            c["nodedirs"].append(sim.node)
        for vmid, vm in list(vms[sim.node].items()):
            kept = new_vm(dict(vm["conf"]))  # a lock in the config stays, as in the file
            kept["pending"], kept["pdel"] = vm.get("pending", {}), vm.get("pdel", {})
            kept["lost_disks"] = True
            vms[sim.node][vmid] = kept
    elif a.fresh or sim.node not in vms:
        vms[sim.node] = {}


def node_alive(d, s, node):
    """NODE's simulator runs: it touched DIR/NODE.alive (pve_sim.py's
    State.beat) under a second ago, and no test marked it down."""
    n = s["nodes"].get(node)
    try:
        age = time.time() - os.stat(os.path.join(d, node + ".alive")).st_mtime
    except FileNotFoundError:
        return False
    return n is not None and age < 1.0 and not n.get("down")


def has_guests(s, node):
    """Guests of the node's own installation (pve-cluster's join check)."""
    return any(not vm.get("lost_disks") for vm in s.get("guest", {}).get("vms", {}).get(node, {}).values())


UPLOAD_RE = re.compile(r"/nodes/([^/]+)/storage/([^/]+)/upload")


def is_upload(method, relpath):
    """pve-manager PVE/HTTPServer.pm auth_handler: a POST to this path is an
    upload (no CSRF check; a body must be multipart/form-data)."""
    return method == "POST" and UPLOAD_RE.fullmatch(relpath) is not None


# ---- routing -----------------------------------------------------------------

class Ctx:
    """One request: handler, state, parameters, task faults."""

    def __init__(self, h, s, p, faults):
        self.h, self.sim, self.s, self.p, self.faults = h, h.sim, s, p, faults


ROUTES = []


def route(method, pattern):
    def deco(fn):
        ROUTES.append((method, re.compile(pattern), fn))
        return fn
    return deco


def dispatch(h, method, path, p, task_faults):
    """(data, extra) for the paths this module serves, else None. A request
    waiting for a VM lock retries, outside the state lock, for up to
    min(Proxmox's timeout, --lock-wait-ms)."""
    for m, rx, fn in ROUTES:
        mt = rx.fullmatch(path)
        if m == method and mt:
            break
    else:
        return None
    sim = h.sim
    deadline = None
    while True:
        try:
            with sim.state as s:
                node = mt.group(1) if path.startswith("/nodes/") else sim.node
                if node != sim.node and fn is not api_upload:
                    h.check_proxy(s, node)
                res = fn(Ctx(h, s, p, task_faults), *mt.groups())
            break
        except Busy as b:
            t = time.time()
            if deadline is None:
                deadline = t + min(b.timeout, sim.a.lock_wait_ms / 1000.0)
            if t >= deadline:
                raise Fail(500, str(b))
            time.sleep(0.02)
        except Fail:
            raise
        except Exception as e:  # a bug here: an answer and a trace for the test log, not a dropped connection
            traceback.print_exc(file=sys.stderr)
            raise Fail(500, "pve_sim_guests: internal error: %r" % e)
    if isinstance(res, tuple) and res and res[0] == "wait":
        return wait_task(sim, *res[1:])
    return res, None


def wait_task(sim, upid, delay, errfmt):
    """The 'delay' / 'background_delay' parameters: wait for the task up to
    DELAY seconds; null if it ended well, its error if not, else the UPID
    (Content.pm delete; Qemu.pm $update_vm_api)."""
    end = time.time() + delay
    while time.time() < end:
        t = sim.state.peek()["tasks"][upid]
        if t["status"] == "stopped":
            if t["exitstatus"] == "OK":
                return None, None
            raise Fail(500, errfmt % t["exitstatus"])
        time.sleep(0.02)
    return upid, None


def new_task(c, node, ttype, tid, act, extra_s=0.0):
    act = dict(act, op="guest", kind=ttype)
    upid = c.sim.new_task(c.s, node, ttype, str(tid), c.h.user, act, c.faults)
    t = c.s["tasks"][upid]
    t["end"] += extra_s
    return upid, t


def copy_seconds(s, node, nbytes):
    return nbytes / (s["nodes"][node]["gopts"]["copy_mb_per_s"] * MIB)


# ---- flocks: /var/lock/qemu-server/lock-VMID.conf ----------------------------

def holders(s, vmid):
    lk = s["guest"]["flocks"].setdefault(str(vmid), [])
    lk[:] = [x for x in lk if s["tasks"].get(x["upid"], {}).get("status") == "running"]
    return lk


def conflicts(s, vmid, mode):
    return [x for x in holders(s, vmid) if mode == "ex" or x["mode"] == "ex"]


def sync_lock(c, vmid, timeout=10):
    """AbstractConfig.pm lock_config (exclusive, 10 s) in a synchronous call."""
    if conflicts(c.s, vmid, "ex"):
        raise Busy(timeout, vmid)


def task_locks(c, upid, t, wants):
    """A worker takes flocks as it starts: [(vmid, 'ex'|'sh', timeout)]. A
    lock held by another task that ends within the wait delays this task;
    otherwise the task fails after the wait with lock_file_full's message.
    Returns False when the task will fail."""
    s = c.s
    ready, dur = time.time(), t["end"] - t["start"]
    wait = c.sim.a.lock_wait_ms / 1000.0
    for vmid, mode, timeout in wants:
        busy = conflicts(s, vmid, mode)
        if busy:
            free_at = max(s["tasks"][x["upid"]]["end"] for x in busy)
            limit = min(timeout, wait)
            if free_at - time.time() > limit:
                t["end"] = time.time() + limit
                t["action"]["lockfail"] = "can't lock file '%s' - got timeout" % (LOCKFILE % vmid)
                return False
            ready = max(ready, free_at)
    t["end"] = ready + dur
    for vmid, mode, _ in wants:
        holders(s, vmid).append({"upid": upid, "mode": mode})
    return True


def release(s, upid):
    for lk in s["guest"]["flocks"].values():
        lk[:] = [x for x in lk if x["upid"] != upid]


# ---- VMs ---------------------------------------------------------------------

def vms(s, node):
    return s["guest"]["vms"].setdefault(node, {})


def members(s, node):
    cid = s["nodes"][node]["cluster"]
    return [node] if cid is None else sorted(s["clusters"][cid]["members"])


def fs_nodes(s, node):
    """The nodes/ directories of NODE's /etc/pve: its cluster's members and
    every node that ever was one (pmxcfs keeps nodes/NAME when `pvecm
    delnode` removes NAME; pve_sim.py and init_node note them in the
    cluster's "nodedirs")."""
    cid = s["nodes"][node]["cluster"]
    if cid is None:
        return [node]
    c = s["clusters"][cid]
    return sorted(set(c["members"]) | {n for n in c.get("nodedirs", []) if n in s["nodes"]})


def vmlist(s, node):
    """pve-cluster's vmlist as NODE sees it: {vmid: node} over every
    qemu-server directory of its /etc/pve (the --guests stand-ins of the
    members included)."""
    out = {}
    for n in fs_nodes(s, node):
        for i in range(s["nodes"].get(n, {}).get("guests", 0)):
            out[100 + i] = n
        for vmid in visible(s, node, n):
            out[int(vmid)] = n
    return out


def visible(s, viewer, node):
    """NODE's VMs as VIEWER sees them: a reinstalled node outside the
    cluster has only its own /etc/pve, without the configurations the
    cluster kept for it (init_node)."""
    alone = s["nodes"][viewer]["cluster"] is None
    return {k: v for k, v in vms(s, node).items() if not (alone and v.get("lost_disks"))}


def load_config(s, node, vmid):
    """AbstractConfig.pm load_config."""
    vm = vms(s, node).get(str(vmid))
    if vm is None:
        raise Fail(500, "Configuration file 'nodes/%s/qemu-server/%s.conf' does not exist" % (node, vmid))
    return vm


def check_running(s, node, vmid):
    """QemuServer.pm check_running (assert_config_exists_on_node first)."""
    vm = vms(s, node).get(str(vmid))
    if vm is None:
        raise Fail(500, "unable to find configuration file for VM %s on node '%s'" % (vmid, node))
    return vm["running"]


def check_lock(conf):
    """AbstractConfig.pm check_lock."""
    if conf.get("lock"):
        raise Fail(500, "VM is locked (%s)" % conf["lock"])


def check_quorum(s, sim, node):
    """pve-cluster Cluster.pm check_cfs_quorum."""
    cid = s["nodes"][node]["cluster"]
    if cid is not None and not sim.quorate(s, cid):
        raise Fail(500, "cluster not ready - no quorum?")


def new_vm(conf):
    return {"conf": conf, "pending": {}, "pdel": {}, "running": False, "started": 0}


def merged(vm, current=False):
    """AbstractConfig.pm load_current_config: pending changes applied unless
    'current'."""
    conf = dict(vm["conf"])
    if not current:
        conf.update(vm["pending"])
        for k in vm["pdel"]:
            conf.pop(k, None)
    return conf


def digest(vm):
    """The config file's SHA-1 (PVE::QemuServer parse_vm_config); here of a
    canonical rendering of the config and its pending section."""
    text = "".join("%s: %s\n" % kv for kv in sorted(vm["conf"].items()))
    if vm["pending"] or vm["pdel"]:
        text += "[PENDING]\n" + "".join("%s: %s\n" % kv for kv in sorted(vm["pending"].items()))
        text += "delete: %s\n" % ",".join(("!" if f else "") + k for k, f in sorted(vm["pdel"].items()))
    return hashlib.sha1(text.encode()).hexdigest()


def memory_mib(conf):
    m = conf.get("memory", "512")
    return int(m.split("=")[-1].split(",")[0])


def bootdisk_size(conf):
    """Drive.pm bootdisk_size: the first boot device that is a disk."""
    boot = conf.get("boot", "")
    order = re.search(r"order=([^,]+)", boot)
    devs = order.group(1).split(";") if order else [conf.get("bootdisk")] if conf.get("bootdisk") else []
    for k in devs:
        if DRIVE_RE.fullmatch(k or "") and conf.get(k):
            d = parse_drive(conf[k])
            if d and not is_cdrom(d):
                return d.get("size")
    return None


def vmstatus(s, node, vmid, vm, full=False):
    """QemuServer.pm vmstatus for one VM."""
    conf = vm["conf"]
    d = {"vmid": int(vmid), "status": "running" if vm["running"] else "stopped",
         "name": conf.get("name", "VM %s" % vmid), "maxmem": memory_mib(conf) * MIB,
         "cpus": int(conf.get("sockets", 1)) * int(conf.get("cores", 1)),
         "maxdisk": bootdisk_size(conf) or 0, "disk": 0, "uptime": 0, "cpu": 0, "mem": 0, "netin": 0,
         "netout": 0, "diskread": 0, "diskwrite": 0}
    if vm["running"]:
        d["pid"] = 100000 + int(vmid)
        d["uptime"] = int(time.time() - vm["started"])
    if conf.get("template") == "1":
        d["template"] = 1
    if conf.get("lock"):
        d["lock"] = conf["lock"]
    if conf.get("tags"):
        d["tags"] = conf["tags"]
    if any(re.fullmatch(r"serial\d", k) for k in conf):
        d["serial"] = 1
    if full:
        d["qmpstatus"] = d["status"]
        d["ha"] = {"managed": 0}
        if agent_enabled(conf):
            d["agent"] = 1
    return d


# ---- storage endpoints -------------------------------------------------------

@route("POST", r"/storage")
def api_storage_create(c):
    return st.create(c.s, dict(c.p))


@route("GET", r"/storage")
def api_storage_index(c):
    """Config.pm index."""
    out = [st.api_entry(c.s, sid) for sid in sorted(st.cfg(c.s))]
    return [d for d in out if not c.p.get("type") or d["type"] == c.p["type"]]


@route("GET", r"/storage/([^/]+)")
def api_storage_get(c, sid):
    return st.api_entry(c.s, sid)


@route("PUT", r"/storage/([^/]+)")
def api_storage_put(c, sid):
    return st.update(c.s, sid, c.p)


@route("GET", r"/nodes/([^/]+)/storage")
def api_node_storage(c, node):
    """Status.pm index: filters content (any of), enabled, storage, target."""
    want = [x for x in re.split(r"[,;\s]+", c.p.get("content", "")) if x]
    if c.p.get("storage") and c.p["storage"] not in st.cfg(c.s):
        raise param_exc("storage", "No such storage.")
    target = c.p.get("target")
    target = None if target in (None, node, "localhost") else target
    out = []
    for sid in sorted(st.cfg(c.s)):
        scfg = st.cfg(c.s)[sid]
        d = st.info(c.s, node, sid)
        if want and (not d["enabled"] or not set(want) & set(scfg.get("content") or [])):
            continue
        if c.p.get("enabled") == "1" and scfg.get("disable"):
            continue
        if c.p.get("storage") and c.p["storage"] != sid:
            continue
        if target and (not scfg.get("shared") or st.check_enabled(c.s, sid, target, noerr=True) is None):
            continue
        if d["total"]:
            d["used_fraction"] = d["used"] / d["total"]
        d["storage"] = sid
        out.append(d)
    return out


@route("GET", r"/nodes/([^/]+)/storage/([^/]+)/status")
def api_storage_status(c, node, sid):
    """Status.pm read_status."""
    if sid not in st.cfg(c.s):
        raise param_exc("storage", "No such storage.")
    return st.info(c.s, node, sid)


@route("GET", r"/nodes/([^/]+)/storage/([^/]+)/content")
def api_content(c, node, sid):
    """Content.pm index."""
    vmid = int(c.p["vmid"]) if c.p.get("vmid") else None
    return st.list_content(c.s, node, sid, vmid, c.p.get("content"))


@route("DELETE", r"/nodes/([^/]+)/storage/([^/]+)/content/(.+)")
def api_content_delete(c, node, sid, volume):
    """Content.pm delete: $real_volume_id, then an 'imgdel' task; Storage.pm
    vdisk_free refuses a dir base image that linked clones use. Proxmox does
    not look at VM configs here: a disk or ISO a VM refers to is deleted all
    the same (only a running VM's LV is refused, by lvremove)."""
    if ":" in volume:
        vsid, _ = split_volid(volume)
        if vsid is None:
            raise param_exc("volume", "unable to parse volume ID '%s'" % volume)
        if vsid != sid:
            raise param_exc("volume", "storage ID mismatch (%s != %s)" % (vsid, sid))
        volid = volume
    else:
        volid = "%s:%s" % (sid, volume)
    vtype, name, owner, isbase, fmt = st.parse_volname(c.s, volid)
    tid = "%s@%s" % (owner, sid) if owner is not None else sid
    upid, t = new_task(c, node, "imgdel", tid, {"node": node, "volid": volid})
    if c.p.get("delay"):
        return ("wait", upid, int(c.p["delay"]), "%s")
    return upid


def finish_imgdel(sim, s, act, log):
    node, volid = act["node"], act["volid"]
    sid, volname = st.parse_volid(volid)
    if st.base_in_use(s, node, volid):
        raise Fail(500, "base volume '%s' is still in use by linked clones" % volname)
    v = st.vols(s, node, sid).get(volname)
    if v is None:
        log.append("disk image '%s' does not exist" % st.real_path(s, sid, "images", volname))
    else:
        if v["content"] == "images" and st.storage_config(s, sid)["type"] == "lvmthin":
            for vm in vms(s, node).values():
                if vm["running"] and any(d and d.get("file") == volid for _, d in drives(vm["conf"])):
                    raise Fail(500, "lvremove 'pve/%s' error:   Logical volume pve/%s in use." % (volname, volname))
        del st.vols(s, node, sid)[volname]
        if v.get("file"):
            try:
                os.unlink(v["file"])
            except FileNotFoundError:
                pass
    log.append("Removed volume '%s'" % volid)


# ---- uploads -----------------------------------------------------------------

def read_upload(h, method, relpath, query_params):
    """Called by pve_sim.py before it reads a body: for an upload (is_upload),
    stream the multipart body into STATE/uploads/pveupload-HEX (AnyEvent.pm:
    /var/tmp/pveupload-HEX) and return the parameters to record and check:
    the query's, the form fields and the file part's name as "filename".
    Returns None for any other request. Errors are Fail (500, as Proxmox)."""
    if not is_upload(method, relpath):
        return None
    n = int(h.headers.get("Content-Length") or 0)
    if not n:
        return None  # no body: an ordinary request (the handler then finds no file)
    h.close_connection = True  # AnyEvent.pm: keep_alive = 0 for uploads
    ctype = h.headers.get("Content-Type") or ""
    ct, *rest = [x.strip() for x in re.split(r"[;,]", ctype)]
    bnd = next((m.group(1) for x in rest for m in [re.fullmatch(r"boundary\s*=\s*(\S+?)", x)] if m), None)
    if not (bnd and ct == "multipart/form-data"):
        raise Fail(500, "upload 'Content-Type '%s' not implemented" % ctype)
    if "tmpfilename" in query_params:
        raise Fail(500, "'tmpfilename' query parameter is not allowed for file uploads")
    d = os.path.join(h.sim.state.dir, "uploads")
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "pveupload-" + secrets.token_hex(16))
    try:
        with open(tmp, "xb") as out:
            fields, size = st.read_multipart(h.rfile, n, bnd.strip('"'), out)
    except BaseException:
        os.unlink(tmp)
        raise
    h.upload = {"tmp": tmp, "size": size}
    params = dict(query_params)
    params.update(fields)
    return params


def request_done(h):
    """A temporary upload file no task took over is removed, as
    AnyEvent.pm cleanup_reqstate does."""
    up = getattr(h, "upload", None)
    if up:
        try:
            os.unlink(up["tmp"])
        except FileNotFoundError:
            pass
    h.upload = None


@route("POST", r"/nodes/([^/]+)/storage/([^/]+)/upload")
def api_upload(c, node, sid):
    """Status.pm upload. The API has no proxyto for it: the node that got the
    file runs the 'imgcopy' task and copies it to NODE (scp there)."""
    s, up = c.s, getattr(c.h, "upload", None)
    scfg = st.check_enabled(s, sid, node)
    if "path" not in scfg:
        raise Fail(500, "can't upload to storage type '%s'" % scfg["type"])
    if up is None:
        raise Fail(500, "missing temporary file name")
    content = c.p["content"]
    # Storage.pm normalize_content_filename
    name = re.sub(r"[^a-zA-Z0-9_.-]", "_", re.sub(r"^.*[/\\]", "", c.p["filename"].rstrip("\n")))
    bad = {"iso": (st.ISO_EXT, "wrong file extension"), "vztmpl": (st.VZTMPL_EXT, "wrong file extension"),
           "import": (st.UPLOAD_IMPORT_EXT, "invalid filename or wrong extension")}[content]
    if not bad[0].fullmatch(name):
        raise param_exc("filename", bad[1])
    if content not in (scfg.get("content") or []):
        raise Fail(500, "storage '%s' does not support '%s' content" % (sid, content))
    if node != c.sim.node and node not in members(s, c.sim.node):
        raise Fail(500, "hostname lookup '%s' failed - failed to get address info for: %s: "
                        "Name or service not known" % (node, node))
    keep = up["tmp"] + ".task"
    os.rename(up["tmp"], keep)
    c.h.upload = None
    act = {"node": node, "sid": sid, "content": content, "name": name, "tmp": keep, "size": up["size"],
           "checksum": c.p.get("checksum"), "algo": c.p.get("checksum-algorithm")}
    upid, t = new_task(c, c.sim.node, "imgcopy", "", act, copy_seconds(s, c.sim.node, up["size"]))
    return upid


def finish_imgcopy(sim, s, act, log):
    """The upload's worker: checksum, the image check, then the copy; an
    existing file of that name is overwritten ("NOTE: we simply overwrite the
    destination file if it already exists", Status.pm upload)."""
    node, sid, content, name, tmp = act["node"], act["sid"], act["content"], act["name"], act["tmp"]
    shown = "/var/tmp/" + os.path.basename(tmp)[:-len(".task")]
    log.append("starting file import from: %s" % shown)
    if act["algo"]:
        h = hashlib.new(act["algo"])
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        got = h.hexdigest()
        if got.lower() != act["checksum"].lower():
            log.append("calculating checksum...")
            raise Fail(500, "checksum mismatch: got '%s' != expect '%s'" % (got, act["checksum"]))
        log.append("calculating checksum...OK, checksum verified")
    fmt = "raw"
    if content == "iso":
        st.image_info(tmp, "auto-detect", shown)  # Storage.pm assert_iso_content
        fmt = "iso"
    elif content == "import":
        fmt = st.UPLOAD_IMPORT_EXT.fullmatch(name).group(1)
        if fmt == "ova":
            raise Fail(501, "OVA uploads are not modelled in the simulator")
        st.image_info(tmp, fmt, shown)
    if node != sim.node and not sim.online(s, node):
        raise Fail(500, "can't activate storage '%s' on node '%s': ssh: connect to host %s port 22: "
                        "Connection refused" % (sid, node, s["nodes"][node]["ip"]))
    dest = st.real_path(s, sid, content, name)
    log.extend(["target node: %s" % node, "target file: %s" % dest, "file size is: %d" % act["size"]])
    if act["size"] > st.info(s, node, sid)["avail"]:
        raise Fail(500, "import failed: cp: error writing '%s': No space left on device" % dest)
    path = st.file_path(sim, node, sid, content, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.replace(tmp, path)
    volname = "%s/%s" % (content, name)
    st.vols(s, node, sid)[volname] = {"size": act["size"], "ctime": st.now(), "format": fmt, "content": content,
                                      "vmid": None, "file": path}
    log.append("finished file import successfully")


def abort_imgcopy(sim, s, act, log):
    try:
        os.unlink(act["tmp"])
    except FileNotFoundError:
        pass


# ---- QEMU: list, status, resources -------------------------------------------

@route("GET", r"/nodes/([^/]+)/qemu")
def api_vmlist(c, node):
    """Qemu.pm vmlist; the --guests stand-ins of the join pre-checks first."""
    fake = [{"vmid": 100 + i, "status": "stopped", "name": "guest%d" % i}
            for i in range(c.s["nodes"][node]["guests"])]
    return fake + [vmstatus(c.s, node, k, v)
                   for k, v in sorted(visible(c.s, node, node).items(), key=lambda x: int(x[0]))]


@route("GET", r"/cluster/resources")
def api_resources(c):
    """pve-manager API2/Cluster.pm resources with API2Tools.pm
    extract_vm_stats and extract_node_stats (types vm, storage, node)."""
    s, out, want = c.s, [], c.p.get("type")
    nodes = members(s, c.sim.node)
    if want in (None, "vm"):
        for vmid, n in sorted(vmlist(s, c.sim.node).items()):
            vm = vms(s, n).get(str(vmid))
            e = {"id": "qemu/%d" % vmid, "vmid": vmid, "node": n, "type": "qemu", "status": "stopped",
                 "name": "guest%d" % (vmid - 100), "template": 0}
            if vm:
                d = vmstatus(s, n, vmid, vm)
                e.update({k: d[k] for k in ("status", "name", "maxmem", "maxdisk", "uptime", "cpu", "mem",
                                             "disk", "netin", "netout", "diskread", "diskwrite")})
                e.update(template=d.get("template", 0), maxcpu=d["cpus"])
                for k in ("lock", "tags"):
                    if k in d:
                        e[k] = d[k]
            out.append(e)
    if want in (None, "storage"):
        for n in nodes:
            for sid in sorted(st.cfg(s)):
                d = st.info(s, n, sid)
                out.append({"id": "storage/%s/%s" % (n, sid), "storage": sid, "node": n, "type": "storage",
                            "status": "available" if d["active"] else "unknown", "plugintype": d["type"],
                            "content": d["content"], "shared": d["shared"], "disk": d["used"],
                            "maxdisk": d["total"]})
    if want in (None, "node"):
        for n in nodes:
            out.append({"id": "node/%s" % n, "node": n, "type": "node",
                        "status": "online" if c.sim.online(s, n) else "offline"})
    return out


@route("GET", r"/cluster/nextid")
def api_nextid(c):
    """pve-manager API2/Cluster.pm nextid."""
    ids = vmlist(c.s, c.sim.node)
    if c.p.get("vmid"):
        if int(c.p["vmid"]) in ids:
            raise param_exc("vmid", "VM %s already exists" % c.p["vmid"])
        return c.p["vmid"]
    return next(i for i in range(100, 1000000) if i not in ids)


@route("GET", r"/nodes/([^/]+)/qemu/(\d+)/status/current")
def api_status(c, node, vmid):
    return vmstatus(c.s, node, vmid, load_config(c.s, node, vmid), full=True)


@route("GET", r"/nodes/([^/]+)/qemu/(\d+)/config")
def api_config_get(c, node, vmid):
    """Qemu.pm vm_config."""
    vm = load_config(c.s, node, vmid)
    conf = merged(vm, c.p.get("current") == "1")
    conf["digest"] = digest(vm)
    if conf.get("cipassword"):
        conf["cipassword"] = "**********"
    return conf


# ---- QEMU: create ------------------------------------------------------------

def check_drive_param(c, node, p):
    """Qemu.pm $check_drive_param."""
    for opt in sorted(p):
        if not DRIVE_RE.fullmatch(opt):
            continue
        d = parse_drive(p[opt])
        if d is None or (d.get("media") == "cdrom" and opt.startswith("virtio")):
            raise param_exc(opt, "unable to parse drive options")
        if "import-from" in d:
            m = NEW_DISK_RE.fullmatch(d.get("file", ""))
            if not m or float(m.group(3)) != 0:
                raise param_exc(opt, "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>")
        sid, volname = split_volid(d.get("file"))
        if sid and not NEW_DISK_RE.fullmatch(d["file"]) and volname != "cloudinit":
            if st.parse_volname(c.s, d["file"])[0] == "iso" and d.get("media") != "cdrom":
                raise param_exc(opt, "explicit 'media=cdrom' is required for iso images")
        p[opt] = print_drive(d)


def check_storage_access(c, node, p, default_storage):
    """Qemu.pm $check_storage_access (the parts without permissions)."""
    s = c.s
    for opt in sorted(p):
        if not DRIVE_RE.fullmatch(opt):
            continue
        d = parse_drive(p[opt]) or {}
        volid = d.get("file", "")
        sid, volname = split_volid(volid)
        if not volid or volid in ("none", "cloudinit", "cdrom") or volname == "cloudinit":
            pass
        elif not is_cdrom(d) and NEW_DISK_RE.fullmatch(volid):
            sid = NEW_DISK_RE.fullmatch(volid).group(2) or default_storage
            if not sid:
                raise Fail(500, "no storage ID specified (and no default storage)")
            if "images" not in (st.storage_config(s, sid).get("content") or []):
                raise param_exc("storage", "storage '%s' does not support vm images" % sid)
        elif sid:
            if st.parse_volname(s, volid)[0] not in ("images", "iso"):
                raise param_exc(opt, "content type needs to be 'images' or 'iso'")
        src = d.get("import-from")
        if src:
            ssid, _ = split_volid(src)
            if not ssid:
                raise Fail(501, "importing from an absolute path is not modelled in the simulator")
            st.storage_config(s, ssid)
            vtype, _, _, _, fmt = st.parse_volname(s, src)
            if vtype not in ("images", "import"):
                raise param_exc(opt, "%s has wrong type '%s' - needs to be 'images' or 'import'" % (src, vtype))
            if fmt == "ova":
                raise Fail(501, "importing from an OVA is not modelled in the simulator")


def add_random_macs(p):
    """QemuServer/Network.pm add_random_macs (and update_vm_api's net
    handling): a NIC without MAC gets one."""
    for k in list(p):
        if re.fullmatch(r"net\d+", k):
            n = parse_net(p[k])
            n.setdefault("macaddr", random_mac())
            p[k] = print_net(n)


def import_size(s, node, src, log):
    """The size an 'import-from' source gives the new disk: its virtual size.
    Qemu.pm create_disks checks an 'import' volume as untrusted first
    (Plugin.pm file_size_info), then $import_from_volid copies it."""
    sid, volname = st.parse_volid(src)
    vtype, name, owner, _, fmt = st.parse_volname(s, src)
    v = st.vols(s, node, sid).get(volname)
    if vtype == "import":
        shown = st.real_path(s, sid, "import", name)
        if v is None:
            raise Fail(500, "failed to stat '%s'" % shown)
        return st.image_info(v["file"], fmt, shown)[0]
    if owner is not None and owner in vmlist(s, node) and str(owner) not in vms(s, node):
        raise Fail(500, "cannot import from '%s' - owner VM %s not on local node" % (src, owner))
    if v is None:
        raise Fail(500, "cannot import from '%s' - could not get size of %s" % (src, src))
    return v["size"]


def has_cloudinit(conf, skip):
    return next((k for k, d in drives(conf) if k != skip and d and is_cloudinit(d)), None)


def create_disks(s, node, vmid, conf, settings, default_storage, log, vollist):
    """Qemu.pm create_disks: allocate what the drive options ask for; the
    caller frees VOLLIST on error. Returns {opt: drive string}."""
    res = {}
    template = conf.get("template") == "1"
    for ds in sorted(settings):
        if not DRIVE_RE.fullmatch(ds):
            continue
        d = parse_drive(settings[ds])
        volid = d.get("file", "")
        sid, volname = split_volid(volid)
        m = NEW_DISK_RE.fullmatch(volid)
        if not volid or volid in ("none", "cdrom"):
            d.pop("size", None)
        elif volname == "cloudinit" or volid == "cloudinit":
            sid = sid or default_storage
            if not sid:
                raise Fail(500, "no storage ID specified (and no default storage)")
            other = has_cloudinit(conf, ds) or has_cloudinit(res, ds)
            if other:
                raise Fail(500, "%s - cloud-init drive is already attached at '%s'" % (ds, other))
            fmt = d.pop("format", "qcow2") if "path" in st.storage_config(s, sid) else None
            d["file"] = st.alloc(s, node, sid, vmid, CLOUDINIT_SIZE, "vm-%d-cloudinit" % vmid, fmt)
            d["media"] = "cdrom"
            vollist.append(d["file"])
            log.append("%s: successfully created disk '%s'" % (ds, print_drive(d)))
        elif m and not is_cdrom(d):
            sid = m.group(2) or default_storage
            if not sid:
                raise Fail(500, "no storage ID specified (and no default storage)")
            size = int(float(m.group(3)) * GIB)
            src = d.pop("import-from", None)
            if src:
                size = import_size(s, node, src, log)
            d["file"] = st.alloc(s, node, sid, vmid, size, fmt=d.pop("format", None))
            vollist.append(d["file"])
            if template:
                d["file"] = st.create_base(s, node, d["file"])
                vollist[-1] = d["file"]
            d["size"] = size
            log.append("%s: successfully created disk '%s'" % (ds, print_drive(d)))
        else:
            if sid:
                vt = st.parse_volname(s, volid)[0]
                if vt not in ("images", "iso"):
                    raise Fail(500, "cannot use volume %s - content type needs to be 'images' or 'iso'" % volid)
            v = st.volume(s, node, volid) if sid else None
            if v is None:
                raise Fail(500, "volume %s does not exist" % volid)
            d["size"] = v["size"]
        res[ds] = print_drive(d)
    return res


@route("POST", r"/nodes/([^/]+)/qemu")
def api_create(c, node):
    """Qemu.pm create_vm: checks, create_and_lock_config (the config exists
    at once with 'lock: create'), then a 'qmcreate' worker that holds the
    VM's flock, makes the disks and writes the config."""
    s, p = c.s, dict(c.p)
    vmid = int(p.pop("vmid"))
    p.pop("node", None)
    if "archive" in p:
        return restore(c, node, vmid, p)
    for k in ("bwlimit", "force", "pool", "ha-managed", "unique", "live-restore", "import-working-storage"):
        p.pop(k, None)
    start, storage = p.pop("start", None) == "1", p.pop("storage", None)
    validate_sshkeys(p)
    check_quorum(s, c.sim, node)
    if "cdrom" in p:  # Qemu.pm $resolve_cdrom_alias
        v = p.pop("cdrom")
        p["ide2"] = v if "media=" in v else v + ",media=cdrom"
    check_storage_access(c, node, p, storage)
    check_drive_param(c, node, p)
    add_random_macs(p)
    owner = vmlist(s, node).get(vmid)
    if owner is not None:  # pve-cluster Cluster.pm check_vmid_unused
        raise Fail(500, "unable to create VM %d - VM %d already exists on node '%s'" % (vmid, vmid, owner))
    vms(s, node)[str(vmid)] = new_vm({"lock": "create"})
    copy = sum(import_size_or_zero(s, node, parse_drive(p[k]).get("import-from")) for k in p if DRIVE_RE.fullmatch(k))
    upid, t = new_task(c, node, "qmcreate", vmid, {"node": node, "vmid": vmid, "params": p, "storage": storage,
                                                   "start": start}, copy_seconds(s, node, copy))
    task_locks(c, upid, t, [(vmid, "ex", 1)])
    return upid


# Qemu.pm create_vm: with 'archive', only these of its own parameters; every
# other (non-drive) option overrides the archived configuration.
RESTORE_PARAMS = ("archive", "storage", "force", "unique", "start", "bwlimit", "pool", "live-restore",
                  "ha-managed", "import-working-storage")


def restore(c, node, vmid, p):
    """Qemu.pm create_vm with 'archive' (qmrestore). Before the worker: no
    drive option beside an archive; the archive a backup volume this node
    can read (Qemu.pm $parse_restore_archive, Storage.pm
    abs_filesystem_path: "can't find file"); live-restore only from a
    Proxmox Backup Server; create_and_lock_config: an existing VMID only
    with force (Cluster.pm check_vmid_unused), then the VM must be on this
    node, unlocked (check_lock) and stopped ("vm is running"); the config
    is locked 'create' meanwhile. The 'qmrestore' worker then does the
    rest (finish_qmrestore). Each restore asked for is listed in
    s["guest"]["restores"]: {node, vmid, archive, time, upid, force,
    exitstatus} (None while it runs, then the task's)."""
    s = c.s
    emsg = "unable to restore VM %d -" % vmid
    for opt in sorted(p):
        if DRIVE_RE.fullmatch(opt):
            raise param_exc(opt, "option conflicts with option 'archive'")
    check_quorum(s, c.sim, node)
    archive, storage, force = p["archive"], p.get("storage"), p.get("force") == "1"
    sid, volname = split_volid(archive)
    if sid is None:
        raise Fail(500, "can't find file '%s'" % archive)
    scfg = st.check_enabled(s, sid, node)
    v = st.vols(s, node, sid).get(volname)
    if v is None or v.get("content") != "backup":
        raise Fail(500, "can't find file '%s'" % archive)
    if p.get("live-restore") == "1" and scfg["type"] != "pbs":
        raise Fail(500, "live-restore is only compatible with backup images from a Proxmox Backup Server")
    if storage:
        st.check_enabled(s, storage, node)
    owner = vmlist(s, node).get(vmid)
    prev = None
    if owner is not None:
        if not force:
            raise Fail(500, "%s VM %d already exists on node '%s'" % (emsg, vmid, owner))
        if owner != node or str(vmid) not in vms(s, node):
            raise Fail(500, "%s Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist"
                       % (emsg, node, vmid))
        prev = vms(s, node)[str(vmid)]
        if prev["conf"].get("lock"):
            raise Fail(500, "%s VM is locked (%s)" % (emsg, prev["conf"]["lock"]))
        if prev["conf"].get("protection") == "1":
            raise Fail(500, "%s protection mode enabled" % emsg)
        if prev["running"]:
            raise Fail(500, "%s vm is running" % emsg)
        sync_lock(c, vmid)
    override = {k: v for k, v in p.items() if k not in RESTORE_PARAMS}
    vms(s, node)[str(vmid)] = new_vm(dict(prev["conf"] if prev else {}, lock="create"))
    upid, t = new_task(c, node, "qmrestore", vmid,
                       {"node": node, "vmid": vmid, "archive": archive, "storage": storage, "prev": prev,
                        "unique": p.get("unique") == "1", "start": p.get("start") == "1", "override": override},
                       copy_seconds(s, node, sum(v.get("disks", {}).values())))
    task_locks(c, upid, t, [(vmid, "ex", 1)])
    s["guest"].setdefault("restores", []).append({"node": node, "vmid": vmid, "archive": archive,
                                                  "time": time.time(), "upid": upid, "force": force,
                                                  "exitstatus": None})
    return upid


def restore_ended(s, upid, exitstatus):
    """A restore's task ended: its entry in s["guest"]["restores"] says how."""
    for r in s["guest"].get("restores", []):
        if r["upid"] == upid:
            r["exitstatus"] = exitstatus


def finish_qmrestore(sim, s, act, log):
    """QemuServer.pm restore_vma_archive: the old VM's volumes freed as
    destroy_vm frees them (free_volume_logged), the archived disks made anew
    on 'storage' (else on the storage each was on) and a cloud-init drive
    allocated anew there too (parse_backup_hints); a disk the backup left
    out (backup=0) is dropped from the configuration as
    restore_update_config_line comments it out; with 'unique' new MACs
    (and a new SMBIOS UUID); the request's other options override the
    archived ones; a new vmgenid. The VM is stopped unless 'start'. The
    guest's own state is not in the archive (pve_sim_jobs.py keeps only
    the configuration and disk sizes): it boots as a new instance would."""
    node, vmid = act["node"], act["vmid"]
    sid, volname = st.parse_volid(act["archive"])
    v = st.vols(s, node, sid).get(volname)
    if v is None:
        raise Fail(500, "can't find file '%s'" % act["archive"])
    path = st.real_path(s, sid, "backup", volname.split("/", 1)[1])
    log.append("restore vma archive: zstd -q -d -c %s | vma extract -v -r /var/tmp/vzdumptmp%d.fifo - "
               "/var/tmp/vzdumptmp%d" % (path, os.getpid(), os.getpid()) if path.endswith(".zst") else
               "restore vma archive: vma extract -v -r /var/tmp/vzdumptmp%d.fifo %s /var/tmp/vzdumptmp%d"
               % (os.getpid(), path, os.getpid()))
    for key, d in drives(v["conf"]):  # QemuServer.pm parse_backup_hints: where each disk will go
        vsid = split_volid(d.get("file"))[0]
        if key in v.get("disks", {}) or (vsid and is_cloudinit(d)):
            target = act["storage"] or vsid
            if "images" not in (st.check_enabled(s, target, node).get("content") or []):
                raise Fail(500, "Content type 'images' is not available on storage '%s'" % target)
    prev = act.get("prev")
    if prev:
        act["freed"] = True
        for volid in owned_volumes(s, node, vmid, prev):
            free_volume_logged(s, node, volid, log)
    conf, vollist = dict(v["conf"]), act.setdefault("vollist", [])
    for key, d in drives(dict(conf)):
        vsid, _ = split_volid(d.get("file"))
        if key in v.get("disks", {}) or (vsid and is_cloudinit(d)):
            target = act["storage"] or vsid
            scfg = st.check_enabled(s, target, node)
            fmt = None
            if "path" in scfg:
                fmt = d.get("format") or st.parse_volname(s, d["file"])[4]
            size = CLOUDINIT_SIZE if is_cloudinit(d) else v["disks"][key]
            name = "vm-%d-cloudinit" % vmid if is_cloudinit(d) else None
            d.pop("format", None)
            d["file"] = st.alloc(s, node, target, vmid, size, name, fmt)
            vollist.append(d["file"])
            conf[key] = print_drive(d)
            log.append("new volume ID is '%s'" % d["file"])
        elif d.get("backup") == "0" and not is_cdrom(d):
            del conf[key]
    if act["unique"]:  # QemuServer.pm restore_update_config_line: new MACs and a new VM generation
        for k in [k for k in conf if re.fullmatch(r"net\d+", k)]:
            conf[k] = print_net(dict(parse_net(conf[k]), macaddr=random_mac()))
        conf["smbios1"] = "uuid=%s" % uuid.uuid4()
    conf.update(act.get("override") or {})
    conf.pop("lock", None)
    conf["vmgenid"] = str(uuid.uuid4())
    if conf.get("template") == "1":  # Qemu.pm: a restored template is made one again (template_create)
        for ds, d in drives(conf):
            if not is_cdrom(d) and split_volid(d.get("file"))[0] and not st.parse_volname(s, d["file"])[3]:
                d["file"] = st.create_base(s, node, d["file"])
                conf[ds] = print_drive(d)
    vm = new_vm(conf)
    vm["pending"], vm["pdel"] = dict(v.get("pending") or {}), dict(v.get("pdel") or {})
    vms(s, node)[str(vmid)] = vm
    log.append("rescan volumes...")
    if act["start"]:
        start_vm(sim, s, node, vmid, log)


def abort_qmrestore(sim, s, act, log):
    """QemuServer.pm restore_destroy_volumes on error. A VM restored over
    (force) is back as it was if the worker failed before it destroyed the
    old VM's volumes; after that, and for a new VMID, the config goes."""
    for volid in act.get("vollist", []):
        free_volume(s, act["node"], volid)
    if act.get("prev") and not act.get("freed"):
        vms(s, act["node"])[str(act["vmid"])] = act["prev"]
    else:
        vms(s, act["node"]).pop(str(act["vmid"]), None)


def import_size_or_zero(s, node, src):
    try:
        return import_size(s, node, src, []) if src else 0
    except Fail:
        return 0


def finish_create(sim, s, act, log):
    node, vmid = act["node"], act["vmid"]
    conf, vollist = dict(act["params"]), act.setdefault("vollist", [])
    try:
        conf.update(create_disks(s, node, vmid, conf, conf, act["storage"], log, vollist))
    except Fail as e:
        raise Fail(500, "unable to create VM %d - %s" % (vmid, e.reason))
    if not conf.get("boot"):  # QemuServer.pm get_default_bootdevices
        bootable = [(k, d) for k, d in drives(conf) if not k.startswith(("efidisk", "tpmstate"))]
        devs = [next((k for k, d in bootable if is_cdrom(d) == cd), None) for cd in (False, True)]
        devs += [k for k in sorted(conf, key=lambda k: int(k[3:]) if re.fullmatch(r"net\d+", k) else 0)
                 if re.fullmatch(r"net\d+", k)][:1]
        if any(devs):
            conf["boot"] = "order=" + ";".join(k for k in devs if k)
    conf.setdefault("smbios1", "uuid=%s" % uuid.uuid4())
    if conf.get("vmgenid", "1") == "1":
        conf["vmgenid"] = str(uuid.uuid4())
    conf["meta"] = "creation-qemu=10.1.2,ctime=%d" % int(time.time())
    vms(s, node)[str(vmid)] = new_vm(conf)
    if act["start"]:
        log.append("Execute autostart")
        start_vm(sim, s, node, vmid, log)


def abort_create(sim, s, act, log):
    for volid in act.get("vollist", []):
        free_volume(s, act["node"], volid)
    vms(s, act["node"]).pop(str(act["vmid"]), None)  # Qemu.pm: the config file is unlinked


def free_volume(s, node, volid):
    sid, volname = st.parse_volid(volid)
    st.vols(s, node, sid).pop(volname, None)


def free_volume_logged(s, node, volid, log):
    """Storage.pm vdisk_free as destroy_vm calls it: a volume that is gone
    is no error. A dir storage's Plugin.pm free_image warns (a plain warn:
    a task log line, the task still OK); LvmThinPlugin.pm free_image only
    removes an LV that lvs lists, silently."""
    sid, volname = st.parse_volid(volid)
    if st.vols(s, node, sid).get(volname) is None:
        scfg = st.cfg(s).get(sid) or {}
        if "path" in scfg:
            log.append("disk image '%s' does not exist" % st.real_path(s, sid, "images", volname))
        return
    free_volume(s, node, volid)


def owned_volumes(s, node, vmid, vm):
    """The volumes destroy_vm frees: each one the config (pending and unused
    entries too) names that belongs to this VMID."""
    refs = [d["file"] for _, d in drives(vm["conf"]) + drives(vm.get("pending") or {})
            if d and not is_cdrom(d, True)]
    refs += [v for k, v in vm["conf"].items() if UNUSED_RE.fullmatch(k)]
    out = []
    for volid in refs:
        sid, _ = split_volid(volid)
        if sid and sid in st.cfg(s) and volid not in out and st.parse_volname(s, volid)[2] == vmid:
            out.append(volid)
    return out


def missing_volume(s, node, conf):
    """The error vm_start meets for the first volume of CONF that is gone
    (QemuServer.pm vm_start_nolock activates every volume first; a
    cloud-init drive is not checked: the start makes it anew): on
    lvmthin LvmThinPlugin.pm $activate_lv's "no such logical volume VG/LV";
    elsewhere QEMU cannot open the file. None if all are there."""
    for ds, d in drives(conf):
        sid, _ = split_volid(d.get("file"))
        if not sid or is_cloudinit(d) or st.volume(s, node, d["file"]) is not None:
            continue
        scfg = st.storage_config(s, sid)
        vt, name = st.parse_volname(s, d["file"])[:2]
        if scfg["type"] == "lvmthin":
            return None, "no such logical volume %s/%s" % (scfg["vgname"], name)
        path = st.real_path(s, sid, vt, name)
        return ("kvm: -drive file=%s,if=none,id=drive-%s: Could not open '%s': No such file or directory"
                % (path, ds, path)), "start failed: QEMU exited with code 1"
    return None


# ---- QEMU: config updates ----------------------------------------------------

UPDATE_META = ("node", "vmid", "digest", "background_delay", "skiplock", "delete", "revert", "force",
               "import-working-storage", "skip_cloud_init")
# QemuServer.pm $fast_plug_option (and the cloud-init options): applied to a
# running VM at once.
FAST_PLUG = {"description", "hookscript", "lock", "migrate_downtime", "migrate_speed", "name", "onboot",
             "protection", "shares", "startup", "tags", "vmstatestorage", "ciuser", "cipassword", "citype",
             "ciupgrade", "cicustom", "nameserver", "searchdomain", "sshkeys"}


@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/config")
def api_config_post(c, node, vmid):
    return update_vm(c, node, int(vmid), sync=False)


@route("PUT", r"/nodes/([^/]+)/qemu/(\d+)/config")
def api_config_put(c, node, vmid):
    return update_vm(c, node, int(vmid), sync=True)


def update_vm(c, node, vmid, sync):
    """Qemu.pm $update_vm_api: checks, then (PUT) under the VM's flock at
    once or (POST) in a 'qmconfig' worker holding it."""
    s, p = c.s, dict(c.p)
    params = {k: v for k, v in p.items() if k not in UPDATE_META}
    validate_sshkeys(params)
    if not p.get("delete") and not p.get("revert") and not params:
        raise Fail(500, "no options specified")
    if "cdrom" in params:
        v = params.pop("cdrom")
        params["ide2"] = v if "media=" in v else v + ",media=cdrom"
    revert = [x for x in re.split(r"[,;\s]+", p.get("revert", "")) if x]
    delete = []
    for opt in [x for x in re.split(r"[,;\s]+", p.get("delete", "")) if x]:
        opt = "ide2" if opt == "cdrom" else opt
        if opt in params:
            raise param_exc("delete", "you can't use '-%s' and -delete %s' at the same time" % (opt, opt))
        delete.append(opt)
    check_drive_param(c, node, params)
    add_random_macs(params)
    check_storage_access(c, node, params, None)
    vm = load_and_check(s, node, vmid, p)
    if sync:
        sync_lock(c, vmid)
        log = []
        apply_update(c.sim, s, node, vmid, vm, params, delete, revert, p.get("force") == "1", log)
        return None
    act = {"node": node, "vmid": vmid, "params": params, "delete": delete, "revert": revert,
           "force": p.get("force") == "1", "digest": p.get("digest"), "skiplock": p.get("skiplock")}
    upid, t = new_task(c, node, "qmconfig", vmid, act)
    task_locks(c, upid, t, [(vmid, "ex", 10)])
    if p.get("background_delay"):
        return ("wait", upid, int(p["background_delay"]), "failed to update VM %d: %%s" % vmid)
    return upid


def load_and_check(s, node, vmid, p):
    vm = load_config(s, node, vmid)
    if p.get("digest") and p["digest"] != digest(vm):
        raise Fail(500, "checksum mismatch (file change by other user?)")
    if p.get("skiplock") != "1":
        check_lock(vm["conf"])
    return vm


def finish_qmconfig(sim, s, act, log):
    node, vmid = act["node"], act["vmid"]
    vm = load_and_check(s, node, vmid, act)
    apply_update(sim, s, node, vmid, vm, act["params"], act["delete"], act["revert"], act["force"], log)


def apply_update(sim, s, node, vmid, vm, params, delete, revert, force, log):
    """The update: changes go to the pending section; a stopped VM applies
    them at once (QemuServer.pm vmconfig_apply_pending), a running one only
    what it can hot-plug (vmconfig_hotplug_pending; the rest waits for the
    next start)."""
    log.append("update VM %d: %s" % (vmid, " ".join("-%s %s" % (k, "<hidden>" if k == "cipassword" else v)
                                                    for k, v in sorted(params.items()))))
    conf = vm["conf"]
    for opt in revert:
        vm["pending"].pop(opt, None)
        vm["pdel"].pop(opt, None)
    for opt in delete:
        if opt not in conf and opt not in vm["pending"]:
            log.append("cannot delete '%s' - not set in current configuration!" % opt)
            continue
        vm["pending"].pop(opt, None)
        if UNUSED_RE.fullmatch(opt):  # try_deallocate_drive: unused volumes go at once
            free_volume(s, node, conf.pop(opt))
            continue
        vm["pdel"][opt] = 1 if force else 0
    vollist = []
    for opt in sorted(params):
        val = params[opt]
        if DRIVE_RE.fullmatch(opt):
            try:
                val = create_disks(s, node, vmid, merged(vm), {opt: val}, None, log, vollist)[opt]
            except Fail:
                for volid in vollist:
                    free_volume(s, node, volid)
                raise
            order = re.search(r"order=([^,]+)", merged(vm).get("boot", ""))
            if order and is_cdrom(parse_drive(val)) and opt not in order.group(1).split(";"):
                vm["pending"]["boot"] = "order=%s;%s" % (order.group(1), opt)
        elif opt == "boot":
            order = re.search(r"order=([^,]+)", val)
            for dev in (order.group(1).split(";") if order else []):
                if not (dev in conf or dev in vm["pending"] or dev in params) or dev in delete:
                    raise Fail(500, "invalid bootorder: device '%s' does not exist'" % dev)
        vm["pending"][opt] = val
        vm["pdel"].pop(opt, None)
    for opt in [k for k, v in vm["pending"].items() if conf.get(k) == v]:
        del vm["pending"][opt]  # AbstractConfig.pm cleanup_pending
    apply_pending(s, node, vmid, vm, hotplug_only=vm["running"])


def apply_pending(s, node, vmid, vm, hotplug_only=False):
    conf = vm["conf"]
    for opt, force in sorted(vm["pdel"].items()):
        if hotplug_only and not hotpluggable(opt, conf.get(opt), None):
            continue
        if opt in conf and DRIVE_RE.fullmatch(opt):
            d = parse_drive(conf[opt])
            if force and not is_cdrom(d):
                free_volume(s, node, d["file"])
            else:
                register_unused(s, node, vmid, conf, d)
        conf.pop(opt, None)
        del vm["pdel"][opt]
    for opt, val in sorted(vm["pending"].items()):
        if hotplug_only and not hotpluggable(opt, conf.get(opt), val):
            continue
        if opt in conf and DRIVE_RE.fullmatch(opt):
            old = parse_drive(conf[opt])
            if old.get("file") != parse_drive(val).get("file"):
                register_unused(s, node, vmid, conf, old)
        conf[opt] = val
        del vm["pending"][opt]


def hotpluggable(opt, old, new):
    """vmconfig_hotplug_pending with the default 'hotplug: network,disk,usb':
    fast-plug options, NICs, a cdrom's medium, and disks on buses that
    hot-plug (not ide, sata, efidisk, tpmstate)."""
    if opt in FAST_PLUG or re.fullmatch(r"net\d+", opt):
        return True
    if DRIVE_RE.fullmatch(opt):
        if all(v is None or is_cdrom(parse_drive(v)) for v in (old, new)):
            return True
        return not re.match(r"(efidisk|ide|sata|tpmstate)\d", opt)
    return False


def register_unused(s, node, vmid, conf, d):
    """QemuServer.pm vmconfig_register_unused_drive: a cloud-init drive is
    freed, a cdrom just goes, a disk this VM owns becomes unusedN (the lowest
    free N, AbstractConfig.pm add_unused_volume)."""
    if is_cloudinit(d):
        free_volume(s, node, d["file"])
    elif not is_cdrom(d):
        sid, _ = split_volid(d["file"])
        if sid and sid in st.cfg(s) and st.parse_volname(s, d["file"])[2] == vmid:
            if d["file"] not in [v for k, v in conf.items() if UNUSED_RE.fullmatch(k)]:
                conf["unused%d" % next(i for i in range(256) if "unused%d" % i not in conf)] = d["file"]


# ---- QEMU: template, clone, resize -------------------------------------------

def template_checks(s, node, vmid, disk):
    vm = load_config(s, node, vmid)
    check_lock(vm["conf"])
    if vm["conf"].get("template") == "1" and not disk:
        raise Fail(500, "you can't convert a template to a template")
    if vm["running"]:
        raise Fail(500, "you can't convert a VM to template if VM is running")
    return vm


@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/template")
def api_template(c, node, vmid):
    """Qemu.pm template: checks, then a 'qmtemplate' worker under the flock."""
    vmid = int(vmid)
    template_checks(c.s, node, vmid, c.p.get("disk"))
    upid, t = new_task(c, node, "qmtemplate", vmid, {"node": node, "vmid": vmid, "disk": c.p.get("disk")})
    task_locks(c, upid, t, [(vmid, "ex", 10)])
    return upid


def finish_qmtemplate(sim, s, act, log):
    """QemuServer.pm template_create: every disk that is not a cdrom (a
    cloud-init drive counts as one) and not yet a base becomes base-..."""
    node, vmid = act["node"], act["vmid"]
    vm = template_checks(s, node, vmid, act["disk"])
    conf = vm["conf"]
    conf["template"] = "1"
    for ds, d in drives(conf):
        if is_cdrom(d) or (act["disk"] and ds != act["disk"]):
            continue
        sid, volname = split_volid(d["file"])
        if not sid or st.parse_volname(s, d["file"])[3]:
            continue
        d["file"] = st.create_base(s, node, d["file"])
        conf[ds] = print_drive(d)


@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/clone")
def api_clone(c, node, vmid):
    """Qemu.pm clone_vm: the checks of $load_and_check, then a 'qmclone'
    worker that locks the source SHARED (exclusive if it runs) and the new
    VM exclusively, each with a 1 s timeout. Concurrent clones of a stopped
    template therefore all go ahead (shared locks since qemu-server commit
    45fd77bb, 2020, "clone: use new config_lock_shared"); a second clone of a
    running VM fails with the lock message."""
    s, p = c.s, c.p
    vmid, newid = int(vmid), int(p["newid"])
    target = p.get("target")
    target = None if target in (None, node, "localhost") else target
    running = check_running(s, node, vmid)
    if target and target not in members(s, node):
        raise Fail(500, "no such cluster node '%s'" % target)
    storage = p.get("storage")
    if storage:
        scfg = st.check_enabled(s, storage, node)
        if "images" not in (scfg.get("content") or []):
            raise param_exc("storage", "storage '%s' does not support vm images" % storage)
        if target:
            st.check_enabled(s, storage, target)
            if not scfg.get("shared"):
                raise Fail(500, "can't clone to non-shared storage '%s'" % storage)
    check_quorum(s, c.sim, node)
    vm = load_config(s, node, vmid)
    check_lock(vm["conf"])
    conf = vm["conf"]
    full = p["full"] == "1" if "full" in p else conf.get("template") != "1"
    if storage and not full:
        raise Fail(500, "parameter 'storage' not allowed for linked clones")
    if p.get("format") and not full:
        raise Fail(500, "parameter 'format' not allowed for linked clones")
    shared, copy = True, 0
    for ds, d in drives(conf):
        if d.get("file") in (None, "none", "cdrom"):
            continue
        sid, _ = split_volid(d["file"])
        if sid and not st.storage_config(s, sid).get("shared"):
            shared = False
        if is_cdrom(d, exclude_cloudinit=True):
            continue
        if full or is_cloudinit(d):
            copy += 0 if is_cloudinit(d) else (st.volume(s, node, d["file"]) or {"size": 0})["size"]
        elif not st.parse_volname(s, d["file"])[3]:
            raise Fail(500, "Linked clone feature is not supported for '%s' (%s)" % (d["file"], ds))
    if target and not shared:
        raise Fail(500, "can't clone VM to node '%s' (VM uses local storage)" % target)
    if str(newid) in vms(s, node):
        raise Fail(500, "unable to create VM %d: config file already exists" % newid)
    act = {"node": node, "vmid": vmid, "newid": newid, "full": full, "storage": storage, "target": target,
           "name": p.get("name"), "description": p.get("description"), "format": p.get("format")}
    upid, t = new_task(c, node, "qmclone", vmid, act, copy_seconds(s, node, copy) if full else 0)
    if task_locks(c, upid, t, [(vmid, "ex" if running else "sh", 1), (newid, "ex", 1)]):
        owner = vmlist(s, node).get(newid)
        if owner is not None:  # pmxcfs memdb.c memdb_rename: the VMID is another node's
            # (new_task() stored a copy of act: the task's own is t["action"])
            t["action"]["failmsg"] = ("clone failed: close (rename) atomic file "
                                      "'/etc/pve/nodes/%s/qemu-server/%d.conf' failed: File exists" % (node, newid))
        else:
            vms(s, node)[str(newid)] = new_vm({"lock": "clone"})  # "# qmclone temporary file"
            t["action"]["placeholder"] = True
    return upid


def finish_qmclone(sim, s, act, log):
    node, vmid, newid = act["node"], act["vmid"], act["newid"]
    if act.get("failmsg"):
        raise Fail(500, act["failmsg"])
    src = load_config(s, node, vmid)["conf"]
    log.append("creating a clone of VM %d with ID %d" % (vmid, newid))
    new, vollist = {}, act.setdefault("vollist", [])
    for opt, val in src.items():
        if opt in ("snapshots", "parent", "snaptime", "vmstate", "snapstate", "runningcpu", "runningmachine",
                   "running-nets-host-mtu", "lock", "template") or UNUSED_RE.fullmatch(opt):
            continue
        if re.fullmatch(r"net\d+", opt):
            n = parse_net(val)
            n["macaddr"] = random_mac()  # "always change MAC! address"
            new[opt] = print_net(n)
        elif not DRIVE_RE.fullmatch(opt):
            new[opt] = val
    smb = dict(x.split("=", 1) for x in new.get("smbios1", "").split(",") if "=" in x)
    smb["uuid"] = str(uuid.uuid4())
    new["smbios1"] = ",".join("%s=%s" % kv for kv in sorted(smb.items(), key=lambda kv: kv[0] != "uuid"))
    if new.get("vmgenid"):
        new["vmgenid"] = str(uuid.uuid4())
    new["name"] = act["name"] or "Copy-of-VM-%s" % src.get("name", vmid)
    if act["description"]:
        new["description"] = act["description"]
    try:
        for ds, d in drives(src):
            if is_cdrom(d, exclude_cloudinit=True) or d.get("file") in (None, "none"):
                new[ds] = src[ds]
                continue
            full = act["full"] or is_cloudinit(d)
            log.append("create %s clone of drive %s (%s)" % ("full" if full else "linked", ds, d["file"]))
            if full:
                sid = act["storage"] or split_volid(d["file"])[0]
                dfmt = None if st.storage_config(s, sid)["type"] == "lvmthin" else \
                    act["format"] or st.parse_volname(s, d["file"])[4]
                if is_cloudinit(d):
                    d["file"] = st.alloc(s, node, sid, newid, CLOUDINIT_SIZE, "vm-%d-cloudinit" % newid, dfmt)
                else:
                    v = st.volume(s, node, d["file"])
                    if v is None:
                        raise Fail(500, "clone failed: volume '%s' does not exist" % d["file"])
                    d["file"] = st.alloc(s, node, sid, newid, v["size"], fmt=dfmt)
                log.append("allocated target volume '%s'" % d["file"])
            else:
                d["file"] = st.clone_image(s, node, d["file"], newid)
            vollist.append(d["file"])
            if not is_cloudinit(d):
                d["size"] = st.volume(s, node, d["file"])["size"]
            d.pop("format", None)
            new[ds] = print_drive(d)
    except Fail as e:
        raise Fail(500, e.reason if e.reason.startswith("clone failed") else "clone failed: " + e.reason)
    vms(s, node).pop(str(newid), None)
    vms(s, act["target"] or node)[str(newid)] = new_vm(new)
    act["placeholder"] = False


def abort_qmclone(sim, s, act, log):
    for volid in act.get("vollist", []):
        free_volume(s, act["node"], volid)
    if act.get("placeholder"):
        vms(s, act["node"]).pop(str(act["newid"]), None)


@route("PUT", r"/nodes/([^/]+)/qemu/(\d+)/resize")
def api_resize(c, node, vmid):
    """Qemu.pm resize_vm: everything happens in the 'resize' worker (9.x
    returns a task), under the flock."""
    vmid = int(vmid)
    act = {"node": node, "vmid": vmid, "disk": c.p["disk"], "size": c.p["size"], "digest": c.p.get("digest"),
           "skiplock": c.p.get("skiplock")}
    upid, t = new_task(c, node, "resize", vmid, act)
    task_locks(c, upid, t, [(vmid, "ex", 10)])
    return upid


def finish_resize(sim, s, act, log):
    node, vmid, disk = act["node"], act["vmid"], act["disk"]
    vm = load_and_check(s, node, vmid, act)
    conf = vm["conf"]
    if not conf.get(disk):
        raise Fail(500, "disk '%s' does not exist" % disk)
    d = parse_drive(conf[disk])
    if is_cdrom(d):
        raise Fail(500, "you can't resize a cdrom")
    v = st.volume(s, node, d["file"])
    if v is None:
        raise Fail(500, "Could not determine current size of volume '%s'" % d["file"])
    m = re.fullmatch(r"(\+)?(\d+(?:\.\d+)?)([KMGT])?", act["size"])
    new = float(m.group(2)) * {"K": 1 << 10, "M": MIB, "G": GIB, "T": GIB << 10}.get(m.group(3), 1)
    new = int(new + (v["size"] if m.group(1) else 0))
    if new < v["size"]:
        raise Fail(500, "shrinking disks is not supported")
    if new == v["size"]:
        return
    v["size"] = new
    d["size"] = new
    conf[disk] = print_drive(d)
    log.append("update VM %d: resize --disk %s --size %s" % (vmid, disk, act["size"]))


# ---- QEMU: power, destroy ----------------------------------------------------

@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/status/(start|stop|shutdown)")
def api_power(c, node, vmid, what):
    """Qemu.pm vm_start / vm_stop / vm_shutdown: a worker under the flock;
    the checks are in the worker (QemuServer.pm vm_start, vm_stop)."""
    vmid = int(vmid)
    act = {"node": node, "vmid": vmid, "skiplock": c.p.get("skiplock")}
    upid, t = new_task(c, node, {"start": "qmstart", "stop": "qmstop", "shutdown": "qmshutdown"}[what], vmid, act)
    task_locks(c, upid, t, [(vmid, "ex", 10)])
    return upid


def finish_qmstart(sim, s, act, log):
    start_vm(sim, s, act["node"], act["vmid"], log, act.get("skiplock") == "1")


def start_vm(sim, s, node, vmid, log, skiplock=False):
    """QemuServer.pm vm_start, vm_start_nolock: pending changes applied,
    cloud-init seeds read (and written to the record directories), every
    volume must exist (else QEMU does not start)."""
    vm = load_config(s, node, vmid)
    conf = vm["conf"]
    if conf.get("template") == "1":
        raise Fail(500, "you can't start a vm if it's a template")
    if not skiplock:
        check_lock(conf)
    if vm["running"]:
        raise Fail(500, "VM %d already running" % vmid)
    apply_pending(s, node, vmid, vm)
    for ds, d in drives(conf):  # Cloudinit.pm commit_cloudinit_disk: a cloud-init volume that is gone is made anew
        sid, _ = split_volid(d.get("file"))
        if sid and is_cloudinit(d) and st.volume(s, node, d["file"]) is None:
            name, fmt = st.parse_volname(s, d["file"])[1], st.parse_volname(s, d["file"])[4]
            st.alloc(s, node, sid, vmid, CLOUDINIT_SIZE, re.sub(r"\.\w+$", "", name),
                     fmt if "path" in st.storage_config(s, sid) else None)
    gone = missing_volume(s, node, conf)
    if gone:
        if gone[0]:
            log.append(gone[0])
        raise Fail(500, gone[1])
    vm["seed"] = vc.read_seed(sim, s, node, vmid, vm)
    pp.first_boot(s, node, vm)  # payload.sh, once per instance (pve_sim_payload.py)
    vm["running"], vm["started"] = True, time.time()


def finish_qmstop(sim, s, act, log):
    """QemuServer.pm _do_vm_stop: a stopped VM is left alone (task OK)."""
    node, vmid = act["node"], act["vmid"]
    if not check_running(s, node, vmid):
        return
    if act.get("skiplock") != "1":
        check_lock(vms(s, node)[str(vmid)]["conf"])
    vms(s, node)[str(vmid)]["running"] = False


finish_qmshutdown = finish_qmstop


@route("DELETE", r"/nodes/([^/]+)/qemu/(\d+)")
def api_destroy(c, node, vmid):
    """Qemu.pm destroy_vm: early checks, then a 'qmdestroy' worker."""
    vmid = int(vmid)
    destroy_checks(c.s, node, vmid)
    act = {"node": node, "vmid": vmid, "skiplock": c.p.get("skiplock"),
           "unreferenced": c.p.get("destroy-unreferenced-disks") == "1"}
    upid, t = new_task(c, node, "qmdestroy", vmid, act)
    task_locks(c, upid, t, [(vmid, "ex", 10)])
    return upid


def destroy_checks(s, node, vmid):
    vm = load_config(s, node, vmid)
    if vm["conf"].get("protection") == "1":
        raise Fail(500, "can't remove VM %d - protection mode enabled" % vmid)
    if vm["running"]:
        raise Fail(500, "VM %d is running - destroy failed" % vmid)
    return vm


def finish_qmdestroy(sim, s, act, log):
    """QemuServer.pm destroy_vm: the lock, a template's bases still used by
    linked clones (dir storages only, see pve_sim_storage.base_in_use), then
    every volume the config names that this VM owns; with
    destroy-unreferenced-disks also its other images."""
    node, vmid = act["node"], act["vmid"]
    vm = destroy_checks(s, node, vmid)
    conf = merged(vm)
    if act.get("skiplock") != "1":
        check_lock(vm["conf"])
    refs = [d["file"] for _, d in drives(vm["conf"]) + drives(vm["pending"]) if not is_cdrom(d, True)]
    refs += [v for k, v in vm["conf"].items() if UNUSED_RE.fullmatch(k)]
    if conf.get("template") == "1":
        for volid in refs:
            if split_volid(volid)[0] and st.base_in_use(s, node, volid):
                raise Fail(500, "base volume '%s' is still in use by linked cloned" % volid)
    for volid in owned_volumes(s, node, vmid, vm):
        free_volume_logged(s, node, volid, log)
    if act["unreferenced"]:
        for sid in st.cfg(s):
            for volname, v in list(st.vols(s, node, sid).items()):
                if v["content"] == "images" and v.get("vmid") == vmid:
                    del st.vols(s, node, sid)[volname]
    del vms(s, node)[str(vmid)]


# ---- QEMU guest agent ---------------------------------------------------------

@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/agent/ping")
def api_agent_ping(c, node, vmid):
    assert_agent(c.s, node, int(vmid))
    return {"result": {}}


@route("GET", r"/nodes/([^/]+)/qemu/(\d+)/agent/network-get-interfaces")
def api_agent_ifaces(c, node, vmid):
    vm = assert_agent(c.s, node, int(vmid))
    return {"result": vc.guest_interfaces(vm)}


# ---- guest agent: commands (agent/exec, exec-status) ----------------------------
# Qemu/Agent/Exec.pm: exec passes command (an array) and input-data to QGA's
# guest-exec and returns its pid; exec-status passes guest-exec-status
# through. The guest's side is modelled for the commands the K3s and DNS
# steps run (docs/k3s.md): coreutils install from stdin, cat, rm -f, ls -1,
# cloud-init status --wait (an error when the payload failed),
# systemctl is-active, K3s's install script with the bundle's files, and
# /bin/sh technitium-install.sh (Technitium DNS Server from the payload's
# tarballs, with the admin password, TLS certificate and environment file
# the provisioner installed first: technitium_install below).
# Each VM keeps "guestfs" {path: {mode, data}} (and the payload's files,
# laid down at its first start: pve_sim_payload.py), "k3s" {unit, role, started,
# identity} and "technitium" {unit, identity, started} for the services
# installed in this instance of the VM (systemctl answers active while the
# VM runs), and "agent_log" (every command with its input, for the
# real-guest test to replay). A re-created VM starts empty. With
# --technitium-dir DIR a Technitium install is also published for
# technitium_sim.py --install-dir DIR/VM-NAME (publish_technitium).
# The registry step's `systemctl restart k3s|k3s-agent` (K3s reading
# registries.yaml at each start, the install's too: "registries", "restarts",
# "failed" in vm["k3s"]) and /bin/sh registry-seed.sh (images imported and
# pushed to the --registry-dir registry) are in pve_sim_registry.py.

K3S_INSTALL = "/usr/local/lib/devopslab/k3s-install.sh"
K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
TECHNITIUM_INSTALL = "/usr/local/lib/devopslab/technitium-install.sh"
TECHNITIUM_ETC = "/etc/devopslab/technitium"
TECHNITIUM_PAYLOAD = ("/usr/local/lib/devopslab/technitium/aspnetcore-runtime.tar.gz",
                      "/usr/local/lib/devopslab/technitium/DnsServerPortable.tar.gz")
TECHNITIUM_FILES = (TECHNITIUM_ETC + "/admin.pw", TECHNITIUM_ETC + "/web.pfx.b64",
                    TECHNITIUM_ETC + "/technitium.env", "/etc/systemd/system/technitium.service")
TECHNITIUM_ENV_NEEDS = ("DNS_SERVER_ADMIN_PASSWORD_FILE", "DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PATH",
                        "DNS_SERVER_WEB_SERVICE_TLS_CERTIFICATE_PASSWORD")
SERVICES = ("k3s", "technitium")  # the VM keys of the services the guest model installs


def vm_identity(vm):
    smb = dict(x.split("=", 1) for x in vm["conf"].get("smbios1", "").split(",") if "=" in x)
    return smb.get("uuid", "")


def service(vm, unit):
    """The record of the systemd UNIT installed in this instance of the VM
    (vm["k3s"] or vm["technitium"]), or None: systemd knows no such unit."""
    ident = vm_identity(vm)
    for key in SERVICES:
        svc = vm.get(key)
        if svc and svc["unit"] == unit and svc["identity"] == ident:
            return svc
    return None


def unit_active(vm, unit):
    svc = service(vm, unit)
    return bool(vm["running"] and svc and not svc.get("failed"))


def file_bytes(f):
    """A guestfs entry's content as bytes."""
    if "data" in f:
        return f["data"].encode("utf-8")
    return base64.b64decode(f.get("b64", ""))


def write_atomic(path, data, mode):
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def technitium_install(s, node, vmid, vm, exec_s):
    """/bin/sh technitium-install.sh as dash runs the provisioner's script
    (set -e): the payload's ASP.NET Core runtime and DnsServerPortable
    unpacked, web.pfx.b64 decoded into web.pfx (0600), port 53 freed from
    systemd-resolved's stub, `systemctl enable --now technitium`. What it
    needs and lacks ends it with exit 1 and a message. Idempotent: a run on
    an installed VM changes nothing but web.pfx, and publishes again."""
    fs = vm["guestfs"]
    if TECHNITIUM_INSTALL not in fs:  # dash (Debian's /bin/sh) exits 2 here
        return 0, 2, "", "/bin/sh: 0: cannot open %s: No such file\n" % TECHNITIUM_INSTALL
    for p in TECHNITIUM_PAYLOAD:
        if p not in fs:
            return 0, 1, "", "technitium-install: %s is missing (it comes with the payload)\n" % p
    for p in TECHNITIUM_FILES:
        if p not in fs:
            return 0, 1, "", "technitium-install: %s is missing\n" % p
    env_path = TECHNITIUM_ETC + "/technitium.env"
    env = env_file(pp.file_text(fs[env_path]))
    for k in TECHNITIUM_ENV_NEEDS:
        if not env.get(k):
            return 0, 1, "", "technitium-install: %s does not set %s\n" % (env_path, k)
    try:
        pfx = base64.b64decode("".join(pp.file_text(fs[TECHNITIUM_ETC + "/web.pfx.b64"]).split()), validate=True)
    except (binascii.Error, ValueError):
        return 0, 1, "", "base64: invalid input\ntechnitium-install: %s/web.pfx.b64: not base64\n" % TECHNITIUM_ETC
    fs[TECHNITIUM_ETC + "/web.pfx"] = {"mode": "0600", "sha256": hashlib.sha256(pfx).hexdigest(), "size": len(pfx),
                                       "b64": base64.b64encode(pfx).decode(), "from": TECHNITIUM_INSTALL}
    err = ""
    if not service(vm, "technitium"):
        vm["technitium"] = {"unit": "technitium", "identity": vm_identity(vm), "started": time.time() + exec_s}
        err = ("Created symlink '/etc/systemd/system/multi-user.target.wants/technitium.service' \u2192 "
               "'/etc/systemd/system/technitium.service'.\n")
    d = s["nodes"][node]["gopts"].get("technitium_dir")
    if d:
        publish_technitium(os.path.join(d, vm["conf"].get("name") or str(vmid)), node, vmid, vm,
                           file_bytes(fs[TECHNITIUM_ETC + "/admin.pw"]), pfx,
                           file_bytes(fs[env_path]))
    return exec_s, 0, "", err


def publish_technitium(d, node, vmid, vm, password, pfx, env):
    """The installed server, for technitium_sim.py --install-dir D: what it
    reads at its first start, each file written whole (tmp + rename), and
    D/installed last: {vmid, node, identity, time (when the service starts)}."""
    os.makedirs(d, exist_ok=True)
    write_atomic(os.path.join(d, "admin.pw"), password, 0o600)
    write_atomic(os.path.join(d, "web.pfx"), pfx, 0o600)
    write_atomic(os.path.join(d, "technitium.env"), env, 0o600)
    marker = {"vmid": int(vmid), "node": node, "identity": vm["technitium"]["identity"],
              "time": vm["technitium"]["started"]}
    write_atomic(os.path.join(d, "installed"), (json.dumps(marker) + "\n").encode(), 0o644)


def run_guest(s, node, vmid, vm, argv, data):
    """(delay_s, exitcode, out, err) of argv in the guest; raises Fail for a
    program QGA cannot start (as PVE reports it)."""
    boot = s["nodes"][node]["gopts"]["boot_ms"] / 1000.0
    exec_s = s["nodes"][node]["gopts"].get("exec_ms", 300) / 1000.0
    fs = vm.setdefault("guestfs", {})
    if len(argv) == 6 and argv[:3] == ["/usr/bin/install", "-D", "-m"] and argv[4] == "/dev/stdin":
        if not re.fullmatch(r"0?[0-7]{3,4}", argv[3]) or not argv[5].startswith("/"):
            return 0, 1, "", "install: invalid mode or path\n"
        fs[argv[5]] = {"mode": "%04o" % int(argv[3], 8), "data": data or ""}
        return 0, 0, "", ""
    if len(argv) == 2 and argv[0] == "cat" and argv[1].startswith("/"):
        if argv[1] not in fs:
            return 0, 1, "", "cat: %s: No such file or directory\n" % argv[1]
        return 0, 0, pp.file_text(fs[argv[1]]), ""
    if len(argv) >= 3 and argv[:2] == ["rm", "-f"] and all(a.startswith("/") for a in argv[2:]):
        for a in argv[2:]:  # coreutils rm -f: a missing file is no error
            fs.pop(a, None)
        return 0, 0, "", ""
    if len(argv) == 3 and argv[:2] == ["ls", "-1"] and argv[2].startswith("/"):
        d = argv[2].rstrip("/") + "/"
        names = sorted({p[len(d):].split("/", 1)[0] for p in fs if p.startswith(d)})
        if not names:
            return 0, 2, "", "ls: cannot access '%s': No such file or directory\n" % argv[2]
        return 0, 0, "".join(n + "\n" for n in names), ""
    if argv == ["cloud-init", "status", "--wait"]:
        # done, or error when payload.sh failed (pve_sim_payload.py)
        left = max(0.0, vm["started"] + boot + 0.2 - time.time())
        if vm.get("cloud_init_error"):
            return left, 1, "status: error\n", ""
        return left, 0, "status: done\n", ""
    if len(argv) == 3 and argv[:2] == ["systemctl", "is-active"]:
        # systemd 257 (Debian 13), as t-guest-boot's real guest answers:
        # 3 for a unit that is not running, 4 for one that does not exist
        svc = service(vm, argv[2])
        if unit_active(vm, argv[2]):
            return 0, 0, "active\n", ""
        if svc and svc.get("failed"):
            return 0, 3, "failed\n", ""
        return 0, 3 if svc else 4, "inactive\n", ""
    if len(argv) == 3 and argv[:2] == ["systemctl", "restart"] and argv[2] in reg.K3S_UNITS:
        return reg.restart(vm, argv[2], exec_s)
    if argv == ["systemctl", "restart", "systemd-resolved"]:
        return reg.restart_resolved(vm, exec_s)
    if argv[:3] == ["/usr/bin/env", "INSTALL_K3S_SKIP_DOWNLOAD=true", "INSTALL_K3S_SKIP_SELINUX_RPM=true"] \
            and argv[4:] == ["/bin/sh", K3S_INSTALL] and argv[3] in ("INSTALL_K3S_EXEC=server",
                                                                   "INSTALL_K3S_EXEC=agent"):
        role = argv[3].split("=", 1)[1]
        if not any("devopslab-payload-" in str(v) and "media=cdrom" in str(v) for v in vm["conf"].values()):
            return 0, 1, "", "[ERROR]  /usr/local/bin/k3s: the K3s binary is missing\n"
        if K3S_CONFIG not in fs:
            return 0, 1, "", "k3s: %s is missing\n" % K3S_CONFIG
        unit = "k3s" if role == "server" else "k3s-agent"
        vm["k3s"] = {"unit": unit, "role": role, "started": time.time() + exec_s,
                     "identity": vm_identity(vm), "config": fs[K3S_CONFIG]["data"]}
        err = reg.k3s_start(vm["k3s"], fs)  # its registries.yaml; install.sh's restart fails on a bad one
        return exec_s, 1 if err else 0, "[INFO]  systemd: Starting %s\n" % unit, err
    if argv == ["/bin/sh", TECHNITIUM_INSTALL]:
        return technitium_install(s, node, vmid, vm, exec_s)
    if argv[:2] == ["/bin/sh", reg.SEED_SCRIPT]:
        return reg.seed(s, node, vm, argv[2:], exec_s)
    raise Fail(500, "Agent error: Guest agent command failed, error was 'Failed to execute child process "
               "\u201c%s\u201d (No such file or directory)'" % argv[0])


@route("POST", r"/nodes/([^/]+)/qemu/(\d+)/agent/exec")
def api_agent_exec(c, node, vmid):
    vm = assert_agent(c.s, node, int(vmid))
    argv = c.p.get("command", "").split("\0")
    data = c.p.get("input-data")
    if not argv or not argv[0]:
        raise Fail(500, "Agent error: Guest agent command failed, error was 'Invalid parameter 'path''")
    delay, code, out, err = run_guest(c.s, node, int(vmid), vm, argv, data)
    vm.setdefault("agent_log", []).append({"command": argv, "input": data, "exitcode": code})
    pid = vm.get("next_pid", 1000)
    vm["next_pid"] = pid + 1
    vm.setdefault("procs", {})[str(pid)] = {"done": time.time() + delay, "exitcode": code, "out": out, "err": err}
    return {"pid": pid}


@route("GET", r"/nodes/([^/]+)/qemu/(\d+)/agent/exec-status")
def api_agent_exec_status(c, node, vmid):
    vm = assert_agent(c.s, node, int(vmid))
    pr = vm.get("procs", {}).get(str(c.p.get("pid", "")))
    if pr is None:
        raise Fail(500, "Agent error: Guest agent command failed, error was 'Invalid parameter 'pid''")
    if time.time() < pr["done"]:
        return {"exited": 0}
    res = {"exited": 1, "exitcode": pr["exitcode"]}
    if pr["out"]:
        res["out-data"] = pr["out"]
    if pr["err"]:
        res["err-data"] = pr["err"]
    return res


def assert_agent(s, node, vmid):
    """QemuServer/Agent.pm assert_agent_available: no 'agent' key at all, the
    VM stopped, then no answer to guest-ping (agent=0, or the guest has not
    been up for --guest-boot-ms)."""
    vm = load_config(s, node, vmid)
    if "agent" not in vm["conf"]:
        raise Fail(500, "No QEMU guest agent configured")
    if not vm["running"]:
        raise Fail(500, "VM %d is not running" % vmid)
    boot = s["nodes"][node]["gopts"]["boot_ms"] / 1000.0
    if not agent_enabled(vm["conf"]) or time.time() - vm["started"] < boot:
        raise Fail(500, "QEMU guest agent is not running")
    return vm


# ---- tasks -------------------------------------------------------------------

FINISH = {"imgdel": finish_imgdel, "imgcopy": finish_imgcopy, "qmcreate": finish_create,
          "qmconfig": finish_qmconfig, "qmtemplate": finish_qmtemplate, "qmclone": finish_qmclone,
          "resize": finish_resize, "qmstart": finish_qmstart, "qmstop": finish_qmstop,
          "qmshutdown": finish_qmshutdown, "qmdestroy": finish_qmdestroy, "qmrestore": finish_qmrestore}
ABORT = {"imgcopy": abort_imgcopy, "qmcreate": abort_create, "qmclone": abort_qmclone, "qmrestore": abort_qmrestore}


def finish_task(sim, s, upid, t):
    """Called by pve_sim.py's ticker on the task's node when the task's time
    is up: the work happens now. A failure (the work's own, a lock that was
    not free, or an injected task-fail) undoes what the request had set up
    (the 'create' config, a clone's temporary config, copies made)."""
    act, log = t["action"], t["log"]
    kind = act["kind"]
    try:
        try:
            if act.get("lockfail"):
                log.append("trying to acquire lock...")
                raise Fail(500, act["lockfail"])
            if t["fail"]:
                log.append("simulated failure")
                raise Fail(500, t["fail"])
            try:
                FINISH[kind](sim, s, act, log)
            except Fail:
                raise
            except Exception as e:  # a bug here: the task fails visibly instead of never ending
                traceback.print_exc(file=sys.stderr)
                raise Fail(500, "pve_sim_guests: internal error: %r" % e)
        except Fail as e:
            if kind in ABORT:
                ABORT[kind](sim, s, act, log)
            t["exitstatus"] = e.reason
            log.append("TASK ERROR: %s" % e.reason)
        else:
            t["exitstatus"] = "OK"
            log.append("TASK OK")
    finally:
        release(s, upid)
        t["status"] = "stopped"
        if kind == "qmrestore":
            restore_ended(s, upid, t["exitstatus"])
