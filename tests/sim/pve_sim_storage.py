# SPDX-License-Identifier: MIT
"""pve_sim_storage.py — storages and volumes of the Proxmox VE simulator
(pve_sim.py; the API endpoints are routed by pve_sim_guests.py).

Model (docs/pve.md, "The guest model"):
  * The storage configuration (/etc/pve/storage.cfg) lives in the shared
    state as s["guest"]["storage"]; one for the whole simulated world, as the
    simulator keeps one user and token store (fidelity ledger, row 12).
  * Volumes are per node and storage: s["guest"]["vols"][NODE][STORAGE][VOLNAME]
    = {size, ctime, format, content, vmid, file}; a shared storage's (NFS,
    CIFS, CephFS, RBD, PBS by nature, or shared=1; Storage.pm's shared
    storages) are the cluster's, under the key "@shared" instead of a node:
    every node sees them, a reinstalled node keeps them; a node-local
    storage's ("local", "local-lvm") go with a reinstall (init).
  * Backups (content "backup", volname
    backup/vzdump-qemu-VMID-YYYY_MM_DD-HH_MM_SS.vma[.zst|.gz|.lzo], format
    the extension as Plugin.pm parse_volname has it) hold what a restore
    needs: the VM's configuration, its pending section and its disks' sizes
    ("conf", "pending", "disks"), and "notes", "protected", "node" (where
    it was made); pve_sim_jobs.py makes them, pve_sim_guests.py restores
    them; the content list shows them as Plugin.pm list_volumes does
    (subtype "qemu", vmid, notes, protected). Uploaded files (iso,
    import, vztmpl) are real files under STATE/volumes/NODE/STORAGE/, laid out
    as a dir storage is (template/iso, import, template/cache); disk images
    are bookkeeping only (their virtual size), nothing is written.

The Proxmox sources named below were read at the commits listed in
docs/pve.md ("Fidelity ledger"); "pve-storage Storage.pm" means
pve-storage's src/PVE/Storage.pm, and so on.
"""
import hashlib
import os
import re
import struct
import time

Fail = None  # pve_sim.Fail, set by pve_sim_guests.bind()

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# Content types each plugin accepts: pve-storage DirPlugin.pm and
# LvmThinPlugin.pm, plugindata() (valid, default).
VALID_CONTENT = {
    "dir": (("images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"), ("images", "rootdir")),
    "lvmthin": (("images", "rootdir"), ("images", "rootdir")),
    "nfs": (("images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"), ("images",)),
    "pbs": (("backup",), ("backup",)),
}
# Storage types that are shared by nature (Storage.pm $shared_storages... the
# plugins' 'shared' default: NFS, CIFS, CephFS, RBD, PBS).
SHARED_TYPES = ("nfs", "cifs", "cephfs", "rbd", "pbs")
# The options each type may set (plugin options()); "fixed" ones cannot change.
OPTIONS = {
    "dir": {"path": "fixed", "content-dirs": 1, "nodes": 1, "shared": 1, "disable": 1, "prune-backups": 1,
            "max-protected-backups": 1, "content": 1, "format": 1, "mkdir": 1, "create-base-path": 1,
            "create-subdirs": 1, "is_mountpoint": 1, "bwlimit": 1, "preallocation": 1,
            "snapshot-as-volume-chain": "fixed"},
    "lvmthin": {"thinpool": "fixed", "vgname": "fixed", "nodes": 1, "disable": 1, "content": 1, "bwlimit": 1},
    "nfs": {"path": "fixed", "server": "fixed", "export": "fixed", "content-dirs": 1, "nodes": 1, "disable": 1,
            "prune-backups": 1, "max-protected-backups": 1, "content": 1, "format": 1, "mkdir": 1,
            "create-base-path": 1, "create-subdirs": 1, "options": 1, "bwlimit": 1, "preallocation": 1,
            "snapshot-as-volume-chain": "fixed"},
    # pve-storage PBSPlugin.pm options()
    "pbs": {"server": 1, "datastore": "fixed", "port": 1, "username": 1, "password": 1, "encryption-key": 1,
            "master-pubkey": 1, "fingerprint": 1, "namespace": 1, "nodes": 1, "disable": 1, "content": 1,
            "prune-backups": 1, "max-protected-backups": 1},
}
# Where a dir storage keeps each content type (pve-storage Plugin.pm, get_subdir).
SUBDIR = {"iso": "template/iso", "vztmpl": "template/cache", "import": "import", "images": "images",
          "backup": "dump", "snippets": "snippets"}

# The storage.cfg a node starts with (--storage-preset):
#   installer    what the Proxmox VE 9 ISO installer writes for an LVM-thin
#                install (pve-installer Proxmox/Install/StorageConfig.pm,
#                get_lvm_thin_config; "import" added by commit ec1d5ee, 2025-08,
#                "enable import content type by default")
#   installer-8  the same before that commit: a node installed with 8.x
#   none         no storage.cfg at all: pve-storage Plugin.pm parse_config
#                makes up "local" (this is what DevOpsLab's own rootfs recipe
#                gives today, docs/install.md), no local-lvm
LOCAL = {"type": "dir", "path": "/var/lib/vz"}
LVM = {"type": "lvmthin", "thinpool": "data", "vgname": "pve", "content": ["images", "rootdir"]}
PRESETS = {
    "installer": {"local": dict(LOCAL, content=["backup", "import", "iso", "vztmpl"]), "local-lvm": LVM},
    "installer-8": {"local": dict(LOCAL, content=["backup", "iso", "vztmpl"]), "local-lvm": LVM},
    "none": {"local": dict(LOCAL, content=["backup", "images", "iso", "rootdir", "snippets", "vztmpl"],
                           **{"prune-backups": "keep-all=1"})},
}
#   installer-nas  the installer's, and an NFS share for backups the
#                  operator added ("nas"; pve-storage NFSPlugin.pm)
PRESETS["installer-nas"] = dict(PRESETS["installer"], nas={"type": "nfs", "server": "10.0.0.50",
                                                           "export": "/srv/backup", "path": "/mnt/pve/nas",
                                                           "content": ["backup"], "options": "vers=4.2",
                                                           "prune-backups": "keep-all=1"})

# pve-storage Storage.pm: ISO_EXT_RE_0, VZTMPL_EXT_RE_1, UPLOAD_IMPORT_EXT_RE_1,
# IMPORT_EXT_RE_1, SAFE_CHAR_CLASS_RE.
ISO_EXT = re.compile(r"[^/]+\.(?:iso|img)$", re.I)
VZTMPL_EXT = re.compile(r"[^/]+\.(?:tar|tar\.(?:gz|xz|zst|bz2))$", re.I)
UPLOAD_IMPORT_EXT = re.compile(r"[a-zA-Z0-9\-.+=_]+\.(ova|qcow2|raw|vmdk)$")
IMPORT_NAME = re.compile(r"[a-zA-Z0-9\-.+=_ ]+\.(ova|ovf|qcow2|raw|vmdk)$")
VOLID = re.compile(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$", re.I)  # Plugin.pm parse_volume_id
LVM_NAME = re.compile(r"((vm|base)-(\d+)-\S+)$")                  # LvmThinPlugin.pm parse_volname
# Plugin.pm parse_volname: backup/vzdump-(qemu|lxc|openvz)-VMID-..., its format by extension
BACKUP_NAME = re.compile(r"backup/(vzdump-(?:qemu|lxc|openvz)-(\d+)-[^/]+?\.(vma(?:\.(?:zst|gz|lzo))?|tar(?:\.\w+)?))")
DIR_IMAGE = re.compile(r"((vm-|base-)(\d+)-[^/\s]+\.(raw|qcow2|vmdk))$")  # Plugin.pm parse_name_dir


def now():
    return int(time.time())


def format_size(size):
    """pve-common JSONSchema.pm format_size: the largest exact unit."""
    size = int(size)
    for unit in ("", "K", "M", "G"):
        if size % 1024:
            return "%d%s" % (size, unit)
        size //= 1024
    return "%dT" % size


def parse_size(value):
    """pve-common JSONSchema.pm parse_size ("32G", "4M", "1024")."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT](?:iB)?)?", value or "")
    if not m:
        return None
    mult = {"K": KIB, "M": MIB, "G": GIB, "T": GIB * KIB}.get((m.group(2) or " ")[0], 1)
    return int(float(m.group(1)) * mult)


# ---- configuration -----------------------------------------------------------

def init(s, node, a):
    """At a node's start: the world's storage.cfg (first node), the node's
    volumes and sizes. A reinstalled node (--fresh) loses its volumes."""
    g = s.setdefault("guest", {})
    if g.get("storage") is None:
        g["storage"] = {k: dict(v) for k, v in PRESETS[a.storage_preset].items()}
    vols = g.setdefault("vols", {})
    if a.fresh or node not in vols:
        vols[node] = {}
    s["nodes"][node]["gopts"] = {"local_bytes": a.local_gib * GIB, "lvm_bytes": a.lvm_gib * GIB,
                                 "boot_ms": a.guest_boot_ms, "copy_mb_per_s": a.copy_mb_per_s,
                                 "lock_wait_ms": a.lock_wait_ms, "exec_ms": a.exec_ms}


def cfg(s):
    return s["guest"]["storage"]


def digest(s):
    """storage.cfg's digest (PVE::SectionConfig: SHA-1 of the file); here of a
    canonical rendering of the configuration."""
    return hashlib.sha1(repr(sorted((k, sorted(v.items())) for k, v in cfg(s).items())).encode()).hexdigest()


def storage_config(s, sid):
    """pve-storage Storage.pm storage_config."""
    scfg = cfg(s).get(sid)
    if scfg is None:
        raise Fail(500, "storage '%s' does not exist" % sid)
    return scfg


def check_enabled(s, sid, node, noerr=False):
    """pve-storage Storage.pm storage_check_enabled / storage_check_node."""
    scfg = storage_config(s, sid)
    if scfg.get("disable"):
        if noerr:
            return None
        raise Fail(500, "storage '%s' is disabled" % sid)
    if scfg.get("nodes") and node not in scfg["nodes"]:
        if noerr:
            return None
        raise Fail(500, "storage '%s' is not available on node '%s'" % (sid, node))
    return scfg


def content_str(scfg):
    return ",".join(sorted(scfg.get("content") or VALID_CONTENT[scfg["type"]][1]))


def api_entry(s, sid):
    """pve-storage API2/Storage/Config.pm $api_storage_config."""
    d = {k: v for k, v in storage_config(s, sid).items()}
    d.update(storage=sid, digest=digest(s), content=content_str(d))
    if d.get("nodes"):
        d["nodes"] = ",".join(d["nodes"])
    return d


def update(s, sid, p):
    """PUT /storage/{storage}: pve-storage API2/Storage/Config.pm update with
    PVE::SectionConfig check_config/check_value and Plugin.pm decode_value.
    Every error is wrapped as lock_storage_config does ("update storage
    failed: ...")."""
    try:
        if p.get("digest") and p["digest"] != digest(s):
            # pve-common Tools.pm assert_if_modified
            raise Fail(500, "detected modified configuration - file changed by other user? Try again.")
        scfg = storage_config(s, sid)
        opts = OPTIONS[scfg["type"]]
        new = {}
        if "password" in p and scfg["type"] == "pbs":  # PBSPlugin.pm on_update_hook: /etc/pve/priv
            s["guest"].setdefault("storage_pw", {})[sid] = p["password"]
        for k, v in p.items():
            if k in ("storage", "digest", "delete") or (k == "password" and scfg["type"] == "pbs"):
                continue
            if k not in opts:
                raise Fail(500, "unexpected property '%s'" % k)
            if opts[k] == "fixed":
                raise Fail(500, "can't change value of fixed parameter '%s'" % k)
            new[k] = decode_value(scfg["type"], k, v)
        dels = [d for d in re.split(r"[,;\s]+", p.get("delete", "")) if d]
        for k in dels:
            if k not in opts:
                raise Fail(500, "no such option '%s'" % k)
            if opts[k] == "fixed":
                raise Fail(500, "unable to delete fixed option '%s'" % k)
            if k in new:
                raise Fail(500, "cannot set and delete property '%s' at the same time!" % k)
    except Fail as e:
        raise Fail(500, "update storage failed: %s" % e.reason)
    for k in dels:
        scfg.pop(k, None)
    scfg.update(new)
    return {"storage": sid, "type": scfg["type"]}


# What a type needs on create (the plugins' properties without 'optional').
REQUIRED = {"dir": ("path",), "nfs": ("server", "export", "path"), "pbs": ("server", "datastore", "username"),
            "lvmthin": ("vgname", "thinpool")}
FINGERPRINT = re.compile(r"([A-Fa-f0-9]{2}:){31}[A-Fa-f0-9]{2}")


def create(s, p):
    """POST /storage: pve-storage API2/Storage/Config.pm create — the
    section checked by its plugin (options, required ones), "storage ID 'X'
    already defined"; a PBS storage's password goes to
    /etc/pve/priv/storage/ID.pw (PBSPlugin.pm on_add_hook), never into
    storage.cfg; its connection check (the datastore listed with those
    credentials) is not modelled: no PBS runs here. Errors wrapped as
    "create storage failed: ..."."""
    p = dict(p)  # the request's own parameters stay as they came (the record)
    sid, stype = p.pop("storage"), p.pop("type")
    try:
        if sid in cfg(s):
            raise Fail(500, "storage ID '%s' already defined" % sid)
        if stype not in OPTIONS:
            raise Fail(501, "storage type '%s' is not modelled in the simulator" % stype)
        opts, new = OPTIONS[stype], {"type": stype}
        pw = p.pop("password", None)
        for k, v in p.items():
            if k not in opts:
                raise Fail(500, "unexpected property '%s'" % k)
            new[k] = decode_value(stype, k, v)
        for k in REQUIRED.get(stype, ()):
            if k not in new:
                raise Fail(500, "missing value for required option '%s'" % k)
        if stype == "pbs":
            if new.get("fingerprint") and not FINGERPRINT.fullmatch(new["fingerprint"]):
                raise Fail(500, "fingerprint: value does not match the regex pattern")
            if not pw:
                raise Fail(500, "missing value for required option 'password'")
    except Fail as e:
        raise Fail(500, "create storage failed: %s" % e.reason)
    new.setdefault("content", list(VALID_CONTENT[stype][1]))
    cfg(s)[sid] = new
    if pw is not None:
        s["guest"].setdefault("storage_pw", {})[sid] = pw
    return {"storage": sid, "type": stype}


def decode_value(stype, key, value):
    """Plugin.pm decode_value: a content type the plugin does not know is
    dropped with a warning (not an error); nothing left is an error unless
    the plugin allows 'none'."""
    if key == "content":
        valid = VALID_CONTENT[stype][0]
        res = sorted({c for c in re.split(r"[,;\s]+", value) if c and c in valid})
        if "none" in res and len(res) > 1:
            raise Fail(500, "unable to combine 'none' with other content types")
        if not res and "none" not in valid:
            raise Fail(500, "storage does not support content type 'none'")
        return res
    if key == "nodes":
        return sorted({n for n in re.split(r"[,;\s]+", value) if n})
    if key in ("disable", "shared"):
        return 1 if value == "1" else 0
    if key == "port":
        return int(value)
    return value


# ---- volumes -----------------------------------------------------------------

def shared(s, sid):
    scfg = cfg(s).get(sid) or {}
    return bool(scfg.get("shared")) or scfg.get("type") in SHARED_TYPES


def vols(s, node, sid):
    return s["guest"]["vols"].setdefault("@shared" if shared(s, sid) else node, {}).setdefault(sid, {})


def parse_volid(volid):
    """Plugin.pm parse_volume_id: (storage, volname); Fail like Proxmox."""
    m = VOLID.fullmatch(volid or "")
    if not m:
        raise Fail(500, "unable to parse volume ID '%s'" % volid)
    return m.group(1), m.group(2)


def parse_volname(s, volid):
    """(vtype, name, vmid, isbase, format) of a volume ID, by the storage's
    type: LvmThinPlugin.pm / Plugin.pm parse_volname."""
    sid, volname = parse_volid(volid)
    scfg = storage_config(s, sid)
    if scfg["type"] == "lvmthin":
        m = LVM_NAME.fullmatch(volname)
        if not m:
            raise Fail(500, "unable to parse lvm volume name '%s'" % volname)
        return "images", m.group(1), int(m.group(3)), m.group(2) == "base", "raw"
    m = re.fullmatch(r"(\d+)/(\S+)/(\d+)/(\S+)", volname) or re.fullmatch(r"(\d+)/(\S+)", volname)
    if m:
        d = DIR_IMAGE.fullmatch(m.group(m.lastindex))
        if not d:
            raise Fail(500, "unable to parse volume filename '%s'" % m.group(m.lastindex))
        return "images", d.group(1), int(m.group(m.lastindex - 1)), d.group(2) == "base-", d.group(4)
    for vtype, rx in (("iso", ISO_EXT), ("vztmpl", VZTMPL_EXT)):
        if volname.startswith(vtype + "/") and rx.fullmatch(volname[len(vtype) + 1:]):
            return vtype, volname[len(vtype) + 1:], None, False, "raw"
    m = re.fullmatch(r"import/(%s)" % IMPORT_NAME.pattern.rstrip("$"), volname)
    if m:
        return "import", m.group(1), None, False, m.group(2)
    m = re.fullmatch(r"snippets/([^/]+)", volname)
    if m:
        return "snippets", m.group(1), None, False, "raw"
    m = BACKUP_NAME.fullmatch(volname)
    if m:
        return "backup", m.group(1), int(m.group(2)), False, m.group(3)
    raise Fail(500, "unable to parse directory volume name '%s'" % volname)


def volume(s, node, volid):
    """The volume record, or None (missing)."""
    sid, volname = parse_volid(volid)
    return vols(s, node, sid).get(volname)


def file_path(sim, node, sid, subdir, name):
    """Where an uploaded file lives: STATE/volumes/NODE/STORAGE/SUBDIR/NAME."""
    return os.path.join(sim.state.dir, "volumes", node, sid, SUBDIR[subdir], name)


def real_path(s, sid, vtype, name):
    """The path Proxmox would show (for messages): PATH/SUBDIR/NAME."""
    return "%s/%s/%s" % (storage_config(s, sid).get("path", "/dev/pve"), SUBDIR.get(vtype, vtype), name)


def used(s, node, sid):
    """Space in use. Files count with their size. Disk images count with
    their virtual size, on lvmthin too: a thin pool really holds only the
    blocks written, so this over-counts; it is conservative and simple, and
    it makes a linked clone cost as much as a copy."""
    return sum(v["size"] for v in vols(s, node, sid).values())


def total(s, node, sid):
    o = s["nodes"][node]["gopts"]
    t = storage_config(s, sid)["type"]
    if t in SHARED_TYPES:
        return 4 << 40  # the NAS: 4 TiB
    return o["lvm_bytes"] if t == "lvmthin" else o["local_bytes"]


def info(s, node, sid):
    """pve-storage Storage.pm storage_info for one storage, on NODE."""
    scfg = storage_config(s, sid)
    enabled = check_enabled(s, sid, node, noerr=True) is not None
    d = {"type": scfg["type"], "total": 0, "used": 0, "avail": 0, "shared": 1 if shared(s, sid) else 0,
         "content": content_str(scfg), "active": 0, "enabled": 1 if enabled else 0}
    if enabled:
        t, u = total(s, node, sid), used(s, node, sid)
        d.update(total=t, used=u, avail=max(0, t - u), active=1)
    return d


def next_disk_name(s, node, sid, vmid):
    """Plugin.pm get_next_vm_diskname: the first disk number neither
    vm-VMID-disk-N nor base-VMID-disk-N uses on this storage."""
    taken = set()
    for volname in vols(s, node, sid):
        m = re.search(r"(?:^|/)(?:vm|base)-%d-disk-(\d+)(?:\.\w+)?$" % vmid, volname)
        if m:
            taken.add(int(m.group(1)))
    return "vm-%d-disk-%d" % (vmid, next(i for i in range(1000) if i not in taken))


def alloc(s, node, sid, vmid, size, name=None, fmt=None):
    """pve-storage vdisk_alloc: a new image volume; returns its volume ID.
    lvmthin rounds up to the 4 MiB extent LVM uses; dir storages default to
    raw (DirPlugin.pm plugindata format default)."""
    scfg = storage_config(s, sid)
    name = name or next_disk_name(s, node, sid, vmid)
    if scfg["type"] == "lvmthin":
        size = -(-size // (4 * MIB)) * 4 * MIB
        volname = name
    else:
        fmt = fmt or "raw"
        volname = "%d/%s.%s" % (vmid, name, fmt)
    vols(s, node, sid)[volname] = {"size": size, "ctime": now(), "format": fmt or "raw", "content": "images",
                                   "vmid": vmid}
    return "%s:%s" % (sid, volname)


def create_base(s, node, volid):
    """Plugin create_base: vm-N-disk-M becomes base-N-disk-M (lvrename on
    lvmthin, a rename in the VM's directory on dir)."""
    sid, volname = parse_volid(volid)
    vt, name, vmid, isbase, fmt = parse_volname(s, volid)
    if isbase:
        raise Fail(500, "create_base not possible with base image")
    v = vols(s, node, sid).pop(volname)
    newname = volname.replace("vm-", "base-", 1) if "/" not in volname else \
        "%d/%s" % (vmid, name.replace("vm-", "base-", 1))
    vols(s, node, sid)[newname] = v
    return "%s:%s" % (sid, newname)


def clone_image(s, node, volid, newid):
    """Linked clone: LvmThinPlugin.pm clone_image (a thin snapshot named like
    a new disk) / Plugin.pm clone_image (a qcow2 on top of the base file)."""
    sid, volname = parse_volid(volid)
    vt, name, vmid, isbase, fmt = parse_volname(s, volid)
    if not isbase:
        raise Fail(500, "clone_image only works on base images")
    base = vols(s, node, sid)[volname]
    new = next_disk_name(s, node, sid, newid)
    if storage_config(s, sid)["type"] == "lvmthin":
        newname = new
        fmt = "raw"
    else:
        newname, fmt = "%d/%s/%d/%s.qcow2" % (vmid, name, newid, new), "qcow2"
    vols(s, node, sid)[newname] = {"size": base["size"], "ctime": now(), "format": fmt, "content": "images",
                                   "vmid": newid, "parent": volid}
    return "%s:%s" % (sid, newname)


def base_in_use(s, node, volid):
    """Storage.pm volume_is_base_and_used: a dir base file with linked
    clones. On lvmthin the clone's name does not name its base, so Proxmox
    cannot tell and allows the removal ("LVM-thin allows deletion of still
    referenced base volumes!")."""
    sid, volname = parse_volid(volid)
    if storage_config(s, sid)["type"] == "lvmthin":
        return False
    return any(k.startswith(volname + "/") for k in vols(s, node, sid))


def list_content(s, node, sid, vmid=None, content=None):
    """Storage.pm volume_list + Plugin.pm list_volumes: the content types
    asked for that the storage has; iso and vztmpl are left out when vmid is
    given; sorted by volume ID."""
    scfg = storage_config(s, sid)
    check_enabled(s, sid, node)
    kinds = [content] if content else ["rootdir", "images", "vztmpl", "iso", "backup", "snippets", "import"]
    kinds = [k for k in kinds if k in (scfg.get("content") or [])]
    out = []
    for volname, v in vols(s, node, sid).items():
        if v["content"] not in kinds:
            continue
        if vmid is not None and (v["content"] in ("iso", "vztmpl") or
                                 (v["content"] in ("images", "backup") and v.get("vmid") != vmid)):
            continue
        d = {"volid": "%s:%s" % (sid, volname), "content": v["content"], "format": v["format"],
             "size": v["size"], "ctime": v["ctime"]}
        if v["content"] == "backup":  # Plugin.pm list_volumes: the guest type of a backup
            d["subtype"] = "qemu"
            if v.get("notes"):
                d["notes"] = v["notes"]
            if v.get("protected"):
                d["protected"] = 1
        if v.get("vmid") is not None:
            d["vmid"] = v["vmid"]
        out.append(d)
    return sorted(out, key=lambda d: d["volid"].lower())


# ---- image files -------------------------------------------------------------

def image_info(path, fmt, shown=None):
    """(virtual size, format) of an image file, as qemu-img info tells
    pve-storage's Plugin.pm file_size_info: qcow2 from its header (magic
    QFI\\xfb, size at byte 24, backing file offset at byte 8), vmdk from a
    sparse extent's header (KDMV, capacity in sectors at byte 12), raw and
    iso by the file's size. Every image is checked as untrusted (no backing
    file). Fail with Proxmox's words where it would; SHOWN is the path to
    name in them."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        raise Fail(500, "failed to stat '%s'" % (shown or path))
    if fmt in ("raw", "iso", "auto-detect") and not head.startswith(b"QFI\xfb"):
        return size, "raw"
    if fmt in ("qcow2", "auto-detect") and head.startswith(b"QFI\xfb") and len(head) >= 32:
        backing_offset, = struct.unpack(">Q", head[8:16])
        if backing_offset:
            raise Fail(500, "backing file not allowed for untrusted image '%s'!" % (shown or path))
        return struct.unpack(">Q", head[24:32])[0], "qcow2"
    if fmt == "vmdk" and head.startswith(b"KDMV") and len(head) >= 20:
        return struct.unpack("<Q", head[12:20])[0] * 512, "vmdk"
    raise Fail(500, "failed to query file information with qemu-img")


def iso_label(path):
    """The ISO 9660 volume identifier (primary volume descriptor at sector
    16, bytes 40-71), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(16 * 2048)
            pvd = f.read(72)
    except OSError:
        return None
    if len(pvd) < 72 or pvd[1:6] != b"CD001":
        return None
    return pvd[40:72].decode("ascii", "replace").strip()


# ---- multipart uploads -------------------------------------------------------

CHUNK = 64 * KIB
HEAD_MAX = 1 * MIB  # what may precede the file's data; Proxmox's fields are a few bytes


def read_multipart(rfile, length, boundary, out):
    """Stream a multipart/form-data body of LENGTH bytes from RFILE, the
    file's data to the open binary file OUT, in bounded memory; return
    (fields, file size). The parse is pve-http-server's
    src/PVE/APIServer/AnyEvent.pm, file_upload_multipart, regex for regex:
      phase 0: drop everything before the first delimiter;
      phase 1: take the fields "content", "checksum-algorithm", "checksum"
               - each only if it is next, in that order - then the file part,
               whose field must be named "filename"; its file name becomes
               the "filename" parameter;
      phase 2: everything up to "[CR]LF--BOUNDARY--" is the file (a part
               after the file would end up inside it, as there).
    Errors are Proxmox's: "wrong Content-Disposition ...", "wrong field name
    ... expected 'filename'", "upload failed" (the body ended first)."""
    b = re.escape(boundary.encode())
    delim = rb"--" + b + rb"\r?\n"
    close = b"--" + boundary.encode() + b"--"
    boundlen = len(boundary) + 8
    buf, left, phase, fields, size = b"", length, 0, {}, 0

    def disposition(value):
        if value != b"form-data":
            # Proxmox's message quotes what its regex caught, which can span
            # lines of the body; a reason phrase cannot: one line, cut short.
            shown = " ".join(value.decode("utf-8", "replace").split())
            raise Fail(500, "wrong Content-Disposition '%s' in multipart, expected 'form-data'"
                       % (shown if len(shown) <= 120 else shown[:117] + "..."))

    while True:
        chunk = rfile.read(min(CHUNK, left)) if left else b""
        left -= len(chunk)
        buf += chunk
        if phase == 0:
            m = re.search(delim, buf, re.S)
            if m:
                buf, phase = buf[m.start():], 1
            elif len(buf) > HEAD_MAX:
                raise Fail(500, "upload failed")
        if phase == 1:
            for name in (b"content", b"checksum-algorithm", b"checksum"):
                m = re.match(delim + rb".*?Content-Disposition: (.*?); name=\"" + re.escape(name) +
                             rb"\"(.*?" + delim + rb")", buf, re.S)
                if not m:
                    continue
                disposition(m.group(1))
                buf = m.group(2) + buf[m.end():]
                buf = re.sub(rb"^.*?(?:\r?\n){2}", b"", buf, count=1, flags=re.S)
                v = re.match(rb"(.*?)(" + delim + rb")", buf, re.S)
                buf = buf[v.start(2):]
                fields[name.decode()] = v.group(1).strip().decode("utf-8", "replace")
            m = re.match(delim + rb"Content-Disposition: (.*?); name=\"(.*?)\"; filename=\"([^\"]+)\"", buf, re.S)
            if m:
                disposition(m.group(1))
                if m.group(2) != b"filename":
                    raise Fail(500, "wrong field name '%s' for file upload, expected 'filename'"
                               % m.group(2).decode("utf-8", "replace"))
                fields["filename"] = m.group(3).strip().decode("utf-8", "replace")
                buf = re.sub(rb"^.*?(?:\r?\n){2}", b"", buf[m.end():], count=1, flags=re.S)
                phase = 2
            elif len(buf) > HEAD_MAX:
                raise Fail(500, "upload failed")
        if phase == 2:
            i = buf.find(close)
            if i >= 0:
                j = i - 2 if buf[i - 2:i] == b"\r\n" else i - 1 if buf[i - 1:i] == b"\n" else i
                out.write(buf[:j])
                size += j
                phase, buf = 100, b""
            elif len(buf) > boundlen:
                out.write(buf[:len(buf) - boundlen])
                size += len(buf) - boundlen
                buf = buf[len(buf) - boundlen:]
        if phase == 100:
            while left:  # the rest of the body is read, not looked at
                d = rfile.read(min(CHUNK, left))
                if not d:
                    break
                left -= len(d)
            return fields, size
        if not chunk:
            raise Fail(500, "upload failed")
