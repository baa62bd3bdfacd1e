#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""k8s_sim.py — the Kubernetes API of a K3s cluster, simulated, for the K3s
steps (docs/k3s.md). It learns which guests run K3s, with what
configuration and files, from the Proxmox VE simulator's state (pve_sim.py,
agent/exec in pve_sim_guests.py) and decides, the way K3s does, what each
start leads to:

  * the first server (no `server:` in its config.yaml) needs the eleven
    custom CA files in /var/lib/rancher/k3s/server/tls (K3s refuses an
    incomplete set); the API then serves TLS with a certificate issued from
    its server CA and authenticates client certificates by its client CA;
  * a joining node must name a running server or a tls-san in `server:`,
    present the full token K10<sha256 of the server CA>::server:<secret>
    with the cluster's hash and secret, and (servers) the same critical
    flags (cluster-cidr, service-cidr, disable); a server that starts while
    another is still an etcd learner fails ("too many learner members").
    Real K3s retries that join until the learner is promoted; the
    provisioner never starts two joins at once, so here it stays a failure
    that the test sees;
  * a node name registered by another machine is refused ("Node password
    rejected") until its Node and kube-system/<name>.node-password.k3s are
    deleted;
  * nodes become Ready --ready-ms after registering (servers with embedded
    etcd: once voting, --promote-ms after their start) and NotReady when
    their VM stops or runs no K3s; with fewer than a majority of voting
    members running, the API answers 503.

Beyond nodes, the API serves a generic object store (k8s_sim_objects.py):
namespaces, configmaps, secrets, service accounts, RBAC, workloads, Events,
Jobs and Pods (read-only, with logs), K3s's Addon, HelmChart and
HelmChartConfig, and Traefik's CRDs (traefik.io/v1alpha1, absent when the
first server's config.yaml disables traefik), with validation against the
official schemas (--schemas), selectors, server-side apply and merge
patches. While a quorum of its servers runs, the cluster plays K3s's deploy
controller (each running server's auto-deploying manifests, an Addon per
file, Events) and helm controller (a helm-install job per HelmChart that
succeeds or crash-loops as helm would, --helm-ms per attempt). Unless
`disable` holds traefik, K3s's packaged Traefik comes with it
(--traefik-chart: the chart version, 34.2.0 as in K3s 1.33, or 38.0.2 or
39.0.7): HelmCharts kube-system/traefik-crd and kube-system/traefik from
the traefik.yaml K3s writes into its manifests, their charts in its static
directory, the values checked against that version's values.schema.json,
and an install makes Deployment and LoadBalancer Service kube-system/traefik.
A helm install also creates the CustomResourceDefinitions of the chart's
crds/ directory, and the API serves Argo CD's Application and AppProject
while their CRDs exist. Where a release of the chart argo-cd is deployed,
the cluster plays Argo CD: AppProject default, and each Application of
that namespace reported on --argocd-ms after it changed, from the Git
repositories of --git-repos and the repository Secrets, in Argo CD's words.
Where a release of the chart kube-prometheus-stack is deployed, its
Services and node-exporter DaemonSet are rendered, and kube-apiserver's
service proxy reaches its pods: Prometheus's /api/v1/targets (up
--prometheus-ms after the install; the static targets of
additionalScrapeConfigs up when --scrape-up lists them) and Grafana's API
(once its admin Secret exists) — k8s_sim_monitoring.py.
A Deployment a client creates is rolled out as the controllers and the
kubelet would (ReplicaSet, Pods, status: available --deploy-ms after every
claim it mounts exists), a local-path claim Bound once a Deployment mounting
it is available; while Deployment registry/registry is available,
--registry-dir DIR holds DIR/ready, and the service proxy reaches the
Distribution API of Service registry/registry, holding what
DIR/pushed.json lists (written by the Proxmox simulator) —
k8s_sim_registry.py.
Where a release of the chart loki-stack is deployed, Loki's Service,
Promtail's DaemonSet and its extra ports' Services are rendered, and the
service proxy reaches Loki: /ready (200 --loki-ms after its start), labels
and series of the streams of --log-streams that the values' Promtail
configuration would ship — k8s_sim_logs.py.
A LoadBalancer Service's address comes from kube-vip (annotation
kube-vip.io/loadbalancerIPs) only while a kube-vip DaemonSet runs with
svc_enable true and takes the Service's class, else from ServiceLB (the
first server's node address) unless the Service names a
loadBalancerClass — k8s_sim_objects.py.

Usage: k8s_sim.py --port P --pve-state DIR [--latency-ms N] [--promote-ms N]
       [--ready-ms N] [--elect-503-ms N] [--never-ready NODE]...
       [--helm-ms N] [--schemas DIR] [--traefik-chart VERSION]
       [--argocd-ms N] [--git-repos FILE] [--prometheus-ms N] [--scrape-up FILE]
       [--deploy-ms N] [--registry-dir DIR] [--loki-ms N] [--log-streams FILE]
       [--bearer-token TOKEN:USER[:GROUP,...]]...
--git-repos FILE (JSON, read once at start) is what the simulated network
holds: {URL: {"auth": null | {"username": U, "password": P} |
{"ssh_private_key_sha256": HEX}, "refs": {NAME: SHA}, "paths": [DIR]}};
without it no repository is reachable. --scrape-up FILE (JSON list of
"HOST:PORT", re-read whenever it changes; it may not exist yet) names the
scrape targets that answer Prometheus; without it none does.
--log-streams FILE (JSON list of label sets {NAME: VALUE}, re-read whenever
it changes; it may not exist yet) is what the hosts and pods send to Loki;
without it Loki holds no stream.
Listens on 127.0.0.1 only. Clients authenticate with a certificate of the
cluster's client CA (CN the user, O the groups) or with a bearer token
given by --bearer-token; writes need the group system:masters.
Its own state is DIR/k8s.json (under DIR/lock, like the Proxmox
simulator's): the cluster, nodes, node-password secrets ("secrets"), etcd
members ({name: {"voting_at"}}), the outcome of every K3s start ("starts":
{key: {"vm", "node", "error"}}), and the objects with their
resourceVersion counter, what each server's deploy controller has seen and
the helm releases ("objects", "rv", "deploy", "releases":
k8s_sim_objects.py); a test may list node names in "hold" to keep them
from becoming Ready until it takes them out. Every request is recorded
(sim_record.py: $K8S_SIM_RECORD_DIR/api.jsonl and the suite's
k8s-api.jsonl), with how it authenticated but never a credential, and
with etcd as it stood after it ({members, voting, up, quorate, cluster};
tests/sim/quorum_check.py).
"""
import argparse
import datetime
import fcntl
import hashlib
import http.server
import ipaddress
import json
import os
import re
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import k8s_sim_argocd as argocd
import k8s_sim_objects as objects
import k8s_sim_registry as registry
import sim_record

TLS = "/var/lib/rancher/k3s/server/tls/"
CA_FILES = ["server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key", "request-header-ca.crt",
            "request-header-ca.key", "etcd/server-ca.crt", "etcd/server-ca.key", "etcd/peer-ca.crt",
            "etcd/peer-ca.key", "service.key"]
CONFIG = "/etc/rancher/k3s/config.yaml"
CRITICAL = ("cluster-cidr", "service-cidr", "disable")
VERSION = "v1.33.5+k3s1"
PROXY = re.compile(r"/api/v1/namespaces/[^/]+/services/[^/]+/proxy(/|$)")


class Locked:
    """DIR/FILE (JSON) under DIR/lock, the Proxmox simulator's convention.
    One process takes it once at a time (flock on a new descriptor would
    wait for itself)."""

    def __init__(self, d, name, default, write=True):
        self.d, self.path, self.default, self.write = d, os.path.join(d, name), default, write

    def __enter__(self):
        self.fd = os.open(os.path.join(self.d, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            with open(self.path, encoding="utf-8") as f:
                self.s = json.load(f)
        except FileNotFoundError:
            self.s = self.default()
        return self.s

    def __exit__(self, et, e, tb):
        try:
            if et is None and self.write:
                tmp = self.path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(self.s, f)
                os.rename(tmp, self.path)
        finally:
            os.close(self.fd)
        return False


def new_state():
    return {"cluster": None, "starts": {}, "nodes": {}, "secrets": {}, "members": {}, "deleted": []}


class Fail(Exception):
    def __init__(self, code, reason, message):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def status_obj(code, reason, message, status="Failure"):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status, "message": message,
            "reason": reason, "code": code}


# ---- the model -------------------------------------------------------------------

def guests(pve):
    """Every guest the Proxmox simulator has started K3s in:
    [(key, vm-name, vm, node)] in the order of their K3s start."""
    out = []
    for node, d in (pve.get("guest", {}).get("vms") or {}).items():
        for vmid, vm in d.items():
            k = vm.get("k3s")
            if k:
                key = "%s/%s@%.3f" % (vmid, k["identity"], k["started"])
                out.append((key, vm["conf"].get("name", vmid), vm, node))
    return sorted(out, key=lambda g: g[2]["k3s"]["started"])


def running(vm):
    k = vm.get("k3s")
    smb = dict(x.split("=", 1) for x in vm["conf"].get("smbios1", "").split(",") if "=" in x)
    return bool(k and vm["running"] and k["identity"] == smb.get("uuid", ""))


def sha256(b):
    return hashlib.sha256(b.encode() if isinstance(b, str) else b).hexdigest()


def parse_token(t):
    m = re.fullmatch(r"K10([0-9a-f]{64})::([a-z]+):(.+)", t or "")
    return (m.group(1), m.group(2), m.group(3)) if m else (None, None, t)


def register(st, name, k, ip, key, now):
    st["secrets"]["kube-system/%s.node-password.k3s" % name] = {"identity": k["identity"], "created": now}
    st["nodes"][name] = {"role": k["role"], "ip": ip, "identity": k["identity"], "registered": now, "key": key}


def decide(st, key, name, vm, now, a):
    """The outcome of one K3s start: None (it registered) or K3s's error."""
    k = vm["k3s"]
    fs = vm.get("guestfs", {})
    try:
        cfg = yaml.safe_load(k["config"]) or {}
    except yaml.YAMLError as e:
        return "failed to load config file %s: %s" % (CONFIG, e)
    name = cfg.get("node-name") or name
    ip = cfg.get("node-ip", "")
    server = k["role"] == "server"
    c = st["cluster"]
    h, _, secret = parse_token(cfg.get("token"))
    if server and "server" not in cfg:
        if c is not None and c["init"] != name:
            return "a second server without 'server:' starts a cluster of its own"
        missing = [f for f in CA_FILES if TLS + f not in fs]
        if missing:
            return "custom CA: missing %s%s" % (TLS, missing[0])
        ca = fs[TLS + "server-ca.crt"]["data"]
        if h is not None and h != sha256(ca):
            return "token CA hash does not match the Cluster CA certificate hash"
        st["cluster"] = c = {"init": name, "secret": secret, "hash": sha256(ca), "ca": ca,
                             "ca_key": fs[TLS + "server-ca.key"]["data"],
                             "client_ca": fs[TLS + "client-ca.crt"]["data"],
                             "flags": {f: cfg.get(f) for f in CRITICAL}, "etcd": bool(cfg.get("cluster-init")),
                             "sans": [str(x) for x in cfg.get("tls-san") or []]}
        if c["etcd"]:
            st["members"][name] = {"voting_at": now}
    else:
        if c is None:
            return "failed to contact server %s: connection refused" % cfg.get("server")
        m = re.fullmatch(r"https://([^/:]+):6443/?", str(cfg.get("server", "")))
        reachable = set(c["sans"]) | {n["ip"] for n in st["nodes"].values() if n["role"] == "server"}
        if not m or m.group(1) not in reachable:
            return "failed to contact server %s" % cfg.get("server")
        if h is None:
            return "token is not in the full K10 form: the CA cannot be checked"
        if h != c["hash"]:
            return "token CA hash does not match the Cluster CA certificate hash"
        if secret != c["secret"]:
            return "failed to validate token: 401 Unauthorized" if server else \
                "failed to validate connection to cluster: 401 Unauthorized"
        if server:
            for f in CRITICAL:
                if cfg.get(f) != c["flags"][f]:
                    return "critical configuration value mismatch between servers: %s" % f
            if c["etcd"]:
                if any(mb["voting_at"] > now for mb in st["members"].values()):
                    return "etcdserver: too many learner members in cluster"
                st["members"][name] = {"voting_at": now + a.promote_ms / 1000.0}
    pw = st["secrets"].get("kube-system/%s.node-password.k3s" % name)
    if pw and pw["identity"] != k["identity"]:
        return ("Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may "
                "not match server node-passwd entry")
    register(st, name, k, ip, key, now)
    return None


def reconcile(st, pve, a):
    now = time.time()
    for key, vname, vm, node in guests(pve):
        if key in st["starts"] or now < vm["k3s"]["started"]:
            continue
        err = decide(st, key, vname, vm, vm["k3s"]["started"], a)
        st["starts"][key] = {"vm": vname, "node": node, "error": err}
    # a node deleted while its machine still runs K3s registers again
    live = {g[0]: g for g in guests(pve)}
    for key, o in st["starts"].items():
        g = live.get(key)
        if o["error"] is None and g and running(g[2]):
            cfg = yaml.safe_load(g[2]["k3s"]["config"]) or {}
            name = cfg.get("node-name") or g[1]
            if name not in st["nodes"]:
                pw = st["secrets"].get("kube-system/%s.node-password.k3s" % name)
                if not pw or pw["identity"] == g[2]["k3s"]["identity"]:
                    register(st, name, g[2]["k3s"], cfg.get("node-ip", ""), key, now)
    # K3s's own controllers (deploy, helm, and Kubernetes' job, namespace and
    # garbage collectors) run in its servers and need a writable datastore
    if st["cluster"] is not None and quorate(st, live, now):
        objects.run_controllers(world(st, live, a, now))
    return live


def world(st, live, a, now):
    """The object store, with the K3s servers that run now (started, start
    accepted, VM up), in the order they started."""
    servers = []
    for key, (_, _, vm, _) in live.items():
        o = st["starts"].get(key)
        if o and o["error"] is None and vm["k3s"]["role"] == "server" and running(vm):
            servers.append((vm["k3s"]["started"], key, vm))
    w = objects.World(st, a, now, [(k, vm) for _, k, vm in sorted(servers, key=lambda x: x[:2])],
                      getattr(a, "schema_store", None))
    # the nodes whose K3s runs (node-exporter's targets)
    w.node_ips = {n: st["nodes"][n]["ip"] for n in sorted(st["nodes"]) if node_up(st, live, n)}
    return w


def node_secret(st, now):
    """K3s's node-password secrets (kept in st["secrets"]) as the secrets API
    serves them: (ns, name) one or None, (ns, None) the list, delete=True
    removes one (True if it was there)."""
    def f(ns, name, delete=False):
        keys = sorted(k for k in st["secrets"] if ns is None or k.startswith(ns + "/"))
        if name is None:
            return [Handler.secret(k) for k in keys]
        k = "%s/%s" % (ns, name)
        if k not in st["secrets"]:
            return None if not delete else False
        if delete:
            del st["secrets"][k]
            st["deleted"].append({"kind": "Secret", "name": k, "time": now})
            return True
        return Handler.secret(k)
    return f


def node_up(st, live, name):
    n = st["nodes"][name]
    g = live.get(n["key"])
    return bool(g and running(g[2]) and g[2]["k3s"]["identity"] == n["identity"])


def quorate(st, live, now):
    voting = [m for m, mb in st["members"].items() if mb["voting_at"] <= now]
    if not voting:
        return True
    up = [m for m in voting if m in st["nodes"] and node_up(st, live, m)]
    return len(up) * 2 > len(voting)


def etcd_view(a):
    """etcd as it stands after a request, for the record: its members
    (learners too), the voters, the voters whose K3s runs, and whether they
    are a majority (tests/sim/quorum_check.py reads it)."""
    pve = snapshot(a)
    with Locked(a.pve_state, "k8s.json", new_state, write=False) as st:
        live = {g[0]: g for g in guests(pve)}
        now = time.time()
        voting = [m for m, mb in st["members"].items() if mb["voting_at"] <= now]
        up = [m for m in voting if m in st["nodes"] and node_up(st, live, m)]
        return {"members": len(st["members"]), "voting": len(voting), "up": len(up),
                "quorate": quorate(st, live, now), "cluster": st["cluster"] is not None}


def node_obj(st, live, name, now, a):
    n = st["nodes"][name]
    mb = st["members"].get(name)
    voting = mb is not None and mb["voting_at"] <= now
    server = n["role"] == "server"
    etcd = bool(st["cluster"] and st["cluster"]["etcd"])
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    if server:
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
        if voting:
            labels["node-role.kubernetes.io/etcd"] = "true"
    up = node_up(st, live, name)
    ready = (up and now >= n["registered"] + a.ready_ms / 1000.0 and (not server or not etcd or voting)
             and name not in a.never_ready and name not in st.get("hold", []))
    cond = {"type": "Ready", "status": "True" if ready else ("False" if up else "Unknown"),
            "reason": "KubeletReady" if ready else ("KubeletNotReady" if up else "NodeStatusUnknown"),
            "message": "kubelet is posting ready status" if ready else
            ("container runtime network not ready" if up else "Kubelet stopped posting node status.")}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "uid": sha256(n["identity"] + name)[:32],
                         "annotations": {"k3s.io/node-args": "[\"%s\"]" % n["role"]}},
            "spec": {},
            "status": {"conditions": [cond],
                       "addresses": [{"type": "InternalIP", "address": n["ip"]},
                                     {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": VERSION, "osImage": "Debian GNU/Linux 13 (trixie)"}}}


def snapshot(a):
    """The Proxmox simulator's state, parsed under its lock: a copy of its
    own, not written back."""
    with Locked(a.pve_state, "state.json", dict, write=False) as pve:
        return pve


# ---- TLS ----------------------------------------------------------------------------

class Tls:
    """The serving certificate, issued from the cluster's server CA the first
    time a connection needs it (and again if the CA or the names change)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.key_hash = None
        self.ctx = None
        self.dir = tempfile.mkdtemp(prefix="k8s-sim-")

    def context(self, c, ips):
        want = sha256(c["ca"] + ",".join(sorted(ips)))
        with self.lock:
            if self.key_hash == want:
                return self.ctx
            ca = x509.load_pem_x509_certificate(c["ca"].encode())
            ca_key = serialization.load_pem_private_key(c["ca_key"].encode(), None)
            key = ec.generate_private_key(ec.SECP256R1())
            names = [x509.DNSName(n) for n in ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                               "kubernetes.default.svc.cluster.local", "localhost")]
            for ip in sorted(ips):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(ip)))
                except ValueError:
                    names.append(x509.DNSName(ip))
            now = datetime.datetime.utcnow()
            cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3s")]))
                    .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(hours=1))
                    .not_valid_after(now + datetime.timedelta(days=365))
                    .add_extension(x509.SubjectAlternativeName(names), critical=False)
                    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                    .sign(ca_key, hashes.SHA256()))
            crt = os.path.join(self.dir, "serving.crt")
            kf = os.path.join(self.dir, "serving.key")
            with open(crt, "wb") as f:
                f.write(cert.public_bytes(serialization.Encoding.PEM))
            with open(kf, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, kf)
            ctx.load_verify_locations(cadata=c["client_ca"])
            ctx.verify_mode = ssl.CERT_OPTIONAL  # /cacerts needs none; the rest is checked per request
            self.ctx, self.key_hash = ctx, want
            return ctx


# ---- HTTP ----------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-sim"

    def log_message(self, fmt, *args):
        pass

    def send(self, code, obj, ctype="application/json", headers=()):
        body = obj if isinstance(obj, bytes) else (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer: the headers of the GET, no body
            self.wfile.write(body)
        return code

    def identity(self):
        """(user, groups, how): a client certificate of the cluster's client
        CA (CN, O) first, as kube-apiserver's x509 authenticator; else a
        bearer token given by --bearer-token. None for the user: 401."""
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            cert = None
        if cert:
            cn = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            groups = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationName"]
            return (cn[0] if cn else ""), groups, "x509"
        auth = self.headers.get("Authorization")
        if auth is not None:
            m = re.fullmatch(r"[Bb]earer +(\S+)\s*", auth)
            known = self.server.tokens.get(m.group(1)) if m else None
            if known is None:
                return None, [], "bearer"  # an unknown or malformed token: 401
            return known[0], known[1] + ["system:authenticated"], "bearer"
        return None, [], "none"

    def handle_one(self, method):
        a = self.server.a
        time.sleep(a.latency_ms / 1000.0)
        url = urllib.parse.urlsplit(self.path)
        user, groups, how = self.identity()
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        code = 500
        try:
            code = self.route(method, url, user, groups, body)
        except Fail as f:
            code = self.send(f.code, status_obj(f.code, f.reason, f.message))
        except objects.ApiError as e:
            code = self.send(e.code, e.status())
        except Exception as e:  # a bug of the simulator: said, not a dropped connection
            traceback.print_exc(file=sys.stderr)
            code = self.send(500, status_obj(500, "InternalError", "k8s_sim: internal error: %r" % e))
        finally:
            # never the Authorization header: only how the request authenticated
            self.server.rec.record({"method": method, "path": url.path, "query": url.query, "status": code,
                                    "user": user, "groups": groups, "auth": how, "time": time.time(),
                                    "body": body.decode("utf-8", "replace") if method not in ("GET", "HEAD")
                                    else None,
                                    "etcd": etcd_view(a)})

    def route(self, method, url, user, groups, body):
        a = self.server.a
        path = url.path
        pve = snapshot(a)
        with Locked(a.pve_state, "k8s.json", new_state) as st:
            live = reconcile(st, pve, a)
            now = time.time()
            c = st["cluster"]
            if path == "/cacerts":
                return self.send(200, c["ca"].encode(), "text/plain")
            if user is None:
                raise Fail(401, "Unauthorized", "Unauthorized")
            if not quorate(st, live, now) or self.electing(st, now):
                raise Fail(503, "ServiceUnavailable", "etcdserver: no leader")
            if method not in ("GET", "HEAD") and "system:masters" not in groups:
                raise Fail(403, "Forbidden", "User \"%s\" cannot %s resource at %s" % (user, method.lower(), path))
            if path in ("/readyz", "/livez", "/healthz"):
                return self.send(200, b"ok", "text/plain")
            if path == "/version":
                return self.send(200, {"major": "1", "minor": "33", "gitVersion": VERSION,
                                       "platform": "linux/amd64"})
            if path == "/api/v1/nodes" and method == "GET":
                return self.send(200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                                       "items": [node_obj(st, live, x, now, a) for x in sorted(st["nodes"])]})
            m = re.fullmatch(r"/api/v1/nodes/([a-z0-9.-]+)", path)
            if m:
                name = m.group(1)
                if name not in st["nodes"]:
                    raise Fail(404, "NotFound", "nodes \"%s\" not found" % name)
                if method == "GET":
                    return self.send(200, node_obj(st, live, name, now, a))
                if method == "DELETE":
                    del st["nodes"][name]
                    st["members"].pop(name, None)  # K3s's etcd controller removes a deleted server's member
                    st["deleted"].append({"kind": "Node", "name": name, "time": now})
                    return self.send(200, status_obj(200, "", "", "Success"))
            if path.startswith("/api/v1/nodes"):
                raise Fail(404, "NotFound", "the server could not find the requested resource")
            if method == "HEAD" and not PROXY.match(path):
                raise Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                           "resource")  # HEAD goes to the service proxy only
            if path in ("/api", "/apis") or path.startswith(("/api/", "/apis/")):
                w = world(st, live, a, now)
                w.request_headers, w.reply_headers = self.headers, []  # the service proxy's
                w.query_all = urllib.parse.parse_qs(url.query, keep_blank_values=True)  # Loki's match[]...
                query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
                ctype = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
                code, out, otype = objects.api(w, method, path, query, body, ctype, self.headers.get("User-Agent"),
                                               node_secret(st, now))
                registry.after_request(w)
                warn = [("Warning", '299 - %s' % json.dumps(x)) for x in w.warnings]
                return self.send(code, out, otype, warn + w.reply_headers)
            raise Fail(404, "NotFound", "the server could not find the requested resource")

    @staticmethod
    def secret(k):
        ns, name = k.split("/", 1)
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": ns}, "data": {"hash": "c2ltdWxhdGVk"}}

    def electing(self, st, now):
        ms = self.server.a.elect_503_ms / 1000.0
        return ms > 0 and any(0 <= now - mb["voting_at"] < ms for mb in st["members"].values())

    def do_GET(self):
        self.handle_one("GET")

    def do_HEAD(self):
        self.handle_one("HEAD")

    def do_DELETE(self):
        self.handle_one("DELETE")

    def do_POST(self):
        self.handle_one("POST")

    def do_PUT(self):
        self.handle_one("PUT")

    def do_PATCH(self):
        self.handle_one("PATCH")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def process_request_thread(self, request, client_address):
        # Nothing behind the address until a server runs: the connection
        # closes at once. Then TLS with the cluster's CA.
        try:
            pve = snapshot(self.a)
            with Locked(self.a.pve_state, "k8s.json", new_state) as st:
                live = reconcile(st, pve, self.a)
                c = st["cluster"]
                serving = [x for x, n in st["nodes"].items() if n["role"] == "server" and node_up(st, live, x)]
                ips = (set(c["sans"]) | {st["nodes"][x]["ip"] for x in serving}) if c else set()
            if c is None or not serving:
                request.close()
                return
            ctx = self.tls.context(c, ips | {"127.0.0.1"})
            request = ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            try:
                request.close()
            except OSError:
                pass
            return
        super().process_request_thread(request, client_address)


def registry_ticker(a):
    """DIR/ready follows the registry's Deployment between requests too:
    every 200 ms, from the state as the last request left it (read only;
    k8s_sim_registry.publish)."""
    while True:
        try:
            pve = snapshot(a)
            with Locked(a.pve_state, "k8s.json", new_state, write=False) as st:
                if st["cluster"] is not None:
                    registry.publish(world(st, {g[0]: g for g in guests(pve)}, a, time.time()))
        except Exception:  # keep ticking; said in the log
            traceback.print_exc(file=sys.stderr)
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pve-state", required=True, help="the Proxmox simulator's state directory")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--promote-ms", type=int, default=1500, help="an etcd learner becomes a voter after this")
    ap.add_argument("--ready-ms", type=int, default=1000, help="a registered node is Ready after this")
    ap.add_argument("--elect-503-ms", type=int, default=0, help="503 for this long after a member's promotion")
    ap.add_argument("--never-ready", action="append", default=[], help="this node never becomes Ready")
    ap.add_argument("--helm-ms", type=int, default=500, help="one attempt of a helm job takes this long")
    ap.add_argument("--argocd-ms", type=int, default=300,
                    help="Argo CD reports on an Application this long after its spec (or what else it follows) "
                    "changed")
    ap.add_argument("--git-repos", metavar="FILE",
                    help="the Git repositories the simulated network reaches (JSON: {URL: {auth, refs, paths}}); "
                    "without it, none")
    ap.add_argument("--prometheus-ms", type=int, default=300,
                    help="the monitoring stack's Prometheus (and Grafana) pod is up this long after it could start")
    ap.add_argument("--deploy-ms", type=int, default=1500,
                    help="a client's Deployment is available this long after every claim it mounts exists")
    ap.add_argument("--registry-dir", metavar="DIR",
                    help="shared with the Proxmox simulator: DIR/ready while Deployment registry/registry is "
                    "available; the registry holds what DIR/pushed.json lists")
    ap.add_argument("--loki-ms", type=int, default=300,
                    help="the log store's Loki is ready this long after its pod started")
    ap.add_argument("--log-streams", metavar="FILE",
                    help="the log streams sent to Loki (JSON list of label sets, re-read when it changes); "
                    "without it, none")
    ap.add_argument("--scrape-up", metavar="FILE",
                    help='the scrape targets that answer (JSON list of "HOST:PORT", re-read when it changes); '
                    "without it, none")
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("SHARED", os.path.join(here, "..", "..", "..", "shared"))
    ap.add_argument("--schemas", default=os.path.join(shared, "reference", "schemas"),
                    help="the official CRD schemas (default: $SHARED/reference/schemas, SHARED=../shared)")
    ap.add_argument("--traefik-chart", choices=sorted(objects.TRAEFIK_CHARTS), default=objects.TRAEFIK_DEFAULT,
                    help="the Traefik chart K3s packages (default %(default)s, K3s 1.33's); its values are checked "
                    "against SCHEMAS/traefik-helm-chart-vVERSION/values.schema.json")
    ap.add_argument("--bearer-token", action="append", default=[], metavar="TOKEN:USER[:GROUP,...]",
                    help="a bearer token the API accepts, for USER (no ':') in these groups")
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.schemas, "helm.cattle.io", "helmchart_v1.json")):
        ap.error("no HelmChart schema in %s (--schemas)" % a.schemas)
    a.schema_store = objects.Schemas(a.schemas)
    if a.argocd_ms < 0:
        ap.error("--argocd-ms: not a duration")
    if a.prometheus_ms < 0:
        ap.error("--prometheus-ms: not a duration")
    if a.deploy_ms < 0:
        ap.error("--deploy-ms: not a duration")
    if a.registry_dir and not os.path.isdir(a.registry_dir):
        ap.error("--registry-dir %s: not a directory" % a.registry_dir)
    if a.loki_ms < 0:
        ap.error("--loki-ms: not a duration")
    if a.log_streams:
        try:
            objects.logs.load_log_streams(a.log_streams)
        except (OSError, ValueError) as e:
            ap.error("--log-streams %s: %s" % (a.log_streams, e))
    if a.scrape_up:
        try:
            objects.monitoring.load_scrape_up(a.scrape_up)
        except (OSError, ValueError) as e:
            ap.error("--scrape-up %s: %s" % (a.scrape_up, e))
    repos_file, a.git_repos = a.git_repos, {}
    if repos_file:
        try:
            a.git_repos = argocd.load_git_repos(repos_file)
        except (OSError, ValueError) as e:
            ap.error("--git-repos %s: %s" % (repos_file, e))
    if a.schema_store.traefik_values(a.traefik_chart) is None:
        ap.error("no traefik-helm-chart-v%s/values.schema.json in %s (--schemas, --traefik-chart)"
                 % (a.traefik_chart, a.schemas))
    tokens = {}
    for t in a.bearer_token:
        parts = t.split(":", 2)  # USER has no ':'; GROUPs may (system:masters)
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            ap.error("--bearer-token %s: not TOKEN:USER[:GROUP,...]" % t.split(":")[0][:4])
        tokens[parts[0]] = (parts[1], [g for g in (parts[2].split(",") if len(parts) == 3 else []) if g])
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.a = a
    srv.tokens = tokens
    srv.tls = Tls()
    srv.rec = sim_record.Recorder("k8s", "api", local_dir=os.environ.get("K8S_SIM_RECORD_DIR"))
    if a.registry_dir:
        threading.Thread(target=registry_ticker, args=(a,), daemon=True).start()
    print("k8s_sim: listening on https://127.0.0.1:%d" % a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
