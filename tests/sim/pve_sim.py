#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pve_sim.py — a Proxmox VE API simulator for tests (a test double, not a
product). One process per simulated node; the processes of one simulated
cluster share their state through a directory (JSON file + flock).

  pve_sim.py --state DIR --node NAME --ip IP --port PORT [--schema FILE]
             [--pve-version 9.1.2] [--password-file F] [--latency-ms N]
             [--task-ms N] [--restart-ms N] [--time-offset S]
             [--storage-preset P] [--local-gib N] [--lvm-gib N]
             [--guest-boot-ms N] [--copy-mb-per-s R] [--lock-wait-ms N]

What it models (docs/pve.md, "The simulator"):
  * HTTPS on 127.0.0.1 with its own self-signed certificate (made with the
    openssl CLI); a join gives the node a new certificate, an uploaded
    custom certificate replaces it; the served certificate is swapped live.
  * Every request is validated against the official API schema
    (pve_schema_check.Schema): 501 for unknown path/method, 400
    "Parameter verification failed." with {"data":null,"errors":{...}}.
  * Users/passwords, tickets (signed with the node's auth key; a join
    replaces the key, so old tickets stop working), CSRF on writes, API
    tokens (refused where only root@pam may call: 403).
  * Cluster create/join/delnode/status/nodes/join-info with quorum,
    asynchronous tasks (UPIDs, status, log) that take --task-ms and can fail.
  * Fault injection from DIR/faults.json (re-read on every request):
      [{"node": "pve2", "method": "POST", "path": "^/cluster/config/join$",
        "action": "error|reset|timeout|latency|task-fail|task-slow",
        "when": "before|after", "status": 503, "delay_ms": 2000,
        "message": "...", "skip": 0, "times": 1}, ...]
    "skip" lets the first N matching requests through, "times" (-1 = always)
    bounds how often it fires; counters are shared by all processes.
  * Storage, uploads, QEMU guests, their tasks, locks, guest agent and
    cloud-init seeds: pve_sim_guests.py (docs/pve.md, "The guest model");
    backup jobs, vzdump and running a job: pve_sim_jobs.py; restores
    (qmrestore): pve_sim_guests.py.
  * --fresh is a reinstalled node: a new certificate and key, in no
    cluster, empty local disks. Had it been a cluster member, the cluster
    keeps its VMs' configurations (pmxcfs /etc/pve/nodes/NODE, which
    `pvecm delnode` leaves; the cluster's "nodedirs"), each stopped and
    marked "lost_disks" (pve_sim_guests.init_node).
  * Records every request as one JSON line {node, method, path, params,
    redacted, status, auth, time, login, quorum} (quorum: the node's
    cluster after the request, {cluster, members, online, quorate}, which
    tests/sim/quorum_check.py reads) into $PVE_SIM_RECORD_DIR/NODE.jsonl
    and, with SIM_RECORD_DIR set, into
    $SIM_RECORD_DIR/TESTDIR/pve-NODE.jsonl (secrets redacted; sim_record.py).
"""
import argparse
import base64
import fcntl
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pve_schema_check  # noqa: E402
import pve_sim_guests  # noqa: E402
import pve_sim_jobs  # noqa: E402
import sim_record  # noqa: E402

TICKET_LIFETIME = 7200
SECRET_PARAMS = ("password", "key", "value", "new-password", "confirmation-password", "input-data")


class Fail(Exception):
    """An API error: HTTP status, reason phrase, optional errors object."""

    def __init__(self, status, reason, errors=None):
        super().__init__(reason)
        self.status, self.reason, self.errors = status, reason, errors


pve_sim_guests.bind(Fail)
pve_sim_jobs.register()

# ---- shared state ---------------------------------------------------------


class State:
    """DIR/state.json under DIR/lock (flock): nodes, clusters, users, tasks."""

    def __init__(self, d):
        self.dir = d
        self.path = os.path.join(d, "state.json")
        self.lockpath = os.path.join(d, "lock")
        self.tlock = threading.Lock()
        self.seen = None  # peek's cache: (text, state)

    def beat(self, node):
        """NODE's heartbeat: DIR/NODE.alive touched (pve_sim_guests.node_alive).
        Not in the state: three nodes rewriting it every tick cost more CPU
        than the rest of a simulated run."""
        path = os.path.join(self.dir, node + ".alive")
        try:
            os.utime(path)
        except FileNotFoundError:
            open(path, "a").close()

    def peek(self):
        """The state as the file now stands, without the locks and not to be
        changed: writers rename a whole new file over it, so an open sees one
        version or the next; parsed again only when its text is another (an
        inode, size and coarse mtime can all repeat across two writes)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        if self.seen is None or self.seen[0] != text:
            self.seen = (text, json.loads(text))
        return self.seen[1]

    def __enter__(self):
        self.tlock.acquire()
        self.fd = os.open(self.lockpath, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            with open(self.path, encoding="utf-8") as f:
                self.text = f.read()
            self.s = json.loads(self.text)
        except FileNotFoundError:
            self.text = None
            self.s = {"nodes": {}, "clusters": {}, "users": {}, "tokens": {}, "tasks": {},
                      "fault_hits": {}, "next_cluster": 1}
        return self.s

    def read(self):
        """The state, read under the locks and not written back."""
        with self.tlock:
            fd = os.open(self.lockpath, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with open(self.path, encoding="utf-8") as f:
                    return json.load(f)
            finally:
                os.close(fd)

    def __exit__(self, exc_type, exc, tb):
        try:
            text = json.dumps(self.s) if exc_type is None else None
            if text is not None and text != self.text:  # unchanged: peek's caches stay good
                tmp = self.path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    f.write(text)
                os.rename(tmp, self.path)
        finally:
            os.close(self.fd)
            self.tlock.release()
        return False


def make_cert(d, node, ip, gen):
    """A self-signed certificate as pveproxy's first one; returns (crt, key, fp)."""
    crt = os.path.join(d, "certs", "%s-%d.pem" % (node, gen))
    key = os.path.join(d, "certs", "%s-%d.key" % (node, gen))
    os.makedirs(os.path.dirname(crt), exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "30",
                    "-subj", "/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=%s" % node,
                    "-addext", "subjectAltName=DNS:%s,IP:%s,IP:127.0.0.1" % (node, ip)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key, pem_fp(open(crt, encoding="ascii").read())


def pem_fp(pem):
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    der = base64.b64decode("".join(m.group(1).split()))
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


# ---- the node process -------------------------------------------------------

class Sim:
    def __init__(self, a):
        self.a = a
        self.node = a.node
        self.state = State(a.state)
        self.schema = pve_schema_check.Schema(a.schema)
        self.csrf_secret = b"csrf-" + a.node.encode()
        self.recorder = sim_record.Recorder("pve", a.node, local_dir=os.environ.get("PVE_SIM_RECORD_DIR"))
        self.restart_until = 0.0
        self.conn_gen = 0
        with self.state as s:
            n = s["nodes"].get(self.node)
            was_member = n.get("cluster") if n else None  # its cluster's ID, if it was in one
            if n is None or a.fresh:
                crt, key, fp = make_cert(a.state, self.node, a.ip, int(time.time() * 1000))
                n = {"ip": a.ip, "port": a.port, "cluster": None, "authkey": secrets.token_hex(16),
                     "cert": crt, "key": key, "fp": fp, "custom": False, "cert_gen": 1,
                     "guests": a.guests, "version": a.pve_version, "time_offset": a.time_offset}
                s["nodes"][self.node] = n
            n.update({"port": a.port, "version": a.pve_version,
                      "time_offset": a.time_offset, "guests": a.guests})
            pve_sim_guests.init_node(self, s, a, was_member)
            if "root@pam" not in s["users"] or a.password_file:
                pw = open(a.password_file, encoding="utf-8").read().rstrip("\n") if a.password_file else "secret"
                s["users"]["root@pam"] = {"password": pw}
            self.cert_gen = n["cert_gen"]
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(n["cert"], n["key"])
        self.state.beat(self.node)

    def publish_now(self):
        """Called once the port is bound: tests wait for the .fp file."""
        with self.state as s:
            self.publish(s["nodes"][self.node])

    def publish(self, n):
        """What the node serves, for tests: DIR/NODE.pem (as /etc/pve/local
        would hold it) and DIR/NODE.fp."""
        d = self.state.dir
        with open(n["cert"], encoding="ascii") as f:
            pem = f.read()
        for name, text in (("%s.pem" % self.node, pem), ("%s.fp" % self.node, n["fp"] + "\n")):
            with open(os.path.join(d, name + ".tmp"), "w", encoding="ascii") as f:
                f.write(text)
            os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))

    # -- background: heartbeat, finishing tasks, certificate swaps --
    def ticker(self):
        while True:
            try:
                self.tick()
            except Exception as e:  # keep ticking; print for the test log
                print("pve_sim[%s]: tick: %r" % (self.node, e), file=sys.stderr, flush=True)
            time.sleep(0.02)

    def tick(self):
        """The heartbeat; then, under the locks only if there is something to
        write, the tasks of ours that are due and a new certificate."""
        self.state.beat(self.node)
        s = self.state.peek()
        me = s and s["nodes"].get(self.node)
        if me and me["cert_gen"] == self.cert_gen and not self.due(s):
            return
        with self.state as s:
            me = s["nodes"][self.node]
            for upid, t in self.due(s):
                self.finish_task(s, upid, t)
            if me["cert_gen"] != self.cert_gen:
                self.ctx.load_cert_chain(me["cert"], me["key"])
                self.cert_gen = me["cert_gen"]
                self.publish(me)
                self.restart()

    def due(self, s):
        """Our running tasks whose time is up: (UPID, task) pairs."""
        now = time.time()
        return [(upid, t) for upid, t in s["tasks"].items()
                if t["node"] == self.node and t["status"] == "running" and now >= t["end"]]

    def restart(self):
        """pveproxy restarts: connections drop, new ones fail for a moment."""
        self.restart_until = time.time() + self.a.restart_ms / 1000.0
        self.conn_gen += 1

    # -- tasks --
    def new_task(self, s, node, ttype, tid, user, action, faults):
        now = time.time()
        upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, os.getpid(), int(now * 100) & 0xFFFFFFFF,
                                                     int(now), ttype, tid, user)
        while upid in s["tasks"]:
            now += 1
            upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, os.getpid(), int(now * 100) & 0xFFFFFFFF,
                                                         int(now), ttype, tid, user)
        dur = self.a.task_ms / 1000.0
        fail = None
        for f in faults:
            if f["action"] == "task-slow":
                dur += f.get("delay_ms", 1000) / 1000.0
            elif f["action"] == "task-fail":
                fail = f.get("message", "simulated task failure")
        s["tasks"][upid] = {"node": node, "type": ttype, "id": tid, "user": user, "start": now,
                            "end": now + dur, "status": "running", "exitstatus": None,
                            "log": [], "action": action, "fail": fail}
        return upid

    def finish_task(self, s, upid, t):
        if t["action"].get("op") == "guest":
            return pve_sim_guests.finish_task(self, s, upid, t)
        log = t["log"]
        try:
            if t["fail"]:
                log.append("simulated failure")
                raise Fail(500, t["fail"])
            act = t["action"]
            if act["op"] == "create":
                self.do_create(s, act, log)
            elif act["op"] == "join":
                self.do_join(s, act, log)
            t["exitstatus"] = "OK"
            log.append("TASK OK")
        except Fail as e:
            t["exitstatus"] = e.reason
            log.append("TASK ERROR: %s" % e.reason)
        t["status"] = "stopped"

    def do_create(self, s, act, log):
        me = s["nodes"][self.node]
        if me["cluster"] is not None:
            raise Fail(500, "cluster config '/etc/pve/corosync.conf' already exists")
        cid = str(s["next_cluster"])
        s["next_cluster"] += 1
        s["clusters"][cid] = {"name": act["clustername"], "authkey": me["authkey"], "version": 1,
                              "members": {self.node: {"nodeid": 1, "ring0_addr": act["link0"]}},
                              "joining": None, "nodedirs": [self.node]}
        me["cluster"] = cid
        log.extend(["Writing corosync config to /etc/pve/corosync.conf",
                    "Restart corosync and cluster filesystem"])

    def do_join(self, s, act, log):
        me = s["nodes"][self.node]
        errs = []
        if me["cluster"] is not None:
            errs += ["authentication key '/etc/corosync/authkey' already exists",
                     "cluster config '/etc/pve/corosync.conf' already exists"]
        if me["guests"] or pve_sim_guests.has_guests(s, self.node):
            errs.append("this host already contains virtual guests")
        if errs:
            log.append("detected the following error(s):")
            log.extend("* " + e for e in errs)
            raise Fail(500, "Check if node may join a cluster failed!")
        host = act["hostname"]
        peer = next((k for k, v in s["nodes"].items() if host in (k, v["ip"]) and k != self.node), None)
        log.append("Establishing API connection with host '%s'" % host)
        if peer is None or not self.online(s, peer):
            raise Fail(500, "500 Can't connect to %s:8006 (Connection refused)" % host)
        p = s["nodes"][peer]
        if act["fingerprint"].upper() != p["fp"]:
            raise Fail(500, "500 Can't connect to %s:8006 (fingerprint mismatch)" % host)
        if act["password"] != s["users"]["root@pam"]["password"]:
            raise Fail(500, "401 authentication failure")
        log.extend(["Login succeeded.", "check cluster join API version", "Request addition of this node"])
        cid = p["cluster"]
        if cid is None:
            raise Fail(500, "An error occurred on the cluster node: corosync config does not exist")
        c = s["clusters"][cid]
        if not self.quorate(s, cid):
            raise Fail(500, "An error occurred on the cluster node: cluster not ready - no quorum?")
        if self.node in c["members"]:
            log.append("An error occurred on the cluster node: can't add existing node '%s'" % self.node)
            raise Fail(500, "Cluster join aborted!")
        for k, m in c["members"].items():
            if m["ring0_addr"] == act["link0"]:
                raise Fail(500, "corosync: address '%s' already used on link ring0_addr by node '%s'"
                           % (act["link0"], k))
        used = {m["nodeid"] for m in c["members"].values()}
        nodeid = next(i for i in range(1, 1000) if i not in used)
        c["members"][self.node] = {"nodeid": nodeid, "ring0_addr": act["link0"]}
        c["version"] += 1
        if self.node not in c.setdefault("nodedirs", []):  # /etc/pve/nodes/NODE, kept by delnode
            c["nodedirs"].append(self.node)
        log.extend(["Join request OK, finishing setup locally", "stopping pve-cluster service",
                    "waiting for quorum...OK",
                    "generated new node certificate, restart pveproxy and pvedaemon services",
                    "successfully added node '%s' to cluster." % self.node])
        # /etc/pve is replaced: the cluster's auth key (old tickets die), a new
        # node certificate, no custom certificate.
        me["cluster"] = cid
        me["authkey"] = c["authkey"]
        crt, key, fp = make_cert(self.state.dir, self.node, me["ip"], int(time.time() * 1000))
        me.update({"cert": crt, "key": key, "fp": fp, "custom": False, "cert_gen": me["cert_gen"] + 1})

    # -- cluster views --
    def online(self, s, name):
        return pve_sim_guests.node_alive(self.state.dir, s, name)

    def quorum_view(self):
        """The cluster as this node sees it after a request, for the record
        (tests/sim/quorum_check.py): its members, those online, quorate."""
        s = self.state.read()
        cid = s["nodes"][self.node]["cluster"]
        if cid is None:
            return {"cluster": None, "members": 0, "online": 0, "quorate": None}
        c = s["clusters"][cid]
        up = sum(1 for k in c["members"] if self.online(s, k) and s["nodes"][k]["cluster"] == cid)
        return {"cluster": c["name"], "members": len(c["members"]), "online": up, "quorate": up * 2 > len(c["members"])}

    def quorate(self, s, cid):
        c = s["clusters"][cid]
        up = sum(1 for k in c["members"] if self.online(s, k) and s["nodes"][k]["cluster"] == cid)
        return up * 2 > len(c["members"])

    # -- authentication --
    def authkey(self, s, node=None):
        n = s["nodes"][node or self.node]
        return n["authkey"]

    def make_ticket(self, s, user):
        ts = "%08X" % int(time.time())
        sig = hmac.new(self.authkey(s).encode(), ("%s:%s" % (user, ts)).encode(), "sha256").digest()
        return "PVE:%s:%s::%s" % (user, ts, base64.b64encode(sig).decode())

    def check_ticket(self, s, ticket):
        m = re.fullmatch(r"PVE:([^:]+):([0-9A-F]{8})::(.+)", ticket or "")
        if not m:
            return None
        sig = hmac.new(self.authkey(s).encode(), ("%s:%s" % (m.group(1), m.group(2))).encode(), "sha256").digest()
        age = time.time() - int(m.group(2), 16)
        if not hmac.compare_digest(base64.b64encode(sig).decode(), m.group(3)) or not -300 < age < TICKET_LIFETIME:
            return None
        return m.group(1)

    def make_csrf(self, user):
        ts = "%08X" % int(time.time())
        sig = hmac.new(self.csrf_secret, ("%s:%s" % (ts, user)).encode(), "sha256").hexdigest()[:43]
        return "%s:%s" % (ts, sig)

    def check_csrf(self, user, token):
        m = re.fullmatch(r"([0-9A-F]{8}):(.+)", token or "")
        if not m:
            return False
        sig = hmac.new(self.csrf_secret, ("%s:%s" % (m.group(1), user)).encode(), "sha256").hexdigest()[:43]
        return hmac.compare_digest(sig, m.group(2)) and time.time() - int(m.group(1), 16) < TICKET_LIFETIME


# ---- request handling -------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sim = None  # set in main()

    def log_message(self, fmt, *args):  # quiet; the record file is the log
        pass

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_DELETE(self):
        self.handle_api("DELETE")

    # -- plumbing --
    def reply(self, status, reason, data=None, errors=None, extra=None):
        body = {"data": data}
        if errors:
            body["errors"] = errors
        if extra:
            body.update(extra)
        raw = json.dumps(body).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.last_status = status

    def abort_connection(self):
        """A TCP reset: SO_LINGER 0, then close."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def read_params(self, method, query):
        params = {}

        def add(k, v):
            # AnyEvent.pm decode_urlencoded: a repeated key's values are
            # joined with NUL; an array parameter is split on it again
            params[k] = params[k] + "\0" + v if k in params else v
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            add(k, v)
        relpath = pve_schema_check.decode_path(urllib.parse.urlsplit(self.path).path)
        upload = pve_sim_guests.read_upload(self, method, relpath, params)  # streamed, any size
        if upload is not None:
            return upload
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            raise Fail(413, "request too large")
        if n:
            body = self.rfile.read(n).decode("utf-8", "replace")
            if method not in ("POST", "PUT"):
                raise Fail(501, "Unexpected content for method '%s'" % method)
            for k, v in urllib.parse.parse_qsl(body, keep_blank_values=True):
                add(k, v)
        return params

    def record(self, method, rawpath, params, status, auth):
        red = {k: ("<redacted>" if k in SECRET_PARAMS else v) for k, v in params.items()}
        self.sim.recorder.record({"node": self.sim.node, "method": method, "path": rawpath, "params": red,
                                  "redacted": sorted(k for k in params if k in SECRET_PARAMS),
                                  "status": status, "auth": auth, "time": time.time(),
                                  "login": getattr(self, "login_kind", None), "quorum": self.sim.quorum_view()})
        self.login_kind = None

    def matching_faults(self, method, path):
        try:
            with open(os.path.join(self.sim.state.dir, "faults.json"), encoding="utf-8") as f:
                rules = json.load(f)
        except FileNotFoundError:
            return []
        hits = []
        with self.sim.state as s:
            for i, r in enumerate(rules):
                if r.get("node") not in (None, self.sim.node):
                    continue
                if r.get("method") not in (None, method):
                    continue
                if r.get("path") and not re.search(r["path"], path):
                    continue
                key = str(i)
                seen = s["fault_hits"].get(key, 0)
                s["fault_hits"][key] = seen + 1
                times = r.get("times", -1)
                skip = r.get("skip", 0)
                if seen < skip or (times >= 0 and seen - skip >= times):
                    continue
                hits.append(r)
        return hits

    def handle_api(self, method):
        sim = self.sim
        self.last_status = 0
        if getattr(self, "gen", sim.conn_gen) != sim.conn_gen or time.time() < sim.restart_until:
            self.abort_connection()  # the API is restarting
            return
        self.gen = sim.conn_gen
        split = urllib.parse.urlsplit(self.path)
        rawpath = split.path
        auth_kind = "none"
        params = {}
        try:
            params = self.read_params(method, split.query)
        except Fail as e:
            self.reply(e.status, e.reason)
            return
        path = pve_schema_check.decode_path(rawpath)
        if self.sim.a.latency_ms:
            time.sleep(self.sim.a.latency_ms / 1000.0)
        faults = self.matching_faults(method, path)
        for f in faults:
            if f["action"] == "latency":
                time.sleep(f.get("delay_ms", 100) / 1000.0)
        before = [f for f in faults if f.get("when", "before") == "before"]
        after = [f for f in faults if f.get("when") == "after"]
        task_faults = [f for f in faults if f["action"] in ("task-fail", "task-slow")]
        try:
            if not rawpath.startswith("/api2/json/") and rawpath != "/api2/json":
                raise Fail(501, "no such uri")
            auth_kind = self.authenticate(method, path)
            if self.inject(before):
                return
            st, reason, errors, info = sim.schema.validate(method, path, params)
            if st != 200:
                raise Fail(st, reason, errors)
            self.authorize(info, auth_kind)
            data, extra = self.dispatch(method, path, params, task_faults)
            if self.inject(after):
                return
            self.reply(200, "OK", data, extra=extra)
        except Fail as e:
            self.reply(e.status, e.reason, errors=e.errors)
        finally:
            self.record(method, rawpath, params, self.last_status, auth_kind)
            pve_sim_guests.request_done(self)

    def inject(self, faults):
        for f in faults:
            a = f["action"]
            if a == "error":
                self.reply(f.get("status", 500), f.get("message", "simulated server error"))
                return True
            if a == "reset":
                self.abort_connection()
                return True
            if a == "timeout":
                time.sleep(f.get("delay_ms", 5000) / 1000.0)
                self.abort_connection()
                return True
        return False

    def authenticate(self, method, path):
        """Returns "ticket:USER", "token:USER!ID" or "none"; raises 401."""
        sim = self.sim
        self.user = None
        cookie = self.headers.get("Cookie") or ""
        m = re.search(r"(?:^|;\s*)PVEAuthCookie=([^;]+)", cookie)
        authz = self.headers.get("Authorization") or ""
        if path == "/access/ticket":
            return "none"
        if m:
            user = sim.check_ticket(sim.state.peek(), urllib.parse.unquote(m.group(1)))
            if user is None:
                raise Fail(401, "invalid PVE ticket")
            if method != "GET" and not pve_sim_guests.is_upload(method, path) and \
                    not sim.check_csrf(user, self.headers.get("CSRFPreventionToken")):
                raise Fail(401, "Permission denied - invalid csrf token")
            self.user = user
            return "ticket:" + user
        t = re.fullmatch(r"PVEAPIToken=([^!=\s]+@[^!=\s]+)!([^=\s]+)=(\S+)", authz.strip())
        if t:
            full = "%s!%s" % (t.group(1), t.group(2))
            tok = sim.state.peek()["tokens"].get(full)
            if not tok or not hmac.compare_digest(tok["secret"], t.group(3)):
                raise Fail(401, "invalid token value!")
            self.user = full
            return "token:" + full
        raise Fail(401, "No ticket")

    def authorize(self, info, auth_kind):
        perms = info.get("permissions")
        if auth_kind.startswith("token:") and not info.get("allowtoken", 1):
            raise Fail(403, "Permission check failed (API tokens are not allowed)")
        if perms is None and self.user != "root@pam":
            raise Fail(403, "Permission check failed (user != root@pam)")

    # -- the API ---------------------------------------------------------------
    def dispatch(self, method, path, p, task_faults):
        sim = self.sim
        res = pve_sim_guests.dispatch(self, method, path, p, task_faults)
        if res is not None:
            return res
        segs = path.strip("/").split("/")
        with sim.state as s:
            if segs[0] == "nodes" and len(segs) > 1 and segs[1] != sim.node:
                self.check_proxy(s, segs[1])
            key = (method, re.sub(r"^/nodes/[^/]+", "/nodes/{node}", path))
            if key == ("POST", "/access/ticket"):
                return self.api_ticket(s, p), None
            if key == ("GET", "/version"):
                v = s["nodes"][sim.node]["version"]
                return {"version": v, "release": ".".join(v.split(".")[:2]), "repoid": "0123abcd"}, None
            if key == ("GET", "/cluster/status"):
                return self.api_status(s), None
            if key == ("POST", "/cluster/config"):
                me = s["nodes"][sim.node]
                if me["cluster"] is not None:
                    raise Fail(500, "cluster config '/etc/pve/corosync.conf' already exists")
                return sim.new_task(s, sim.node, "clustercreate", p["clustername"], self.user,
                                    {"op": "create", "clustername": p["clustername"],
                                     "link0": p.get("link0", me["ip"]).split(",")[0].replace("address=", "")},
                                    task_faults), None
            if key == ("POST", "/cluster/config/join"):
                return self.api_join(s, p, task_faults), None
            if key == ("GET", "/cluster/config/join"):
                return self.api_join_info(s, p), None
            if key == ("GET", "/cluster/config/nodes"):
                c = self.my_cluster(s)
                return [{"node": k, "name": k, "nodeid": m["nodeid"], "ring0_addr": m["ring0_addr"],
                         "quorum_votes": 1} for k, m in sorted(c["members"].items())], None
            if method == "DELETE" and path.startswith("/cluster/config/nodes/"):
                return self.api_delnode(s, segs[3]), None
            if key == ("GET", "/nodes"):
                return self.api_nodes(s), None
            if key == ("GET", "/nodes/{node}/dns"):
                # PVE/API2/Nodes.pm get_dns: resolv.conf's search and up to
                # three nameservers; absent ones are left out
                d = s["nodes"][segs[1]].get("dns") or {}
                return {k: v for k, v in d.items() if v}, None
            if key == ("PUT", "/nodes/{node}/dns"):
                # update_dns writes resolv.conf anew: search (required), then
                # dns1..dns3 as given (an address, IPv4 or IPv6)
                d = {"search": p["search"]}
                for k in ("dns1", "dns2", "dns3"):
                    if p.get(k):
                        try:
                            ipaddress.ip_address(p[k])
                        except ValueError:
                            raise Fail(400, "Parameter verification failed.", {k: "invalid format - value does "
                                                                                  "not look like a valid IP address"})
                        d[k] = p[k]
                s["nodes"][segs[1]]["dns"] = d
                return None, None
            if key == ("GET", "/nodes/{node}/time"):
                t = int(time.time()) + s["nodes"][segs[1]]["time_offset"]
                return {"time": t, "localtime": t, "timezone": "UTC"}, None
            if key in (("GET", "/nodes/{node}/qemu"), ("GET", "/nodes/{node}/lxc")):
                n = s["nodes"][segs[1]]["guests"] if segs[2] == "qemu" else 0
                return [{"vmid": 100 + i, "status": "stopped", "name": "guest%d" % i} for i in range(n)], None
            if method == "GET" and re.fullmatch(r"/nodes/[^/]+/tasks/[^/]+/(status|log)", path):
                return self.api_task(s, segs[1], segs[3], segs[4], p)
            if key == ("POST", "/nodes/{node}/certificates/custom"):
                return self.api_cert_upload(s, segs[1], p), None
            if key == ("GET", "/nodes/{node}/certificates/info"):
                n = s["nodes"][segs[1]]
                return [{"filename": "pveproxy-ssl.pem" if n["custom"] else "pve-ssl.pem",
                         "fingerprint": n["fp"], "pem": open(n["cert"], encoding="ascii").read()}], None
            if method == "POST" and re.fullmatch(r"/access/users/[^/]+/token/[^/]+", path):
                return self.api_token(s, segs[2], segs[4], p), None
        raise Fail(501, "Method '%s %s' not implemented in the simulator" % (method, path))

    def check_proxy(self, s, node):
        """/nodes/OTHER/... is proxied to OTHER inside one cluster."""
        me = s["nodes"][self.sim.node]
        n = s["nodes"].get(node)
        if n is None or me["cluster"] is None or n["cluster"] != me["cluster"]:
            raise Fail(500, "hostname lookup '%s' failed - failed to get address info for: %s: "
                            "Name or service not known" % (node, node))
        if not self.sim.online(s, node):
            raise Fail(595, "Connection refused")

    def my_cluster(self, s):
        cid = s["nodes"][self.sim.node]["cluster"]
        if cid is None:
            raise Fail(500, "Cannot read corosync config: not in a cluster")
        return s["clusters"][cid]

    def api_ticket(self, s, p):
        user = p["username"]
        if "@" not in user and p.get("realm"):
            user = "%s@%s" % (user, p["realm"])
        u = s["users"].get(user)
        by_password = u is not None and hmac.compare_digest(u["password"], p["password"])
        renewal = u is not None and not by_password and self.sim.check_ticket(s, p["password"]) == user
        self.login_kind = "renewal" if renewal else "password"
        if not (by_password or renewal):
            time.sleep(0.05)  # Proxmox delays failed logins (3 s there)
            raise Fail(401, "authentication failure")
        res = {"username": user, "ticket": self.sim.make_ticket(s, user),
               "CSRFPreventionToken": self.sim.make_csrf(user)}
        cid = s["nodes"][self.sim.node]["cluster"]
        if cid is not None:
            res["clustername"] = s["clusters"][cid]["name"]
        return res

    def api_status(self, s):
        sim = self.sim
        me = s["nodes"][sim.node]
        if me["cluster"] is None:
            return [{"type": "node", "id": "node/" + sim.node, "name": sim.node, "ip": me["ip"],
                     "online": 1, "local": 1, "nodeid": 0, "level": ""}]
        c = s["clusters"][me["cluster"]]
        out = [{"type": "cluster", "id": "cluster", "name": c["name"], "nodes": len(c["members"]),
                "quorate": 1 if sim.quorate(s, me["cluster"]) else 0, "version": c["version"]}]
        for k, m in sorted(c["members"].items()):
            n = s["nodes"].get(k, {})
            online = sim.online(s, k) and n.get("cluster") == me["cluster"]
            out.append({"type": "node", "id": "node/" + k, "name": k, "ip": n.get("ip", m["ring0_addr"]),
                        "nodeid": m["nodeid"], "online": 1 if online else 0, "local": 1 if k == sim.node else 0,
                        "level": ""})
        return out

    def api_nodes(self, s):
        me = s["nodes"][self.sim.node]
        names = [self.sim.node] if me["cluster"] is None else sorted(s["clusters"][me["cluster"]]["members"])
        return [{"node": k, "status": "online" if self.sim.online(s, k) else "offline",
                 "ssl_fingerprint": s["nodes"][k]["fp"]} for k in names if k in s["nodes"]]

    def api_join(self, s, p, task_faults):
        sim = self.sim
        me = s["nodes"][sim.node]
        act = {"op": "join", "hostname": p["hostname"], "fingerprint": p["fingerprint"],
               "password": p["password"],
               "link0": p.get("link0", me["ip"]).split(",")[0].replace("address=", "")}
        # The lock on the cluster side: one join at a time.
        for t in s["tasks"].values():
            if t["type"] == "clusterjoin" and t["status"] == "running":
                raise Fail(500, "can't lock file '/var/lock/pvecm.lock' - got timeout")
        return sim.new_task(s, sim.node, "clusterjoin", "", self.user, act, task_faults)

    def api_join_info(self, s, p):
        sim = self.sim
        me = s["nodes"][sim.node]
        if me["cluster"] is None:
            raise Fail(424, "node is not in a cluster, no join info available!")
        c = s["clusters"][me["cluster"]]
        want = p.get("node", sim.node)
        if want not in c["members"]:
            raise Fail(500, "unknown node '%s'" % want)
        nl = []
        for k, m in sorted(c["members"].items()):
            n = s["nodes"].get(k, {})
            nl.append({"name": k, "nodeid": m["nodeid"], "quorum_votes": 1, "ring0_addr": m["ring0_addr"],
                       "pve_addr": n.get("ip", m["ring0_addr"]), "pve_fp": n.get("fp", "")})
        return {"nodelist": nl, "preferred_node": want, "totem": {"cluster_name": c["name"], "version": 2},
                "config_digest": hashlib.sha1(json.dumps(c["members"], sort_keys=True).encode()).hexdigest()}

    def api_delnode(self, s, node):
        sim = self.sim
        if node == sim.node:
            raise Fail(500, "Cannot delete myself from cluster!")
        c = self.my_cluster(s)
        if not sim.quorate(s, s["nodes"][sim.node]["cluster"]):
            raise Fail(500, "cluster not ready - no quorum?")
        if node not in c["members"]:
            raise Fail(500, "Node/IP: %s is not a known host of the cluster." % node)
        del c["members"][node]
        c["version"] += 1
        return None

    def api_task(self, s, node, upid, what, p):
        t = s["tasks"].get(upid)
        if t is None or t["node"] != node:
            raise Fail(500, "no such task")
        if what == "log":
            lines = [{"n": i + 1, "t": x} for i, x in enumerate(t["log"])]
            start = int(p.get("start", 0))
            limit = int(p.get("limit", 50))
            return lines[start:start + limit] if limit else lines[start:], {"total": len(lines)}
        u = upid.split(":")
        res = {"upid": upid, "node": node, "pid": int(u[2], 16), "pstart": int(u[3], 16),
               "starttime": int(u[4], 16), "type": t["type"], "id": t["id"], "user": t["user"],
               "status": t["status"]}
        if t["status"] == "stopped":
            res["exitstatus"] = t["exitstatus"]
        return res, None

    def api_cert_upload(self, s, node, p):
        n = s["nodes"][node]
        if "key" not in p:
            raise Fail(500, "Attempted to upload custom certificate without (existing) key.")
        gen = n["cert_gen"] + 1
        crt = os.path.join(self.sim.state.dir, "certs", "%s-custom-%d.pem" % (node, gen))
        key = os.path.join(self.sim.state.dir, "certs", "%s-custom-%d.key" % (node, gen))
        with open(crt, "w", encoding="ascii") as f:
            f.write(p["certificates"])
        with os.fdopen(os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(p["key"])
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(crt, key)
        except ssl.SSLError as e:
            raise Fail(500, "unable to load certificate: %s" % e)
        fp = pem_fp(p["certificates"])
        n.update({"cert": crt, "key": key, "fp": fp, "custom": True})
        if p.get("restart") == "1":
            n["cert_gen"] = gen
        return {"filename": "pveproxy-ssl.pem", "fingerprint": fp}

    def api_token(self, s, userid, tokenid, p):
        full = "%s!%s" % (userid, tokenid)
        if full in s["tokens"]:
            raise Fail(500, "Token already exists.")
        secret = secrets.token_hex(4) + "-" + "-".join(secrets.token_hex(2) for _ in range(3)) + "-" + \
            secrets.token_hex(6)
        s["tokens"][full] = {"secret": secret, "privsep": p.get("privsep", "1")}
        return {"full-tokenid": full, "info": {"privsep": int(p.get("privsep", "1"))}, "value": secret}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, sim):
        super().__init__(addr, handler)
        self.sim = sim

    def handle_error(self, request, client_address):
        pass  # handshake refusals and resets are part of the tests

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(30)
        # Headers and body go out in separate writes: without this, delayed
        # ACKs add 40 ms to every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return self.sim.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr
        except (ssl.SSLError, OSError):
            sock.close()
            raise


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("SHARED", os.path.join(here, "..", "..", "..", "shared"))
    ap = argparse.ArgumentParser(description="Proxmox VE API simulator (tests only)")
    ap.add_argument("--state", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--schema-version", choices=("9.1", "8.4"), default="9.1")
    ap.add_argument("--schema")
    ap.add_argument("--pve-version", default=None)
    ap.add_argument("--password-file")
    ap.add_argument("--latency-ms", type=int, default=0)
    ap.add_argument("--task-ms", type=int, default=200)
    ap.add_argument("--restart-ms", type=int, default=100)
    ap.add_argument("--time-offset", type=int, default=0)
    ap.add_argument("--guests", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="a reinstalled node: forget its old state")
    pve_sim_guests.add_arguments(ap)
    a = ap.parse_args()
    if not a.schema:
        name = "pve-api-schema-9.1.json" if a.schema_version == "9.1" else "pve-api-schema.json"
        a.schema = os.path.join(shared, "reference", name)
    if not a.pve_version:
        a.pve_version = "9.1.2" if a.schema_version == "9.1" else "8.4.1"
    os.makedirs(a.state, exist_ok=True)
    sim = Sim(a)
    Handler.sim = sim
    srv = Server(("127.0.0.1", a.port), Handler, sim)
    sim.publish_now()
    threading.Thread(target=sim.ticker, daemon=True).start()
    print("pve_sim: node %s on https://127.0.0.1:%d fingerprint %s" % (a.node, a.port, sim.state_fp()),
          flush=True)
    srv.serve_forever()


def _state_fp(self):
    with open(os.path.join(self.state.dir, "%s.fp" % self.node), encoding="ascii") as f:
        return f.read().strip()


Sim.state_fp = _state_fp

if __name__ == "__main__":
    main()
