# SPDX-License-Identifier: MIT
"""pve_sim_payload.py — what the guest's payload.sh does at its first boot
(docs/guests.md, "The payload"), for the Proxmox simulator's guests: the
seed's user data lists the payload (write_files:
/usr/local/lib/devopslab/payload.list, lines "sha256  source  path  mode")
and runcmd runs payload.sh with the label of the ISO that holds the files.
Each listed file is copied from that ISO into the VM's "guestfs" when its
SHA-256 matches the list; a file missing from the ISO or with another
digest is left out, and cloud-init then ends in error (the guest agent's
`cloud-init status --wait` exits 1). Once per instance, as runcmd runs:
a VM re-created with a new machine identity starts over.

A payload file in guestfs: {"mode", "sha256", "size", "b64" (the bytes,
up to 4 MiB), "from": "payload"}.
"""
import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading

import yaml

import pve_sim_storage as st
import pve_sim_vmconf as vc

PAYLOAD_SH = "/usr/local/lib/devopslab/payload.sh"
B64_MAX = 4 << 20


def identity(vm):
    smb = dict(x.split("=", 1) for x in vm["conf"].get("smbios1", "").split(",") if "=" in x)
    return smb.get("uuid", "")


def attached_isos(s, node, conf):
    """{volume label: file} of the uploaded ISOs on the VM's CD-ROM drives."""
    out = {}
    for _, d in vc.drives(conf):
        if not vc.is_cdrom(d) or vc.is_cloudinit(d) or not vc.split_volid(d.get("file"))[0]:
            continue
        v = st.volume(s, node, d["file"])
        if v and v.get("file"):
            label = st.iso_label(v["file"])
            if label:
                out.setdefault(label, v["file"])
    return out


def payload_request(user_data):
    """(label, list text) from the user data, or None without a payload."""
    try:
        ud = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return None
    if not isinstance(ud, dict):
        return None
    files = {f.get("path"): f.get("content", "") for f in ud.get("write_files") or [] if isinstance(f, dict)}
    for cmd in ud.get("runcmd") or []:
        if isinstance(cmd, list) and len(cmd) == 4 and cmd[1] == PAYLOAD_SH and cmd[3] in files:
            return cmd[2], files[cmd[3]]
    return None


_cache = {}
_cache_lock = threading.Lock()


def extract(iso, names):
    """{name: bytes} of the files on the ISO (xorriso, as the guest's mount
    would show them); a name the ISO lacks is absent. The ISOs are named by
    their content and VMs on a node share one: each is read once per
    process (keyed by path, size and mtime), one xorriso at a time."""
    try:
        stt = os.stat(iso)
    except OSError:
        return {}
    key = (iso, stt.st_size, stt.st_mtime_ns)
    with _cache_lock:
        if key not in _cache:
            d = tempfile.mkdtemp(prefix="pve-sim-payload-")
            try:
                subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/", d],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=60, check=False)
                files = {}
                for n in os.listdir(d):
                    p = os.path.join(d, n)
                    if os.path.isfile(p):
                        with open(p, "rb") as f:
                            files[n] = f.read()
                _cache[key] = files
            finally:
                shutil.rmtree(d, ignore_errors=True)
        files = _cache[key]
    return {n: files[n] for n in names if "/" not in n and n in files}


def first_boot(s, node, vm):
    """Lay the payload into guestfs at the instance's first start."""
    ident = identity(vm)
    if vm.get("payload_done") == ident:
        return
    vm["payload_done"] = ident
    vm.pop("cloud_init_error", None)
    isos = attached_isos(s, node, vm["conf"])
    seed = next((f for label, f in isos.items() if label.lower() == "cidata"), None)
    if not seed:
        return
    user_data = extract(seed, ["user-data"]).get("user-data")
    req = payload_request(user_data) if user_data else None
    if not req:
        return
    label, listing = req
    lines = [ln.split() for ln in listing.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if label not in isos:
        vm["cloud_init_error"] = "devopslab-payload: no disk labelled %s" % label
        return
    data = extract(isos[label], [ln[1] for ln in lines if len(ln) == 4])
    fs = vm.setdefault("guestfs", {})
    errors = []
    for ln in lines:
        if len(ln) != 4:
            errors.append("devopslab-payload: a bad line in the list")
            continue
        digest, source, path, mode = ln
        b = data.get(source)
        if b is None:
            errors.append("devopslab-payload: %s: not on the payload disk" % source)
            continue
        if hashlib.sha256(b).hexdigest() != digest:
            errors.append("devopslab-payload: %s: SHA-256 mismatch, not installed" % path)
            continue
        f = {"mode": "%04o" % int(mode, 8), "sha256": digest, "size": len(b), "from": "payload"}
        if len(b) <= B64_MAX:
            f["b64"] = base64.b64encode(b).decode()
        fs[path] = f
    if errors:
        vm["cloud_init_error"] = "\n".join(errors)


def file_text(f):
    """A guestfs entry's content as text (cat)."""
    if "data" in f:
        return f["data"]
    return base64.b64decode(f.get("b64", "")).decode("utf-8", "replace")
