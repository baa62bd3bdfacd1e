# SPDX-License-Identifier: MIT
"""pve_sim_registry.py — the guest side of the provisioner's `registry`
step, for the Proxmox simulator's guest model: two commands the step runs
through the guest agent (agent/exec), which pve_sim_guests.run_guest hands
here, and K3s reading registries.yaml whenever it starts.

systemctl restart systemd-resolved
    restart_resolved: the resolver's drop-ins read again (the registry
    step's routing domain for the lab's zone); the seed script's push needs
    one that covers HOST (resolves), else ctr's "no such host".

systemctl restart k3s | k3s-agent
    The unit not installed in this instance of the VM: exit 5,
    "Failed to restart UNIT.service: Unit UNIT.service not found." (systemd).
    Else K3s starts again and reads /etc/rancher/k3s/registries.yaml
    (K3s reads it only at a start: k3s_start, also called by the install
    model). Valid, or absent: exit 0 once the start is done (--exec-ms),
    and the service record vm["k3s"] gets "started" (now + exec), "registries"
    (the document as parsed, {} for an empty file, None when absent) and
    "restarts" (+1). Invalid: exit 1 with systemd's "Job for UNIT.service
    failed ..." and vm["k3s"]["failed"] = the reason, so `systemctl
    is-active` answers "failed", exit 3, until a start succeeds. The install
    model's start reads the file the same way: a refused one fails the
    install with exit 1 and the same message (install.sh's `systemctl
    restart` under set -e), its unit recorded as failed.
    Not modelled: config.yaml is not read again (the record keeps the
    install's "config"), no journal. k8s_sim.py knows a K3s start by its
    start time, so it plays a restart as a new start (and registers the
    node again); it does not look at "failed".

    What is refused, and how that compares with K3s: K3s loads the file with
    rancher/wharfie's registries.GetPrivateRegistries (k3s
    pkg/agent/config/config.go), a non-strict gopkg.in/yaml.v2 Unmarshal into
    {mirrors: {HOST: {endpoint: [URL], rewrite: {RE: REPL}}}, configs: {HOST:
    {auth: {username, password, auth, identity_token}, tls: {ca_file,
    cert_file, key_file, insecure_skip_verify}}}}, and fails its start on a
    YAML syntax error or a value of the wrong type (endpoint a string, a
    mirror a list, insecure_skip_verify not a boolean). The model refuses
    those too, and is stricter where K3s would start and fail later or
    never: an unknown key (yaml.v2 ignores it), a mirror without an endpoint
    or an endpoint that is not an http(s) URL (K3s writes containerd's
    hosts.toml, whose pulls fail), a *_file absent from the guest (containerd
    fails each pull to that host), a number where a string belongs (yaml.v2
    takes its text). These are the provisioner's mistakes the model is here
    to catch.

/bin/sh /usr/local/lib/devopslab/registry-seed.sh HOST CAFILE TARBALL
    The provisioner's script (its content is ours; this is what it does):
    `k3s ctr -n devopslab-seed images import TARBALL`, then for every image
    name in the archive, tag it HOST/PATH:TAG (PATH: the name's repository
    path without its registry domain) and `k3s ctr images push --tlscacert
    CAFILE` (CAFILE "-": the system's roots), printing "pushed SRC DEST" for
    each. Modelled:
      * the script absent from guestfs: exit 2, dash's "/bin/sh: 0: cannot
        open PATH: No such file"; other than three arguments or a HOST that
        is not host[:port]: exit 2, "usage: registry-seed.sh HOST CAFILE
        TARBALL";
      * K3s not active in the VM (neither k3s nor k3s-agent): exit 1,
        ctr's 'failed to dial "/run/k3s/containerd/containerd.sock": context
        deadline exceeded';
      * TARBALL, then CAFILE (unless "-"), absent: exit 1, "ctr: open P: no
        such file or directory"; CAFILE's content is not looked at (there is
        no TLS here);
      * the archive (tar, or tar compressed as ctr accepts it), read as
        containerd's importer does: an OCI image layout (index.json; each
        manifest descriptor an image named by its io.containerd.image.name
        annotation, else by org.opencontainers.image.ref.name when that is
        a full reference — a bare tag names nothing, as ctr import without
        --base-name keeps no such name here) or docker save's (manifest.json,
        an image per RepoTags entry). Not a tar, or neither file: exit 1,
        "ctr: unrecognized image format"; an OCI descriptor whose blob is
        missing or has another digest: exit 1, "ctr: content digest D: not
        found"; a name that is not a reference: exit 1, 'ctr: failed to
        normalize image reference "N": invalid reference format'.
        A file over pve_sim_payload's 4 MiB was laid without its bytes:
        exit 1 saying so (a limit of the simulator, not of ctr);
      * names are normalised as containerd's reference.ParseNormalizedNamed
        does (nginx:1.25 is docker.io/library/nginx:1.25, no tag is
        :latest) and pushed as HOST/PATH:TAG (docker.io/library/nginx:1.25
        -> HOST/library/nginx:1.25, ghcr.io/a/b:v1 -> HOST/a/b:v1); an image
        with no name, or one known only by digest (NAME@sha256:...), is
        skipped with "registry-seed: skipped NAME-OR-DIGEST: known only by
        digest" on stderr;
      * an image's digest: "sha256:" + the SHA-256 of its manifest blob (OCI)
        or of its config file (docker save);
      * the push needs the registry: with --registry-dir DIR (every node's
        simulator gets the same DIR), the Kubernetes simulator writes
        DIR/ready ({"image", "time"}) while the registry's Deployment is
        available. No DIR/ready (or no --registry-dir) and something to
        push: exit 1, "ctr: unexpected status from HEAD request to
        https://HOST/v2/PATH/blobs/sha256:HEX: 503 Service Unavailable" for
        the first image (Traefik answering without a backend; HEX: the
        image's config blob, the first thing a push asks for). Else every
        push is merged into DIR/pushed.json, {"repositories": {PATH: {TAG:
        "sha256:HEX"}}}, under an flock on DIR/pushed.lock (the nodes'
        processes share DIR) and written whole (tmp + rename) only when it
        changes; exit 0 after --exec-ms with the "pushed" lines. Pushing
        the same again changes nothing. HOST is not resolved: every HOST
        reaches the one registry of DIR.
The VM's agent_log (pve_sim_guests) keeps every command and its exit code.
"""
import fcntl
import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from urllib.parse import urlsplit

import yaml

import pve_sim_guests as pg  # the guest helpers (service, file_bytes, ...), used at call time
import pve_sim_payload as pp

K3S_UNITS = ("k3s", "k3s-agent")
REGISTRIES = "/etc/rancher/k3s/registries.yaml"
SEED_SCRIPT = "/usr/local/lib/devopslab/registry-seed.sh"
CONTAINERD_SOCK = "/run/k3s/containerd/containerd.sock"


# ---- registries.yaml ---------------------------------------------------------------

def job_failed(unit):
    """systemctl's words when a start job fails (systemd 257)."""
    return ("Job for %s.service failed because the control process exited with error code.\n"
            "See \"systemctl status %s.service\" and \"journalctl -xeu %s.service\" for details.\n"
            % (unit, unit, unit))


def load_registries(fs):
    """(document, None): registries.yaml as parsed (None when absent, {} when
    empty); (None, reason) when K3s (or the model, above) refuses it."""
    f = fs.get(REGISTRIES)
    if f is None:
        return None, None
    try:
        doc = yaml.safe_load(pp.file_text(f))
    except yaml.YAMLError as e:
        return None, "yaml: %s" % " ".join(str(e).split())
    if doc is None:
        doc = {}
    why = registries_problem(doc, fs)
    return (None, why) if why else (doc, None)


def unknown_key(m, allowed, where):
    for k in m:
        if k not in allowed:
            return "%s: unknown key %r" % (where, k)
    return None


def registries_problem(doc, fs):
    """The first reason to refuse the document, or None."""
    if not isinstance(doc, dict):
        return "not a mapping"
    why = unknown_key(doc, ("mirrors", "configs"), "registries.yaml")
    if why:
        return why
    for sect, check in (("mirrors", mirror_problem), ("configs", config_problem)):
        m = doc.get(sect)
        if m is None:
            continue
        if not isinstance(m, dict):
            return "%s: not a mapping" % sect
        for host, v in m.items():
            where = "%s.%s" % (sect, host)
            if not isinstance(host, str) or not host:
                return "%s: a host that is not a string" % where
            if not isinstance(v, dict):
                return "%s: not a mapping" % where
            why = check(v, where, fs)
            if why:
                return why
    return None


def mirror_problem(m, where, fs):
    why = unknown_key(m, ("endpoint", "rewrite"), where)
    if why:
        return why
    ep = m.get("endpoint")
    if not isinstance(ep, list) or not ep:
        return "%s.endpoint: not a list of URLs" % where
    for u in ep:
        p = urlsplit(u) if isinstance(u, str) else None
        if p is None or p.scheme not in ("http", "https") or not p.hostname:
            return "%s.endpoint: %r is not an http(s) URL" % (where, u)
    rw = m.get("rewrite")
    if rw is not None and (not isinstance(rw, dict) or
                           not all(isinstance(k, str) and isinstance(v, str) for k, v in rw.items())):
        return "%s.rewrite: not a mapping of strings" % where
    return None


def config_problem(c, where, fs):
    why = unknown_key(c, ("auth", "tls"), where)
    if why:
        return why
    auth, tls = c.get("auth"), c.get("tls")
    if auth is not None:
        if not isinstance(auth, dict):
            return "%s.auth: not a mapping" % where
        why = unknown_key(auth, ("username", "password", "auth", "identity_token"), where + ".auth")
        if why:
            return why
        for k, v in auth.items():
            if not isinstance(v, str):
                return "%s.auth.%s: not a string" % (where, k)
    if tls is not None:
        if not isinstance(tls, dict):
            return "%s.tls: not a mapping" % where
        files = ("ca_file", "cert_file", "key_file")
        why = unknown_key(tls, files + ("insecure_skip_verify",), where + ".tls")
        if why:
            return why
        for k in files:
            if k in tls and (not isinstance(tls[k], str) or tls[k] not in fs):
                return "%s.tls.%s: %r: no such file in the guest" % (where, k, tls[k])
        if not isinstance(tls.get("insecure_skip_verify", False), bool):
            return "%s.tls.insecure_skip_verify: not a boolean" % where
    return None


def k3s_start(svc, fs):
    """K3s (re)starting reads registries.yaml into its service record svc:
    "registries" set and "failed" cleared, or "failed" set to the reason.
    Returns systemctl's stderr for a start that failed, else ""."""
    doc, why = load_registries(fs)
    if why:
        svc["failed"] = "%s: %s" % (REGISTRIES, why)
        return job_failed(svc["unit"])
    svc.pop("failed", None)
    svc["registries"] = doc
    return ""


def restart(vm, unit, exec_s):
    """systemctl restart UNIT (k3s or k3s-agent): (delay, exit, out, err)."""
    svc = pg.service(vm, unit)
    if svc is None:
        return 0, 5, "", "Failed to restart %s.service: Unit %s.service not found.\n" % (unit, unit)
    err = k3s_start(svc, vm.get("guestfs", {}))
    if err:
        return exec_s, 1, "", err
    svc["started"] = time.time() + exec_s
    svc["restarts"] = svc.get("restarts", 0) + 1
    return exec_s, 0, "", ""


RESOLVED_DIR = "/etc/systemd/resolved.conf.d/"


def restart_resolved(vm, exec_s):
    """systemctl restart systemd-resolved (Debian's cloud images run it):
    it reads its drop-ins again; vm["resolved"] = {"dns": [addresses],
    "domains": [domains, "~zone" a routing domain]} from every
    RESOLVED_DIR*.conf's [Resolve] section, in name order, a later DNS= or
    Domains= adding to the earlier (an empty one resets), as resolved.conf(5)
    says. Lines it does not know are skipped (resolved logs and goes on).
    Always exit 0."""
    fs = vm.get("guestfs", {})
    conf = {"dns": [], "domains": []}
    for path in sorted(p for p in fs if p.startswith(RESOLVED_DIR) and p.endswith(".conf")):
        section = None
        for line in pg.file_bytes(fs[path]).decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, eq, val = line.partition("=")
            if section != "Resolve" or not eq or key.strip() not in ("DNS", "Domains"):
                continue
            k = "dns" if key.strip() == "DNS" else "domains"
            conf[k] = conf[k] + val.split() if val.strip() else []
    vm["resolved"] = conf
    return exec_s, 0, "", ""


def resolves(vm, host):
    """Whether the guest finds HOST (no port): a routing domain ("~zone")
    of systemd-resolved's with a server covers it. The LAN's resolvers
    (network.dns) know nothing of the lab's zone."""
    conf = vm.get("resolved") or {}
    name = host.rsplit(":", 1)[0].rstrip(".").lower()
    return bool(conf.get("dns")) and any(
        name == d.lstrip("~").rstrip(".").lower() or name.endswith("." + d.lstrip("~").rstrip(".").lower())
        for d in conf.get("domains", []))


# ---- image references (containerd's reference/docker grammar) ---------------------

COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
PATH_RE = re.compile(r"%s(?:/%s)*" % (COMPONENT, COMPONENT))
LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
HOST_RE = re.compile(r"%s(?:\.%s)*(?::[0-9]+)?" % (LABEL, LABEL))
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


class BadRef(Exception):
    pass


def normalize(name):
    """(domain, path, tag or None, digest or None) of an image name, as
    reference.ParseNormalizedNamed reads it (then TagNameOnly: a name with
    neither tag nor digest is :latest); BadRef if it is none."""
    rest, digest = name, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.fullmatch(digest):
            raise BadRef(name)
    tag = None
    head, _, last = rest.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        if not TAG_RE.fullmatch(tag):
            raise BadRef(name)
    rest = head + "/" + last if head else last
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, remainder
        if not HOST_RE.fullmatch(domain):
            raise BadRef(name)
    else:
        domain, path = "docker.io", rest
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not PATH_RE.fullmatch(path):
        raise BadRef(name)
    if tag is None and digest is None:
        tag = "latest"
    return domain, path, tag, digest


def full_name(domain, path, tag, digest):
    return "%s/%s%s%s" % (domain, path, ":" + tag if tag else "", "@" + digest if digest else "")


# ---- image archives (containerd's images/archive importer) --------------------------

class Unreadable(Exception):
    """The archive is refused: the text is ctr's message without "ctr: "."""


def sha256_of(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def archive_images(data):
    """[(name or None, digest, first blob)] in the archive's order."""
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
        files = {}
        for m in tf.getmembers():
            if m.isfile():
                files[m.name[2:] if m.name.startswith("./") else m.name] = m

        def read(n):
            return tf.extractfile(files[n]).read()
        if "index.json" in files:
            return oci_images(json.loads(read("index.json")), files, read)
        if "manifest.json" in files:
            return docker_images(json.loads(read("manifest.json")), files, read)
    except (tarfile.TarError, zlib.error, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    raise Unreadable("unrecognized image format")


def oci_name(ann):
    name = ann.get("io.containerd.image.name")
    if name:
        return name
    ref = ann.get("org.opencontainers.image.ref.name") or ""
    if not ref or ("/" not in ref and ":" not in ref and "@" not in ref and TAG_RE.fullmatch(ref)):
        return None  # a bare tag (or nothing): no name without --base-name
    return ref


def oci_images(idx, files, read):
    out = []
    for d in idx["manifests"]:
        digest = d["digest"]
        algo, _, hexd = digest.partition(":")
        blob = "blobs/%s/%s" % (algo, hexd)
        if blob not in files or sha256_of(read(blob)) != digest:
            raise Unreadable("content digest %s: not found" % digest)
        man = json.loads(read(blob))
        first = (man.get("config") or {}).get("digest") or digest
        out.append((oci_name(d.get("annotations") or {}), digest, first))
    return out


def docker_images(manifest, files, read):
    out = []
    for e in manifest:
        digest = sha256_of(read(e["Config"]))
        for name in e.get("RepoTags") or [None]:
            out.append((name, digest, digest))
    return out


# ---- the seed script ------------------------------------------------------------------

def seed(s, node, vm, args, exec_s):
    """/bin/sh registry-seed.sh HOST CAFILE TARBALL: (delay, exit, out, err)."""
    fs = vm.get("guestfs", {})
    if SEED_SCRIPT not in fs:  # dash (Debian's /bin/sh) exits 2 here
        return 0, 2, "", "/bin/sh: 0: cannot open %s: No such file\n" % SEED_SCRIPT
    if len(args) != 3 or not HOST_RE.fullmatch(args[0]):
        return 0, 2, "", "usage: registry-seed.sh HOST CAFILE TARBALL\n"
    host, cafile, tarball = args
    if not any(pg.unit_active(vm, u) for u in K3S_UNITS):
        return 0, 1, "", "ctr: failed to dial \"%s\": context deadline exceeded\n" % CONTAINERD_SOCK
    for p in (tarball,) if cafile == "-" else (tarball, cafile):
        if p not in fs:
            return 0, 1, "", "ctr: open %s: no such file or directory\n" % p
    f = fs[tarball]
    if "b64" not in f and "data" not in f and f.get("size"):
        return 0, 1, "", "pve_sim: %s (%d bytes) was laid without its bytes (over pve_sim_payload's %d)\n" % (
            tarball, f["size"], pp.B64_MAX)
    try:
        images = archive_images(pg.file_bytes(f))
        refs = [(normalize(name) if name else None, digest, first) for name, digest, first in images]
    except Unreadable as e:
        return 0, 1, "", "ctr: %s\n" % e
    except BadRef as e:
        return 0, 1, "", "ctr: failed to normalize image reference \"%s\": invalid reference format\n" % e
    err, pushes = "", []
    for (ref, digest, first), (name, _, _) in zip(refs, images):
        if ref is None or ref[2] is None:
            err += "registry-seed: skipped %s: known only by digest\n" % (name or digest)
            continue
        pushes.append((full_name(*ref), ref[1], ref[2], digest, first))
    if not pushes:
        return exec_s, 0, "", err
    if not resolves(vm, host):
        _, path, _, _, first = pushes[0]
        return 0, 1, "", err + ("ctr: failed to do request: Head \"https://%s/v2/%s/blobs/%s\": dial tcp: "
                                "lookup %s on 127.0.0.53:53: no such host\n" % (host, path, first,
                                                                                  host.rsplit(":", 1)[0]))
    d = s["nodes"][node]["gopts"].get("registry_dir")
    if not d or not os.path.exists(os.path.join(d, "ready")):
        _, path, _, _, first = pushes[0]
        return 0, 1, "", err + ("ctr: unexpected status from HEAD request to https://%s/v2/%s/blobs/%s: "
                                "503 Service Unavailable\n" % (host, path, first))
    record_pushes(d, [(path, tag, digest) for _, path, tag, digest, _ in pushes])
    out = "".join("pushed %s %s/%s:%s\n" % (src, host, path, tag) for src, path, tag, _, _ in pushes)
    return exec_s, 0, out, err


def record_pushes(d, pushes):
    """Merge [(path, tag, digest)] into D/pushed.json under D/pushed.lock."""
    with open(os.path.join(d, "pushed.lock"), "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        p = os.path.join(d, "pushed.json")
        try:
            with open(p, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            doc = {"repositories": {}}
        repos = doc.setdefault("repositories", {})
        changed = False
        for path, tag, digest in pushes:
            if repos.get(path, {}).get(tag) != digest:
                repos.setdefault(path, {})[tag] = digest
                changed = True
        if changed:
            pg.write_atomic(p, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), 0o644)
