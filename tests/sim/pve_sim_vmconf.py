# SPDX-License-Identifier: MIT
"""pve_sim_vmconf.py — a QEMU VM's configuration strings and what its guest
makes of them, for the Proxmox VE simulator (pve_sim_guests.py serves the
API): drive and NIC property strings as qemu-server parses and prints them,
Proxmox's MAC addresses, and the cloud-init seed a started guest reads (a
NoCloud ISO, or the drive Proxmox generates), which decides the addresses
its guest agent reports.

Source names as in pve_sim_guests.py ("Drive.pm" is qemu-server's
src/PVE/QemuServer/Drive.pm, "Cloudinit.pm" src/PVE/QemuServer/Cloudinit.pm).
"""
import base64
import fnmatch
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import urllib.parse

import pve_sim_storage as st
from pve_sim_storage import MIB, format_size, parse_size

try:
    import yaml  # python3-yaml, a test dependency (tests/lib.sh)
except ImportError:  # pragma: no cover
    yaml = None

Fail = None  # pve_sim.Fail, set by pve_sim_guests.bind()

NEW_DISK_RE = re.compile(r"(([^/:\s]+):)?(\d+(\.\d+)?)$")  # Drive.pm $NEW_DISK_RE
DRIVE_RE = re.compile(r"(ide[0-3]|sata[0-5]|scsi(?:[12]?[0-9]|30)|virtio(?:1[0-5]|[0-9])|efidisk0|tpmstate0)$")
UNUSED_RE = re.compile(r"unused\d+$")
CLOUDINIT_RE = re.compile(r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow2|qcow|qed|vmdk|cloop))?$")
NET_MODELS = ("e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
              "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3")
MAC_PREFIX = "BC:24:11"  # pve-cluster DataCenterConfig.pm $PROXMOX_OUI, the default mac_prefix
CLOUDINIT_SIZE = 4 * MIB  # Cloudinit.pm CLOUDINIT_DISK_SIZE
SEED_MAX = 1 * MIB


# ---- property strings --------------------------------------------------------

def parse_drive(value):
    """Drive.pm parse_drive (the schema has checked the syntax); None when
    Proxmox's parse_drive refuses (a cdrom with snapshot/format)."""
    d = {}
    for part in value.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            d[k] = v
        elif part:
            d["file"] = part
    if d.get("media") == "cdrom" and ("snapshot" in d or "format" in d):
        return None
    if "size" in d:
        d["size"] = parse_size(d["size"])
    return d


def print_drive(d):
    """pve-common JSONSchema.pm print_property_string: the default key
    ('file') first, then the others sorted; sizes as format_size."""
    out = [d["file"]]
    for k in sorted(d):
        if k != "file" and d[k] is not None:
            out.append("%s=%s" % (k, format_size(d[k]) if k == "size" else d[k]))
    return ",".join(out)


def parse_net(value):
    """QemuServer/Network.pm parse_net with the format's keyAlias: a model
    name may carry the MAC ("virtio=BC:24:11:...")."""
    n = {}
    for part in value.split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            if k in NET_MODELS:
                n["model"], k = k, "macaddr"
            n[k] = v
        elif part:
            n["model"] = part
    return n


def print_net(n):
    out = ["%s=%s" % (n["model"], n["macaddr"]) if n.get("macaddr") else n["model"]]
    out += ["%s=%s" % (k, n[k]) for k in sorted(n) if k not in ("model", "macaddr")]
    return ",".join(out)


def random_mac():
    """pve-common Tools.pm random_ether_addr with the default prefix: the
    first octet's multicast bit cleared and local bit set, then the prefix
    laid over it."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFE) | 2
    return MAC_PREFIX + ":".join("%02X" % x for x in b)[len(MAC_PREFIX):]


def is_cdrom(d, exclude_cloudinit=False):
    """Drive.pm drive_is_cdrom / drive_is_cloudinit."""
    if exclude_cloudinit and is_cloudinit(d):
        return False
    return d is not None and d.get("media") == "cdrom"


def is_cloudinit(d):
    return CLOUDINIT_RE.search(d.get("file", "")) is not None


def split_volid(volid):
    m = st.VOLID.fullmatch(volid or "")
    return (m.group(1), m.group(2)) if m else (None, None)


def drive_order(k):
    """Drive.pm valid_drive_names: ide, scsi, virtio, sata, efidisk, tpmstate."""
    m = re.fullmatch(r"([a-z]+)(\d+)", k)
    return ("ide", "scsi", "virtio", "sata", "efidisk", "tpmstate").index(m.group(1)), int(m.group(2))


def drives(conf):
    """(key, parsed drive) for every drive of a config, in Proxmox's order."""
    return [(k, parse_drive(conf[k])) for k in sorted((k for k in conf if DRIVE_RE.fullmatch(k)), key=drive_order)]


def agent_enabled(conf):
    """QemuServer/Agent.pm parse_guest_agent: 'enabled' is the default key."""
    a = conf.get("agent")
    if a is None:
        return False
    parts = dict(x.split("=", 1) if "=" in x else ("enabled", x) for x in a.split(","))
    return parts.get("enabled") == "1"


def validate_sshkeys(p):
    """pve-common Tools.pm validate_ssh_public_keys runs 'ssh-keygen -l' on
    every line; here: 'TYPE BASE64 [comment]' where the key blob starts with
    its type."""
    if "sshkeys" not in p:
        return
    for line in urllib.parse.unquote(p["sshkeys"]).split("\n"):
        if not line.strip():
            continue
        f = line.split()
        try:
            blob = base64.b64decode(f[1], validate=True)
            ok = len(blob) > 4 and blob[4:4 + int.from_bytes(blob[:4], "big")] == f[0].encode()
        except (IndexError, ValueError):
            ok = False
        if not ok:
            raise Fail(500, "SSH public key validation error")


# ---- cloud-init seeds and the guest's network --------------------------------

def nics(conf):
    """(index, MAC, kernel name) of the VM's NICs. The guest's names are the
    predictable ones of a Proxmox VM: net0 sits in PCI slot 0x12 (18),
    hence ens18, net1 ens19 (an assumption of the model, not checked)."""
    out = []
    for k in sorted(conf, key=lambda k: int(k[3:]) if re.fullmatch(r"net\d+", k) else -1):
        if re.fullmatch(r"net\d+", k):
            i = int(k[3:])
            out.append((i, parse_net(conf[k]).get("macaddr", "").lower(), "ens%d" % (18 + i)))
    return out


def read_seed(sim, s, node, vmid, vm):
    """The cloud-init seed a started guest finds: the first cdrom that is an
    uploaded NoCloud ISO (volume label 'cidata', its files read with
    xorriso) or a Proxmox cloud-init drive (its files generated as
    Cloudinit.pm generate_nocloud does). The files go to the record
    directories as NAME.user-data, NAME.meta-data, NAME.network-config.
    Returns {"kind", "ifaces": {mac: {name, addrs}}} or None."""
    conf = vm["conf"]
    for ds, d in drives(conf):
        if not is_cdrom(d):
            continue
        files, kind = None, None
        if is_cloudinit(d):
            files, kind = generate_nocloud(conf, vmid), "proxmox-cloudinit"
        else:
            v = st.volume(s, node, d["file"]) if split_volid(d.get("file"))[0] else None
            if v and v.get("file") and (st.iso_label(v["file"]) or "").lower() == "cidata":
                files, kind = extract_iso(v["file"]), "nocloud-iso"
        if files is None:
            continue
        name = conf.get("name") or str(vmid)
        for part in ("user-data", "meta-data", "network-config"):
            if part in files:
                sim.recorder.save("%s.%s" % (name, part), files[part])
        return {"kind": kind, "drive": ds, "ifaces": seed_ifaces(files.get("network-config"), nics(conf))}
    return None


def extract_iso(path):
    """A NoCloud ISO's files: 'xorriso -osirrox on -indev ISO -extract / DIR'."""
    d = tempfile.mkdtemp(prefix="pve-sim-seed-")
    try:
        subprocess.run(["xorriso", "-osirrox", "on", "-indev", path, "-extract", "/", d], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
        files = {}
        for part in ("user-data", "meta-data", "network-config", "vendor-data"):
            f = os.path.join(d, part)
            if os.path.isfile(f) and os.path.getsize(f) <= SEED_MAX:
                with open(f, "rb") as fh:
                    files[part] = fh.read()
        return files
    finally:
        shutil.rmtree(d, ignore_errors=True)


def generate_nocloud(conf, vmid):
    """Cloudinit.pm generate_nocloud: cloudinit_userdata, nocloud_network
    (version 1), nocloud_gen_metadata. The host's resolv.conf, which Proxmox
    falls back on for DNS, does not exist here: only 'nameserver' and
    'searchdomain' from the config count."""
    name = conf.get("name", "VM%d" % vmid)  # Cloudinit.pm get_hostname_fqdn
    host, fqdn = name.split(".")[0], name
    if "." not in name and conf.get("searchdomain"):
        fqdn = "%s.%s" % (name, conf["searchdomain"].split()[0])
    ud = "#cloud-config\nhostname: %s\nmanage_etc_hosts: true\nfqdn: %s\n" % (host, fqdn)
    if conf.get("ciuser"):
        ud += "user: %s\n" % conf["ciuser"]
        if conf["ciuser"] == "root":
            ud += "disable_root: False\n"
    if conf.get("cipassword"):
        ud += "password: %s\n" % conf["cipassword"]
    if conf.get("sshkeys"):
        keys = [k.strip() for k in urllib.parse.unquote(conf["sshkeys"]).split("\n") if k.strip()]
        ud += "ssh_authorized_keys:\n" + "".join("  - %s\n" % k for k in keys)
    ud += "chpasswd:\n  expire: False\n"
    if conf.get("ciuser") != "root":
        ud += "users:\n  - default\n"
    if conf.get("ciupgrade", "1") == "1":
        ud += "package_upgrade: true\n"
    net = "version: 1\nconfig:\n"
    for i, mac, _ in nics(conf):
        ipc = dict(x.split("=", 1) for x in conf.get("ipconfig%d" % i, "").split(",") if "=" in x)
        if not ipc:
            continue
        net += "    - type: physical\n      name: eth%d\n      mac_address: '%s'\n      subnets:\n" % (i, mac)
        if ipc.get("ip") == "dhcp":
            net += "      - type: dhcp4\n"
        elif ipc.get("ip"):
            n = ipaddress.ip_interface(ipc["ip"])
            net += "      - type: static\n        address: '%s'\n        netmask: '%s'\n" % (n.ip, n.netmask)
            if ipc.get("gw"):
                net += "        gateway: '%s'\n" % ipc["gw"]
    net += "    - type: nameserver\n"
    if conf.get("nameserver"):
        net += "      address:\n" + "".join("      - '%s'\n" % x for x in conf["nameserver"].split())
    if conf.get("searchdomain"):
        net += "      search:\n" + "".join("      - '%s'\n" % x for x in conf["searchdomain"].split())
    md = "instance-id: %s\n" % hashlib.sha1((ud + net).encode()).hexdigest()
    return {"user-data": ud.encode(), "meta-data": md.encode(), "network-config": net.encode()}


def seed_ifaces(text, vm_nics):
    """What a guest configures from a NoCloud network-config: version 2
    (netplan: ethernets matched by macaddress, name glob or their own name;
    'set-name' renames) or version 1 (physical entries by mac_address, their
    'name', static subnets). {mac: {"name": n, "addrs": ["ip/prefix"]}}."""
    out = {mac: {"name": kname, "addrs": []} for _, mac, kname in vm_nics}
    if not text or yaml is None:
        return out
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError:
        return out
    if isinstance(cfg, dict) and isinstance(cfg.get("network"), dict):
        cfg = cfg["network"]
    if not isinstance(cfg, dict):
        return out
    if str(cfg.get("version")) == "2":
        for eid, e in (cfg.get("ethernets") or {}).items():
            if not isinstance(e, dict):
                continue
            match = e.get("match") or {}
            for _, mac, kname in vm_nics:
                if match.get("macaddress"):
                    hit = str(match["macaddress"]).lower() == mac
                elif match.get("name"):
                    hit = fnmatch.fnmatch(kname, str(match["name"]))
                else:
                    hit = eid == kname
                if hit:
                    out[mac]["name"] = e.get("set-name") or out[mac]["name"]
                    out[mac]["addrs"] += [str(a) for a in (e.get("addresses") or []) if isinstance(a, str)]
    elif str(cfg.get("version")) == "1":
        for e in cfg.get("config") or []:
            if not isinstance(e, dict) or e.get("type") != "physical":
                continue
            mac = str(e.get("mac_address", "")).lower()
            if mac not in out:
                continue
            out[mac]["name"] = e.get("name") or out[mac]["name"]
            for sn in e.get("subnets") or []:
                if isinstance(sn, dict) and sn.get("type") in ("static", "static6") and sn.get("address"):
                    a = str(sn["address"])
                    if "/" not in a and sn.get("netmask"):
                        a = "%s/%d" % (a, ipaddress.ip_network("0.0.0.0/%s" % sn["netmask"]).prefixlen)
                    out[mac]["addrs"].append(a)
    return out


def guest_interfaces(vm):
    """QGA guest-network-get-interfaces as a guest with that seed answers:
    lo, then each NIC with the seed's static addresses and its IPv6
    link-local address (EUI-64 of the MAC). Without a matching seed entry a
    NIC has no IPv4 address (DHCP results are not modelled)."""
    stats = {"rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0, "tx-bytes": 0, "tx-dropped": 0,
             "tx-errs": 0, "tx-packets": 0}
    out = [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "statistics": dict(stats),
            "ip-addresses": [{"ip-address-type": "ipv4", "ip-address": "127.0.0.1", "prefix": 8},
                             {"ip-address-type": "ipv6", "ip-address": "::1", "prefix": 128}]}]
    ifaces = (vm.get("seed") or {}).get("ifaces") or {mac: {"name": n, "addrs": []} for _, mac, n in nics(vm["conf"])}
    for _, mac, kname in nics(vm["conf"]):
        e = ifaces.get(mac, {"name": kname, "addrs": []})
        addrs = []
        for a in e["addrs"]:
            try:
                n = ipaddress.ip_interface(a)
            except ValueError:
                continue
            addrs.append({"ip-address-type": "ipv%d" % n.version, "ip-address": str(n.ip),
                          "prefix": n.network.prefixlen})
        b = bytes(int(x, 16) for x in mac.split(":"))
        ll = ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + bytes([b[0] ^ 2]) + b[1:3] + b"\xff\xfe" + b[3:])
        addrs.append({"ip-address-type": "ipv6", "ip-address": str(ll), "prefix": 64})
        out.append({"name": e["name"], "hardware-address": mac, "ip-addresses": addrs, "statistics": dict(stats)})
    return out
